"""From a bearer credential to a `Principal`, and from a principal to allow or deny.

`Access` is the one object the request dependencies (`ehr_api.deps`) talk to; the app
builds it in its lifespan from the token verifier, the authorizer and the database.

Authentication (`authenticate`):

- `ehr_...` bearer values are API keys: looked up by prefix in a platform session (the key
  is the credential, the organisation is not known yet), checked against the stored hash,
  refused when revoked, expired, or when the key's organisation is suspended;
- anything else is a JWT (`TokenVerifier.verify_async`); its `org` claim (slug or id) is
  resolved to an organisation, refused when unknown (401) or suspended (403). A token
  without `org` carries only global roles (the verifier enforces that).

Authorization (`authorize`): the principal's organisation's role assignments (and the
global ones) are loaded into the `Authorizer` on first use, then every check is a few
dict lookups (see `ehr_api.auth.rbac`).

Why caches, and how they stay honest: resolving an organisation and an API key on every
request would put a database transaction on the hot path of every call. Lookups are
therefore kept for `ttl` seconds (default 5), and dropped at once whenever this process
commits a change to an organisation, an API key or a role assignment: ORM hooks on the
tenant session collect what a transaction touched and, after COMMIT, tell every live
`Access`. Changes made by another process (another API replica, the CLI) are picked up
within `ttl`; that is the bound on how long a suspension, revocation or role change may
take to reach every replica.

Verified JWTs are kept the same way (`ttl` seconds, and never past their `exp`): checking
a signature and the claims costs more than the rest of authentication together (about
0.1 ms per request, measured), and the same token arrives on every request of a session.
A JWKS key withdrawn by the identity provider therefore stops verifying within `ttl`.
"""

from __future__ import annotations

import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session

from ehr_api.auth import repository
from ehr_api.auth.api_keys import KEY_PREFIX, parse_api_key, verify_api_key
from ehr_api.auth.models import ApiKey, RoleAssignment
from ehr_api.auth.principal import Principal
from ehr_api.auth.rbac import AssignmentLike, Authorizer
from ehr_api.auth.tokens import TokenClaims, TokenVerifier
from ehr_api.db import Database
from ehr_api.db.base import utcnow
from ehr_api.db.session import TenantSession
from ehr_api.errors import AuthenticationError, ForbiddenError
from ehr_api.tenants.models import Organization, OrgStatus

__all__ = ["DEFAULT_TTL", "Access"]

DEFAULT_TTL = 5.0
_API_KEY_MARK = f"{KEY_PREFIX}_"
_K = TypeVar("_K")
_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class _Org:
    id: uuid.UUID
    slug: str
    active: bool


@dataclass(frozen=True, slots=True)
class _Key:
    """What verification needs of an `api_keys` row, detached from any session."""

    prefix: str
    hash: str
    org_id: uuid.UUID
    roles: tuple[str, ...]
    expires_at: datetime | None
    revoked_at: datetime | None
    org: _Org


