"""A running platform app for tests: lifespan entered, an httpx client, helpers.

`running(url, data_dir)` builds the real `create_app(settings)` on a migrated database and
runs its lifespan, so tests exercise exactly what production assembles (middleware,
routers, dependencies, error handlers). Helpers create organisations, role assignments,
API keys and tokens, read audit rows, and tamper with them through a raw connection the
way an attacker with database access would.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from ehr_api.app import create_app
from ehr_api.audit.models import AuditLog
from ehr_api.auth import service as access_admin
from ehr_api.auth.tokens import issue_token
from ehr_api.db import Database
from ehr_api.security.crypto import Keyring
from ehr_api.settings import Settings
from ehr_api.tenants.models import Organization, OrgStatus
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from tests.ehr_api.conftest import APP_ROLE

JWT_SECRET = "test-secret-" + "x" * 40
USER_AGENT = "ehr-tests/1.0"


@dataclass
class Harness:
    app: FastAPI
    client: httpx.AsyncClient
    settings: Settings

    @property
    def database(self) -> Database:
        database: Database = self.app.state.database
        return database

    def token(self, org: str | None, *roles: str, sub: str = "tester") -> str:
        return issue_token(sub, org, roles, JWT_SECRET)

    def auth(self, org: str | None, *roles: str, sub: str = "tester") -> dict[str, str]:
        return bearer(self.token(org, *roles, sub=sub))

    async def org(self, slug: str, *, suspended: bool = False) -> Organization:
        status = OrgStatus.SUSPENDED if suspended else OrgStatus.ACTIVE
        async with self.database.platform_session() as db:
            org = Organization(slug=slug, name=slug.upper(), status=status)
            db.add(org)
            await db.flush()
        return org

    async def assign(self, org: Organization, subject: str, role: str) -> None:
        async with self.database.org_session(org.id) as db:
            await access_admin.assign_role(db, org_id=org.id, subject=subject, role=role)

    async def api_key(self, org: Organization, *roles: str) -> str:
        async with self.database.org_session(org.id) as db:
            created = await access_admin.create_api_key(db, org_id=org.id, name="test", roles=roles)
        return created.key

    async def audit_rows(self, org_id: uuid.UUID | None) -> list[AuditLog]:
        async with self.database.platform_session(read_only=True) as db:
            chain = AuditLog.org_id.is_(None) if org_id is None else AuditLog.org_id == org_id
            rows = await db.execute(select(AuditLog).where(chain).order_by(AuditLog.id))
            return [*rows.scalars()]

    async def last_audit_id(self) -> int:
        async with self.database.platform_session(read_only=True) as db:
            found = await db.scalar(select(AuditLog.id).order_by(AuditLog.id.desc()).limit(1))
        return found or 0

    async def audit_rows_after(self, row_id: int) -> list[AuditLog]:
        async with self.database.platform_session(read_only=True) as db:
            query = select(AuditLog).where(AuditLog.id > row_id).order_by(AuditLog.id)
            return [*(await db.execute(query)).scalars()]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def settings_for(url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": url,
        "db_app_role": APP_ROLE,
        "jwt_secret": JWT_SECRET,
        "encryption_keys": Keyring.generate().to_spec(),
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running(url: str, data_dir: Path, **overrides: Any) -> AsyncIterator[Harness]:
    """`create_app` on `url` with its lifespan running and a client talking to it."""
    settings = settings_for(url, data_dir, **overrides)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers={"User-Agent": USER_AGENT}
        ) as client:
            yield Harness(app, client, settings)


@dataclass(frozen=True)
class RouteInfo:
    """One method of one route, with the permission its `require()` declares."""

    method: str
    path: str
    obj: str | None
    act: str | None

    def url(self, **values: str) -> str:
        path = self.path
        for name in _params(path):
            path = path.replace("{" + name + "}", values.get(name, str(uuid.uuid4())))
        return path


def api_routes(app: FastAPI) -> list[RouteInfo]:
    """Every method of every route of `app` under /api and /fhir, from `app.routes`.

    The FHIR API is one route of the app with its own table (`FhirEndpoints`): its
    routes come from there, without a static permission (the type in the path decides).
    """
    from ehr_api.deps import Permission
    from ehr_api.fhir_store.dispatch import FhirEndpoints

    found: list[RouteInfo] = [
        RouteInfo(fhir.method, fhir.audit_template, None, None)
        for route in app.routes
        if isinstance(route, FhirEndpoints)
        for fhir in route.router.routes
    ]
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        path = context.path_format
        if not path.startswith(("/api/", "/fhir")):
            continue
        permissions = [
            dependency.call
            for dependency in _walk(context.dependant)
            if isinstance(dependency.call, Permission)
        ]
        permission = permissions[0] if permissions else None
        for method in sorted(context.methods or ()):
            found.append(
                RouteInfo(
                    method,
                    path,
                    permission.obj if permission else None,
                    permission.act if permission else None,
                )
            )
    return found


def _walk(dependant: Any) -> Iterable[Any]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _walk(dependency)


def _params(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]


async def tamper(url: str, sql: str, **params: Any) -> None:
    """Run `sql` on the audit log as the schema owner with the append-only guard off.

    What an attacker with database access (or a careless operator) could do; the chain
    is what must catch it.
    """
    if make_url(url).get_backend_name() == "sqlite":
        from ehr_api.db import create_engine

        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.execute(text("DROP TRIGGER IF EXISTS audit_logs_no_update"))
                await connection.execute(text("DROP TRIGGER IF EXISTS audit_logs_no_delete"))
                await connection.execute(text(sql), params)
        finally:
            await engine.dispose()
        return
    parsed = make_url(url)
    schema = parsed.query["options"].split("search_path=")[1]
    dsn = parsed.set(drivername="postgresql", query={}).render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn, server_settings={"search_path": str(schema)})
    try:
        async with connection.transaction():
            await connection.execute(
                "ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only"
            )
            positional = sql
            for index, name in enumerate(params, start=1):
                positional = positional.replace(f":{name}", f"${index}")
            await connection.execute(positional, *params.values())
            await connection.execute("ALTER TABLE audit_logs ENABLE TRIGGER audit_logs_append_only")
    finally:
        await connection.close()


def declared_permissions(router: Any) -> dict[tuple[str, str], tuple[str, str]]:
    """(method, path) -> (object, action) that each route of ``router`` declares with require()."""
    from ehr_api.deps import Permission

    return {
        (method, route.path): next(
            (dep.call.obj, dep.call.act)
            for dep in route.dependant.dependencies
            if isinstance(dep.call, Permission)
        )
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
