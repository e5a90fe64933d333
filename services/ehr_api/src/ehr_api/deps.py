"""Request dependencies shared by every router: who is calling, may they, and their session.

Routes stay one line of wiring each::

    @router.post("", dependencies=[require("integrations", "write")])
    async def create_integration(body: IntegrationCreate, db: OrgSession) -> Integration:
        ...

- `CurrentPrincipal`: the authenticated caller (`Authorization: Bearer <JWT or API key>`),
  or a 401 problem. It is also left in `request.state.principal` for the audit middleware.
- `require(obj, act)`: 403 unless the policy lets the caller `act` on `obj` in their own
  organisation. The dependency keeps `obj` and `act` as attributes, so tests (the RBAC
  matrix) and docs can read every route's permission from the app itself.
- `CurrentOrgId`: the caller's organisation id (403 for a credential without one).
- `OrgSession`: one transaction bound to the caller's organisation; committed when the
  endpoint returns, before the response is sent (a failed commit is an error response,
  never a lost write behind a 2xx), rolled back when it raises. A credential without an
  organisation (a platform administrator's token) gets a 403 here, not a session that
  sees everything.
- `OrgReadSession`: the same read-only (long reads never hold SQLite's write lock).
- `PlatformSession`: the same, but seeing every organisation; only for platform routes
  (guarded by a platform permission such as `require("orgs", ...)`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from ehr_api.auth.access import Access
from ehr_api.auth.principal import Principal
from ehr_api.db import Database, get_database, org_session_dependency
from ehr_api.errors import AuthenticationError, ForbiddenError
from ehr_api.security.crypto import Keyring

__all__ = [
    "CurrentOrgId",
    "CurrentPrincipal",
    "KeyringDep",
    "OrgReadSession",
    "OrgSession",
    "Permission",
    "PlatformSession",
    "authenticate_request",
    "current_org_id",
    "current_principal",
    "get_access",
    "get_keyring",
    "organisation_of",
    "require",
]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT or ehr_ API key",
    description="A JWT (`ehr-platform token`, or your identity provider's) or an API key"
    " (`ehr-platform apikey create`, `POST /api/apikeys`).",
)


def get_access(request: Request) -> Access:
    """The `Access` the lifespan put in `app.state.access`."""
    access: Access = request.app.state.access
    return access


async def get_keyring(request: Request) -> Keyring:
    """The encryption keyring the lifespan put in `app.state.keyring`.

    `async` like every dependency here: FastAPI runs a plain `def` dependency in a worker
    thread, a hop that costs more than the function itself.
    """
    keyring: Keyring = request.app.state.keyring
    return keyring


KeyringDep = Annotated[Keyring, Depends(get_keyring)]


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated caller (the `_bearer` dependency documents the scheme in OpenAPI).

    Raises:
        AuthenticationError: no bearer credential, or one that does not verify (401).
        ForbiddenError: the credential's organisation is suspended (403).
    """
    return await _authenticated(request, credentials.credentials if credentials else None)


async def authenticate_request(request: Request) -> Principal:
    """`current_principal` without FastAPI: the caller behind `Authorization: Bearer ...`
    (what the FHIR router calls; same errors, same `request.state` for the audit row)."""
    scheme, _, credential = (request.headers.get("authorization") or "").partition(" ")
    bearer = credential.strip() if scheme.lower() == "bearer" else ""
    return await _authenticated(request, bearer or None)


async def _authenticated(request: Request, credential: str | None) -> Principal:
    if credential is None:
        request.state.auth_failure = "missing_credentials"
        raise AuthenticationError("authentication required: send 'Authorization: Bearer ...'")
    try:
        principal = await get_access(request).authenticate(credential)
    except (AuthenticationError, ForbiddenError) as exc:
        request.state.auth_failure = getattr(exc, "code", type(exc).__name__)
        raise
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def current_org_id(principal: CurrentPrincipal) -> uuid.UUID:
    """The caller's organisation, for organisation-scoped routes (async: no thread hop)."""
    return organisation_of(principal)


def organisation_of(principal: Principal) -> uuid.UUID:
    """The principal's organisation.

    Raises:
        ForbiddenError: the credential names no organisation.
    """
    if principal.org_id is None:
        raise ForbiddenError(
            "this route works inside one organisation and the credential names none:"
            " use a token with an 'org' claim"
        )
    return principal.org_id


CurrentOrgId = Annotated[uuid.UUID, Depends(current_org_id)]


class Permission:
    """The dependency `require(obj, act)` builds; `obj` and `act` stay readable."""

    def __init__(self, obj: str, act: str) -> None:
        self.obj = obj
        self.act = act

    async def __call__(self, request: Request, principal: CurrentPrincipal) -> Principal:
        await get_access(request).authorize(principal, self.obj, self.act)
        return principal

    def __repr__(self) -> str:
        return f"require({self.obj!r}, {self.act!r})"


def require(obj: str, act: str) -> Any:
    """A dependency refusing callers without permission `act` on `obj` (403 problem).

    Use it in `dependencies=[require("integrations", "write")]`; it authenticates too, so
    a route guarded by it never runs for an anonymous caller.
    """
    return Depends(Permission(obj, act))


async def _platform_session(
    database: Annotated[Database, Depends(get_database)],
) -> AsyncIterator[AsyncSession]:
    async with database.platform_session() as session:
        yield session


async def _org_read_session(
    database: Annotated[Database, Depends(get_database)],
    org_id: Annotated[uuid.UUID, Depends(current_org_id)],
) -> AsyncIterator[AsyncSession]:
    async with database.org_session(org_id, read_only=True) as session:
        yield session


OrgSession = Annotated[
    AsyncSession, Depends(org_session_dependency(current_org_id), scope="function")
]
#: A read-only org session: never waits for (or blocks) writers; flushing in it raises.
OrgReadSession = Annotated[AsyncSession, Depends(_org_read_session, scope="function")]
PlatformSession = Annotated[AsyncSession, Depends(_platform_session, scope="function")]
