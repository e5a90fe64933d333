"""The FHIR REST API's own router: FHIR's fixed URL grammar, without FastAPI's per-request
dependency solving.

Why not FastAPI routes: with FastAPI 0.165, matching a FHIR URL against the app's routes
and solving a route's dependency graph (credential, permission, organisation, connection,
headers) cost about 1 ms of CPU per request, as much as the FHIR read itself
(docs/performance.md). FHIR's URLs are few and fixed (`[type]`, `[type]/[id]`,
`[type]/[id]/_history/[vid]`, a handful of `$operations`), so a table indexed by segment
count finds the route in a few comparisons, and each handler asks for what it needs in
the order it needs it, through `FhirCall`:

    @routes.get("/{resource_type}/{resource_id}")
    async def read(call: FhirCall) -> Response:
        org_id = await call.allow("read")          # 401, 404 unknown type, 403
        async with call.connection(read_only=True) as db:
            ...

What the FastAPI app still provides around it: the middleware (request id, audit) and the
exception handlers, which turn the errors handlers raise into OperationOutcomes (the
route is a Starlette route of the app, placed first). The audit row's action is the
route's template, as it was for FastAPI routes (`GET /fhir/R4/{resource_type}/{resource_id}`).
The FHIR API is described by its CapabilityStatement (`/metadata`) and docs/fhir-api.md,
not by OpenAPI.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from ehr_api.auth.access import Access
from ehr_api.auth.principal import Principal
from ehr_api.auth.rbac import fhir_action, fhir_object
from ehr_api.db import Database
from ehr_api.db.scoped_pool import ScopedConnection
from ehr_api.deps import authenticate_request, organisation_of
from ehr_api.errors import NotAcceptableError, NotFoundError
from ehr_api.fhir_store import service

__all__ = ["PREFIX", "FhirCall", "FhirEndpoints", "FhirRoute", "FhirRouter", "Handler"]

PREFIX = "/fhir/R4"

Handler = Callable[["FhirCall"], Awaitable[Response]]


@dataclass(frozen=True)
class FhirRoute:
    """One method of one URL template; `audit_template` names it in audit rows."""

    method: str
    path: str  # below PREFIX, e.g. "/{resource_type}/{resource_id}"
    handler: Handler

    @property
    def audit_template(self) -> str:
        return PREFIX + self.path


@dataclass
class _Template:
    """Routes sharing one URL template: literal segments (None for a parameter)."""

    segments: tuple[str | None, ...]
    names: tuple[str | None, ...]
    methods: dict[str, FhirRoute] = field(default_factory=dict)

    def bind(self, parts: list[str]) -> dict[str, str] | None:
        params: dict[str, str] = {}
        for literal, name, part in zip(self.segments, self.names, parts, strict=True):
            if literal is None:
                if not part:
                    return None
                params[name or ""] = part
            elif literal != part:
                return None
        return params


class FhirRouter:
    """Declares FHIR routes (`@routes.get("/{resource_type}")`) and finds them.

    Templates with the same number of segments are tried most specific first (a literal
    beats a parameter, left to right): `/{type}/_history` before `/{type}/{id}`,
    `/AuditEvent/{id}` before `/{type}/{id}`.
    """

    def __init__(self) -> None:
        self.routes: list[FhirRoute] = []
        self._by_length: dict[int, list[_Template]] = {}

    def add(self, method: str, path: str, handler: Handler) -> None:
        route = FhirRoute(method, path, handler)
        self.routes.append(route)
        parts = _split(path)
        segments = tuple(None if part.startswith("{") else part for part in parts)
        names = tuple(part[1:-1] if part.startswith("{") else None for part in parts)
        templates = self._by_length.setdefault(len(parts), [])
        for template in templates:
            if template.segments == segments:
                if method in template.methods:
                    raise ValueError(f"{method} {path} is declared twice")
                template.methods[method] = route
                return
        templates.append(_Template(segments, names, {method: route}))
        templates.sort(key=lambda template: tuple(s is None for s in template.segments))

    def include(self, other: FhirRouter) -> None:
        for route in other.routes:
            self.add(route.method, route.path, route.handler)

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(method, path, handler)
            return handler

        return register

    def get(self, path: str) -> Callable[[Handler], Handler]:
        return self.route("GET", path)

    def post(self, path: str) -> Callable[[Handler], Handler]:
        return self.route("POST", path)

    def put(self, path: str) -> Callable[[Handler], Handler]:
        return self.route("PUT", path)

    def patch(self, path: str) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path)

    def delete(self, path: str) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path)

    def find(self, method: str, path: str) -> tuple[FhirRoute, dict[str, str]]:
        """The route for `method` on `path` (below PREFIX) and its path parameters.

        Raises:
            NotFoundError: no template matches (404).
            HTTPException: one does, not for this method (405 with `Allow`).
        """
        parts = _split(path)
        for template in self._by_length.get(len(parts), ()):
            params = template.bind(parts)
            if params is None:
                continue
            route = template.methods.get(method)
            if route is None:
                allowed = ", ".join(sorted(template.methods))
                raise HTTPException(
                    405,
                    f"{method} is not supported on {PREFIX}{path}; allowed: {allowed}",
                    headers={"Allow": allowed},
                )
            return route, params
        raise NotFoundError(f"no FHIR endpoint at {PREFIX}{path}")


def _split(path: str) -> list[str]:
    """`/Patient/1/` -> ["Patient", "1"]; the base itself -> []."""
    stripped = path.strip("/")
    return stripped.split("/") if stripped else []


class FhirCall:
    """One FHIR request as a handler sees it: the request, its path values, the caller.

    Each step raises the error FHIR clients expect, in the order the checks used to run:
    credential (401), resource type (404), permission (403), organisation (403).
    """

    __slots__ = ("_principal", "params", "request")

    def __init__(self, request: Request, params: dict[str, str]) -> None:
        self.request = request
        self.params = params
        self._principal: Principal | None = None

    @property
    def resource_type(self) -> str:
        return self.params["resource_type"]

    @property
    def resource_id(self) -> str:
        return self.params["resource_id"]

    async def principal(self) -> Principal:
        """The authenticated caller (401 without a usable credential)."""
        if self._principal is None:
            self._principal = await authenticate_request(self.request)
        return self._principal

    async def allow(self, interaction: str, resource_type: str | None = None) -> uuid.UUID:
        """Authenticate, check the type is stored here and the permission; the org id."""
        principal = await self.principal()
        kind = resource_type or self.resource_type
        if kind not in service.supported_types():
            raise NotFoundError(f"resource type {kind!r} is not supported")
        await self.access.authorize(principal, fhir_object(kind), fhir_action(interaction))
        return organisation_of(principal)

    async def require(self, obj: str, act: str) -> uuid.UUID:
        """Authenticate and check a fixed permission (`fhir:AuditEvent` read); the org id."""
        principal = await self.principal()
        await self.access.authorize(principal, obj, act)
        return organisation_of(principal)

    @property
    def access(self) -> Access:
        """The app's authentication + RBAC (`app.state.access`)."""
        access: Access = self.request.app.state.access
        return access

    def connection(
        self, *, read_only: bool = False
    ) -> AbstractAsyncContextManager[AsyncConnection]:
        """The caller's organisation's Core connection, committed when the block exits
        (before the response is sent: a failed commit is an error, never a lost write)."""
        return self._database().org_connection(self._org_id(), read_only=read_only)

    def reads(self) -> AbstractAsyncContextManager[ScopedConnection | AsyncConnection]:
        """A read-only connection for a single-statement read (`Database.org_reads`)."""
        return self._database().org_reads(self._org_id())

    def writes(
        self, *, atomic: bool = True
    ) -> AbstractAsyncContextManager[ScopedConnection | AsyncConnection]:
        """A connection that may write, committed when the block exits, before the
        response is sent (`Database.org_writes`; `atomic=False` only for a block whose
        statements are each atomic on their own: one write, or a guarded read-then-write)."""
        return self._database().org_writes(self._org_id(), atomic=atomic)

    def session(self, *, read_only: bool = False) -> AbstractAsyncContextManager[AsyncSession]:
        """The same as an ORM session (history, bundles, $everything, AuditEvent)."""
        return self._database().org_session(self._org_id(), read_only=read_only)

    def _database(self) -> Database:
        database: Database = self.request.app.state.database
        return database

    def _org_id(self) -> uuid.UUID:
        if self._principal is None:  # a handler bug, not a client error
            raise RuntimeError("authenticate (allow, require, principal) before the database")
        return organisation_of(self._principal)


class FhirEndpoints(BaseRoute):
    """The FHIR API as one Starlette route of the app: everything under PREFIX."""

    def __init__(self, router: FhirRouter) -> None:
        self.router = router

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith(PREFIX) and (len(path) == len(PREFIX) or path[len(PREFIX)] == "/"):
                return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route, params = self.router.find(scope["method"], scope["path"][len(PREFIX) :])
        scope["route"] = route
        scope["path_params"] = params
        request = Request(scope, receive, send)
        json_only(request.headers.get("accept"))
        response = await route.handler(FhirCall(request, params))
        await response(scope, receive, send)


def json_only(accept: str | None) -> None:
    """406 when the Accept header names formats but none we can produce (JSON only)."""
    if not accept:
        return
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if not any(kind in ("*/*", "application/*") or "json" in kind for kind in kinds):
        raise NotAcceptableError(f"only application/fhir+json is supported, not {accept!r}")
