"""`create_app(settings)`: the one place the platform's HTTP app is assembled.

What is where, outermost first, for a request:

    request id   X-Request-ID taken from the caller (if sane) or made up; echoed back,
                 in `request.state.request_id`, in problem bodies and audit rows
    audit        one hash-chained audit row per /api and /fhir request (any outcome)
    routers      /fhir/R4 first (its own URL table: fhir_store.dispatch), then
                 /api/admin/orgs, /api/admin/integrations, /api/audit, /api/apikeys,
                 /api/members, /api/me; /healthz and /readyz; OpenAPI (for /api) at /docs
    dependencies CurrentPrincipal -> require(obj, act) -> OrgSession (ehr_api.deps)
    errors       domain errors -> problem JSON on /api, OperationOutcome on /fhir

The lifespan owns everything with a connection or a secret in it (`app.state`):
`settings` (with generated secrets filled in), `database`, `verifier` (JWT), `access`
(authentication + the RBAC `authorizer`), `keyring`, `audit` (the audit writer) and
`orchestrator` (integration clients). It never migrates: schema changes are
`ehr-platform migrate` (or `up`) so that starting a replica can never alter the database;
`/readyz` says 503 until the schema is at head.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ehr_api.audit.middleware import AuditMiddleware
from ehr_api.audit.routes import router as audit_router
from ehr_api.audit.writer import AuditWriter
from ehr_api.auth.access import Access
from ehr_api.auth.routes import router as access_router
from ehr_api.auth.tokens import TokenVerifier
from ehr_api.db import Database, RowSecurityError
from ehr_api.errors import AuthenticationError
from ehr_api.fhir_store.routes import endpoints as fhir_endpoints
from ehr_api.gc_tuning import tune_for_serving
from ehr_api.integrations.orchestrator import Orchestrator
from ehr_api.integrations.routes import router as integrations_router
from ehr_api.migrate import current_revision, head_revision
from ehr_api.problems import (
    FHIR_JSON,
    PROBLEM_JSON,
    install_error_handlers,
    operation_outcome,
    problem,
)
from ehr_api.security.crypto import Keyring
from ehr_api.security.local_secrets import with_local_secrets
from ehr_api.settings import Settings
from ehr_api.tenants.routes import router as organisations_router

__all__ = ["REQUEST_ID_HEADER", "create_app"]

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_READY_TIMEOUT = 5.0
_CHECKS = ("database", "migrations", "row_security")

_DESCRIPTION = """\
Multi-tenant HL7 v2 / FHIR R4 integration platform.

Authenticate with `Authorization: Bearer <token>`: a JWT (`ehr-platform token`, or your
identity provider's) or an API key (`ehr_...`, from `ehr-platform apikey create` or
`POST /api/apikeys`). Errors are RFC 9457 problem JSON on /api and FHIR
OperationOutcome on /fhir. Every /api and /fhir request is audit-logged.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The platform's FastAPI app for `settings` (default: `Settings.from_env()`).

    Building the app touches nothing; the database, secrets and clients come to life in
    its lifespan (uvicorn runs it; tests enter `app.router.lifespan_context(app)`).
    """
    app = FastAPI(
        title="EHR integration platform",
        version="0.1.0",
        description=_DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.settings = settings or Settings.from_env()
    install_error_handlers(app)
    app.add_exception_handler(AuthenticationError, _unauthenticated)
    # Added innermost first: the request id must exist before the audit row is built.
    app.add_middleware(AuditMiddleware)
    app.add_middleware(RequestIdMiddleware)
    # Routes are matched in order: the busiest API first. The FHIR API is one route with
    # its own URL table (fhir_store.dispatch), not FastAPI routes: that halved a FHIR
    # read's server CPU (docs/performance.md).
    app.router.routes.insert(0, fhir_endpoints)
    app.include_router(_health)
    app.include_router(access_router)
    app.include_router(audit_router)
    app.include_router(organisations_router)
    app.include_router(integrations_router)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = with_local_secrets(app.state.settings)
    keyring = Keyring.parse(settings.encryption_keys or "")
    verifier = TokenVerifier(
        secret=settings.jwt_secret,
        jwks_url=settings.jwt_jwks_url,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )
    database = Database.from_settings(settings)
    access = Access(database, verifier)
    orchestrator = Orchestrator.default()
    app.state.settings = settings
    app.state.database = database
    app.state.verifier = verifier
    app.state.access = access
    app.state.authorizer = access.authorizer
    app.state.keyring = keyring
    audit = app.state.audit = AuditWriter(database)
    app.state.orchestrator = orchestrator
    try:
        await _refuse_bypassed_row_security(database)
        if settings.gc_tuning:
            tune_for_serving()
        yield
    finally:
        await audit.aclose()
        access.close()
        await orchestrator.aclose()
        await verifier.aclose()
        await database.dispose()


async def _refuse_bypassed_row_security(database: Database) -> None:
    """Fail start-up when PostgreSQL sessions would ignore row-level security.

    A database that is down is not a reason to refuse to start (`/readyz` reports it and
    the orchestrator waits); a role that voids every tenant policy is.
    """
    try:
        with anyio.fail_after(_READY_TIMEOUT):
            await database.check_row_security()
    except RowSecurityError:
        raise
    except Exception as exc:
        logger.warning("database not reachable at start-up (%s); /readyz will say", exc)


# --- request id --------------------------------------------------------------------------


class RequestIdMiddleware:
    """Gives every HTTP request an id, echoed in `X-Request-ID` and kept in its state.

    A caller's id is kept when it is short and plain (so a load balancer's or a client's
    correlation id survives end to end); anything else is replaced rather than trusted
    into logs and audit rows.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1").strip()
            return candidate if _REQUEST_ID.fullmatch(candidate) else None
    return None