class _Cache(Generic[_K, _V]):
    """A small LRU whose entries expire after `ttl` seconds (None values are cached too)."""

    def __init__(self, ttl: float, clock: Callable[[], float], max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._clock = clock
        self._max = max_entries
        self._entries: OrderedDict[_K, tuple[float, _V | None]] = OrderedDict()

    def get(self, key: _K) -> tuple[bool, _V | None]:
        entry = self._entries.get(key)
        if entry is None or self._clock() - entry[0] > self._ttl:
            return False, None
        return True, entry[1]

    def put(self, key: _K, value: _V | None) -> None:
        if self._ttl <= 0:
            return
        self._entries[key] = (self._clock(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def discard(self, key: _K) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


@dataclass
class _Changes:
    """What one transaction changed that caches depend on."""

    organizations: bool = False
    all_keys: bool = False
    key_prefixes: set[str] = field(default_factory=set)
    all_roles: bool = False
    role_orgs: set[uuid.UUID | None] = field(default_factory=set)


class Access:
    """Authenticates bearer credentials and answers permission checks (see module doc)."""

    def __init__(
        self,
        database: Database,
        verifier: TokenVerifier,
        authorizer: Authorizer | None = None,
        *,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.database = database
        self.verifier = verifier
        self.authorizer = authorizer or Authorizer(max_age=ttl, clock=clock)
        self._ttl = ttl
        self._clock = clock
        self._orgs: _Cache[str, _Org] = _Cache(ttl, clock)
        self._keys: _Cache[str, _Key] = _Cache(ttl, clock)
        self._tokens: _Cache[str, TokenClaims] = _Cache(ttl, clock)
        self._global_loaded_at: float | None = None
        _LISTENERS.add(self)

    # --- authentication ----------------------------------------------------------------

    async def authenticate(self, credential: str) -> Principal:
        """The principal behind a bearer value (an API key or a JWT).

        Raises:
            AuthenticationError: unknown, malformed, expired or revoked credential, or a
                token naming an unknown organisation (401).
            ForbiddenError: the credential's organisation is suspended (403).
        """
        if credential.startswith(_API_KEY_MARK):
            return await self._from_api_key(credential)
        claims = await self._verified(credential)
        if claims.org is None:
            return Principal.from_token(claims, org_id=None, org_slug=None)
        org = await self._organization(claims.org)
        if org is None:
            raise AuthenticationError("the token names an unknown organisation")
        _refuse_suspended(org)
        return Principal.from_token(claims, org_id=org.id, org_slug=org.slug)

    async def _verified(self, token: str) -> TokenClaims:
        found, claims = self._tokens.get(token)
        if found and claims is not None and utcnow() < claims.expires_at:
            return claims
        claims = await self.verifier.verify_async(token)
        self._tokens.put(token, claims)
        return claims

    async def _from_api_key(self, credential: str) -> Principal:
        prefix = parse_api_key(credential).prefix
        found, key = self._keys.get(prefix)
        if not found:
            async with self.database.platform_session(read_only=True) as db:
                row = await repository.get_api_key_by_prefix(db, prefix=prefix)
                key = None if row is None else await _detach_key(db, row)
            self._keys.put(prefix, key)
        verify_api_key(credential, key)
        assert key is not None  # verify_api_key refuses None
        _refuse_suspended(key.org)
        return Principal.from_api_key(key, org_slug=key.org.slug)

    async def _organization(self, ref: str) -> _Org | None:
        found, org = self._orgs.get(ref)
        if not found:
            async with self.database.platform_session(read_only=True) as db:
                row = await repository.get_organization_by_ref(db, ref=ref)
            org = None if row is None else _Org(row.id, row.slug, row.status == OrgStatus.ACTIVE)
            self._orgs.put(ref, org)
        return org

    # --- authorization -----------------------------------------------------------------

    async def allowed(
        self, principal: Principal, obj: str, act: str, *, org_id: uuid.UUID | None = None
    ) -> bool:
        """Whether `principal` may `act` on `obj` in `org_id` (default: its own org)."""
        org = principal.org_id if org_id is None else org_id
        if principal.kind == "user":
            # Keys and system principals hold only their own roles: nothing to load.
            await self._ensure_assignments(org)
        return self.authorizer.check(principal, obj, act, org_id=org_id)

    async def authorize(
        self, principal: Principal, obj: str, act: str, *, org_id: uuid.UUID | None = None
    ) -> None:
        """Return if allowed.

        Raises:
            ForbiddenError: the principal lacks the permission (403).
        """
        if not await self.allowed(principal, obj, act, org_id=org_id):
            raise ForbiddenError(f"{act} on {obj} is not permitted")

    async def _ensure_assignments(self, org_id: uuid.UUID | None) -> None:
        loaded_at = self._global_loaded_at
        if loaded_at is None or self._clock() - loaded_at > self._ttl:
            async with self.database.platform_session(read_only=True) as db:
                rows = _detach_assignments(await repository.list_global_role_assignments(db))
            self.authorizer.load_global(rows)
            self._global_loaded_at = self._clock()
        if org_id is not None and not self.authorizer.is_loaded(org_id):

            async def fetch() -> list[AssignmentLike]:
                async with self.database.platform_session(read_only=True) as db:
                    found = await repository.list_role_assignments(db, org_id=org_id)
                    return _detach_assignments(found)

            await self.authorizer.ensure_loaded(org_id, fetch)

    # --- cache upkeep ------------------------------------------------------------------

    def forget_all(self) -> None:
        """Drop every cached organisation, key and role assignment."""
        self._orgs.clear()
        self._keys.clear()
        self._tokens.clear()
        self._global_loaded_at = None
        self.authorizer.invalidate_all()

    def close(self) -> None:
        """Stop listening for changes (at shutdown)."""
        _LISTENERS.discard(self)

    def _apply(self, changes: _Changes) -> None:
        if changes.organizations:
            # A key's record carries its organisation's status: drop both.
            self._orgs.clear()
            self._keys.clear()
        if changes.all_keys:
            self._keys.clear()
        for prefix in changes.key_prefixes:
            self._keys.discard(prefix)
        if changes.all_roles:
            self._global_loaded_at = None
            self.authorizer.invalidate_all()
        for org_id in changes.role_orgs:
            if org_id is None:
                self._global_loaded_at = None
            self.authorizer.invalidate(org_id)


def _refuse_suspended(org: _Org) -> None:
    if not org.active:
        raise ForbiddenError(f"organisation {org.slug} is suspended")


async def _detach_key(db: AsyncSession, row: ApiKey) -> _Key | None:
    organization = await db.get(Organization, row.org_id)
    if organization is None:  # cannot happen with the foreign key; refuse rather than guess
        return None
    org = _Org(organization.id, organization.slug, organization.status == OrgStatus.ACTIVE)
    return _Key(
        prefix=row.prefix,
        hash=row.hash,
        org_id=row.org_id,
        roles=tuple(row.roles or ()),
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        org=org,
    )


@dataclass(frozen=True, slots=True)
class _Assignment:
    subject: str
    role: str


def _detach_assignments(rows: Iterable[RoleAssignment]) -> list[AssignmentLike]:
    return [_Assignment(row.subject, row.role) for row in rows]


# --- change notification: ORM hooks on every tenant session ---------------------------

_LISTENERS: weakref.WeakSet[Access] = weakref.WeakSet()
_PENDING = "ehr_identity_changes"


def _pending(session: Session) -> _Changes:
    changes = session.info.get(_PENDING)
    if not isinstance(changes, _Changes):
        changes = session.info[_PENDING] = _Changes()
    return changes


@event.listens_for(TenantSession, "after_flush")
def _collect_flushed(session: Session, _context: Any) -> None:
    for row in chain(session.new, session.dirty, session.deleted):
        if isinstance(row, Organization):
            _pending(session).organizations = True
        elif isinstance(row, ApiKey):
            _pending(session).key_prefixes.add(row.prefix)
        elif isinstance(row, RoleAssignment):
            _pending(session).role_orgs.add(row.org_id)


@event.listens_for(TenantSession, "do_orm_execute")
def _collect_bulk(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete) or state.bind_mapper is None:
        return
    kind = state.bind_mapper.class_
    if issubclass(kind, Organization):
        _pending(state.session).organizations = True
    elif issubclass(kind, ApiKey):
        _pending(state.session).all_keys = True
    elif issubclass(kind, RoleAssignment):
        _pending(state.session).all_roles = True


@event.listens_for(TenantSession, "after_commit")
def _publish(session: Session) -> None:
    changes = session.info.pop(_PENDING, None)
    if isinstance(changes, _Changes):
        for listener in list(_LISTENERS):
            listener._apply(changes)


@event.listens_for(TenantSession, "after_rollback")
def _discard(session: Session) -> None:
    session.info.pop(_PENDING, None)
