"""The one object that says who is calling: `Principal`.

Whatever authenticated the request (a bearer token, an API key, or the platform itself
running background work), routes and services see the same frozen value, so
authorisation, auditing and tenant scoping never branch on how the caller logged in.

`roles` are the roles the *credential* carries (token claims, the API key row). They are
trusted only for the credential's own organisation, except global roles on user tokens;
roles assigned in the database are added by the `Authorizer`, per organisation, at check
time. See `ehr_api.auth.rbac` for the exact rule.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from ehr_api.auth.tokens import TokenClaims

__all__ = [
    "GLOBAL_ROLES",
    "ORG_ROLES",
    "Principal",
    "PrincipalKind",
    "Role",
]

PrincipalKind = Literal["user", "api_key", "system"]
_KINDS: frozenset[str] = frozenset({"user", "api_key", "system"})


class Role(StrEnum):
    """The roles the policy file knows. Values are what tokens, keys and rows carry."""

    PLATFORM_ADMIN = "platform_admin"
    ORG_ADMIN = "org_admin"
    INTEGRATION_ENGINEER = "integration_engineer"
    CLINICIAN = "clinician"
    PARTNER = "partner"
    AUDITOR = "auditor"


#: Roles that hold in every organisation (casbin domain "*"), never granted to API keys.
GLOBAL_ROLES: frozenset[str] = frozenset({Role.PLATFORM_ADMIN.value})
#: Roles that only mean something inside one organisation.
ORG_ROLES: frozenset[str] = frozenset(role.value for role in Role) - GLOBAL_ROLES


class _ApiKeyLike(Protocol):
    @property
    def prefix(self) -> str: ...
    @property
    def org_id(self) -> uuid.UUID: ...
    @property
    def roles(self) -> Iterable[str]: ...


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting, for which organisation, with which credential roles.

    `org_id` is None only for organisation-less callers (a platform administrator's token,
    or system work that spans organisations). Instances are hashable and cheap to compare,
    which lets the authorizer use them in its hot path without copying.
    """

    subject: str
    org_id: uuid.UUID | None
    org_slug: str | None
    roles: frozenset[str]
    kind: PrincipalKind = "user"
    api_key_prefix: str | None = None

    def __post_init__(self) -> None:
        roles = self.roles if isinstance(self.roles, frozenset) else frozenset(self.roles)
        if self.kind == "api_key":
            # Keys are organisation credentials: a global role on one is dropped here, once,
            # as well as refused at creation, so a leaked key never reaches other tenants.
            roles -= GLOBAL_ROLES
        # Any iterable is accepted; the immutable, hash-cached form is stored.
        object.__setattr__(self, "roles", roles)
        if self.kind not in _KINDS:
            raise ValueError(f"kind={self.kind!r}: expected one of {sorted(_KINDS)}")
        if not self.subject:
            raise ValueError("subject must not be empty")
        if self.kind == "api_key" and (self.api_key_prefix is None or self.org_id is None):
            raise ValueError("an api_key principal needs api_key_prefix and org_id")

    @property
    def actor(self) -> str:
        """How audit rows name the caller: the subject, or `apikey:<prefix>` for keys."""
        if self.kind == "api_key":
            return f"apikey:{self.api_key_prefix}"
        return self.subject

    @property
    def is_platform_admin(self) -> bool:
        """True when the credential itself carries the global administrator role."""
        return Role.PLATFORM_ADMIN.value in self.roles

    def has_role(self, role: str) -> bool:
        """Whether the credential carries `role` (database assignments not included)."""
        return role in self.roles

    def belongs_to(self, org_id: uuid.UUID) -> bool:
        """Whether the credential was issued for `org_id`."""
        return self.org_id is not None and self.org_id == org_id

    @classmethod
    def from_token(
        cls, claims: TokenClaims, *, org_id: uuid.UUID | None, org_slug: str | None
    ) -> Principal:
        """A user principal from verified claims; the caller resolves `claims.org` first.

        The `org` claim may be a slug or an id, and only the database can tell which
        organisation it names (and whether it is suspended), so resolution stays with the
        caller and this stays free of I/O.
        """
        return cls(
            subject=claims.subject,
            org_id=org_id,
            org_slug=org_slug,
            roles=frozenset(claims.roles),
            kind="user",
        )

    @classmethod
    def from_api_key(cls, key: _ApiKeyLike, *, org_slug: str | None = None) -> Principal:
        """A principal for a verified API key row; only organisation roles survive."""
        return cls(
            subject=f"apikey:{key.prefix}",
            org_id=key.org_id,
            org_slug=org_slug,
            roles=frozenset(key.roles),
            kind="api_key",
            api_key_prefix=key.prefix,
        )

    @classmethod
    def system(
        cls,
        name: str = "system",
        *,
        org_id: uuid.UUID | None = None,
        org_slug: str | None = None,
        roles: Iterable[str] = (Role.PLATFORM_ADMIN.value,),
    ) -> Principal:
        """The platform acting on its own (workers, CLI, migrations' seed data).

        It goes through the same checks as everyone else (with `platform_admin` by default)
        rather than bypassing them, so audit rows and policy stay the single truth.
        """
        return cls(
            subject=f"system:{name}",
            org_id=org_id,
            org_slug=org_slug,
            roles=frozenset(roles),
            kind="system",
        )