# --- errors ------------------------------------------------------------------------------


async def _unauthenticated(request: Request, exc: Exception) -> JSONResponse:
    """401 with `WWW-Authenticate: Bearer` (RFC 6750), in the caller's language."""
    assert isinstance(exc, AuthenticationError)
    # RFC 6750: no error attribute when no credential was sent; our finer reason
    # (expired, revoked, ...) goes in the body's `code`.
    code = getattr(exc, "code", None)
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"' if code else "Bearer"}
    if request.url.path.startswith("/fhir"):
        body = operation_outcome("login", exc.detail)
        return JSONResponse(body, status_code=401, media_type=FHIR_JSON, headers=headers)
    request_id = getattr(request.state, "request_id", None)
    body = problem(401, exc.title, exc.detail, code=code, request_id=request_id)
    return JSONResponse(body, status_code=401, media_type=PROBLEM_JSON, headers=headers)


# --- health ------------------------------------------------------------------------------

_health = APIRouter(tags=["health"])


@_health.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving (liveness); says nothing about the database."""
    return {"status": "ok"}


@_health.get("/readyz", responses={503: {"description": "Not ready (problem JSON)"}})
async def readyz(request: Request) -> Any:
    """Ready for traffic: database reachable, schema at head, row-level security binding.

    503 problem JSON naming every failed check otherwise.
    """
    database: Database = request.app.state.database
    checks: dict[str, str] = {}
    try:
        with anyio.fail_after(_READY_TIMEOUT):
            await _check(database, checks)
    except TimeoutError:
        checks[next(name for name in _CHECKS if name not in checks)] = "timed out"
    failed = {name: state for name, state in checks.items() if state != "ok"}
    if failed:
        detail = "; ".join(f"{name}: {state}" for name, state in failed.items())
        body = problem(503, "Not ready", detail, checks=checks)
        return JSONResponse(body, status_code=503, media_type=PROBLEM_JSON)
    return {"status": "ready", "checks": checks}


async def _check(database: Database, checks: dict[str, str]) -> None:
    """Fill `checks`; each check runs only when the one before it passed."""
    try:
        async with database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        logger.warning("readiness: database unreachable: %r", exc)
        checks["database"] = f"unreachable ({type(exc).__name__})"
        return
    checks["database"] = "ok"
    try:
        revision, head = await current_revision(database.engine), _head()
    except Exception as exc:
        logger.warning("readiness: cannot read the schema revision: %r", exc)
        checks["migrations"] = f"cannot tell ({type(exc).__name__})"
        return
    if revision != head:
        checks["migrations"] = f"at {revision or 'nothing'}, head is {head}: run migrations"
        return
    checks["migrations"] = "ok"
    try:
        await database.check_row_security()
    except RowSecurityError as exc:
        checks["row_security"] = str(exc)
    except Exception as exc:
        logger.warning("readiness: row security check failed: %r", exc)
        checks["row_security"] = f"cannot tell ({type(exc).__name__})"
    else:
        checks["row_security"] = "ok"


_HEAD: list[str] = []


def _head() -> str:
    """The newest migration (read from disk once per process; scripts do not change)."""
    if not _HEAD:
        _HEAD.append(head_revision())
    return _HEAD[0]
