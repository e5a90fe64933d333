"""Rules for API keys and role assignments; no HTTP here (routes are in `routes.py`).

API keys are shown once: `create_api_key` returns the key with the stored row and nothing
ever can again (only the prefix and a hash are kept). Keys are revoked, not deleted, so
audit rows that name `apikey:<prefix>` keep pointing at something.

Role assignments are the database half of RBAC (the policy file is the other). Caches of
them (the `Authorizer` of every `Access` in this process) are invalidated when the
transaction that changed them commits, by the ORM hooks in `ehr_api.auth.access`, so a
service never has to remember to call `invalidate` and a rolled-back change never evicts
anything. Other processes catch up within the access cache's TTL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ehr_api.auth import repository
from ehr_api.auth.api_keys import check_key_roles, generate_api_key
from ehr_api.auth.models import ApiKey, Principal, PrincipalKind, RoleAssignment
from ehr_api.auth.principal import ORG_ROLES
from ehr_api.db.base import utcnow
from ehr_api.errors import ConflictError, InvalidError, NotFoundError

__all__ = [
    "CreatedApiKey",
    "assign_role",
    "create_api_key",
    "list_api_keys",
    "list_role_assignments",
    "remove_role_assignment",
    "revoke_api_key",
]


@dataclass(frozen=True, slots=True)
class CreatedApiKey:
    """A new key's row and the key itself, which the caller must show once and drop."""

    row: ApiKey
    key: str


async def create_api_key(
    db: AsyncSession,
    *,
    org_id: uuid.UUID,
    name: str,
    roles: Iterable[str],
    expires_at: datetime | None = None,
) -> CreatedApiKey:
    """Mint a key for `org_id` carrying `roles` (organisation roles only).

    Raises:
        InvalidError: no role, an unknown or global role (field `roles`), or an expiry
            that is not in the future (field `expires_at`).
    """
    try:
        granted = check_key_roles(roles)
    except ValueError as exc:
        raise InvalidError(str(exc), field="roles") from None
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidError("expires_at must be in the future", field="expires_at")
    new = generate_api_key()
    row = ApiKey(
        org_id=org_id,
        prefix=new.prefix,
        hash=new.hash,
        name=name,
        roles=granted,
        expires_at=expires_at,
    )
    await repository.add(db, row)
    return CreatedApiKey(row=row, key=new.key)


async def list_api_keys(db: AsyncSession, *, org_id: uuid.UUID) -> Sequence[ApiKey]:
    """Every key of the organisation, revoked ones included (newest first)."""
    return await repository.list_api_keys(db, org_id=org_id)


async def revoke_api_key(
    db: AsyncSession, *, org_id: uuid.UUID, key_id: uuid.UUID, at: datetime | None = None
) -> ApiKey:
    """Revoke the key now (or at `at`, a grace period); revoking twice keeps the first time.

    Raises:
        NotFoundError: no such key in this organisation.
    """
    row = await repository.get_api_key(db, org_id=org_id, key_id=key_id)
    if row is None:
        raise NotFoundError(f"API key {key_id} not found")
    if row.revoked_at is None:
        row.revoked_at = at or utcnow()
        await db.flush()
    return row


async def assign_role(
    db: AsyncSession, *, org_id: uuid.UUID, subject: str, role: str
) -> RoleAssignment:
    """Give `subject` the organisation role `role` (recording the principal if new).

    Raises:
        InvalidError: `role` is unknown or global (field `role`), or `subject` is empty.
        ConflictError: the subject already holds the role here.
    """
    if role not in ORG_ROLES:
        raise InvalidError(
            f"role {role!r} cannot be assigned in an organisation; expected one of"
            f" {sorted(ORG_ROLES)}",
            field="role",
        )
    subject = subject.strip()
    if not subject:
        raise InvalidError("subject must not be empty", field="subject")
    if await repository.find_role_assignment(db, org_id=org_id, subject=subject, role=role):
        raise ConflictError(f"{subject} already holds {role}", field="role")
    if await repository.find_principal(db, org_id=org_id, subject=subject) is None:
        await repository.add(db, Principal(org_id=org_id, subject=subject, kind=PrincipalKind.USER))
    try:
        return await repository.add(db, RoleAssignment(org_id=org_id, subject=subject, role=role))
    except IntegrityError:
        raise ConflictError(f"{subject} already holds {role}", field="role") from None


async def list_role_assignments(db: AsyncSession, *, org_id: uuid.UUID) -> Sequence[RoleAssignment]:
    """The organisation's role assignments, by subject."""
    return await repository.list_role_assignments(db, org_id=org_id)


async def remove_role_assignment(
    db: AsyncSession, *, org_id: uuid.UUID, assignment_id: uuid.UUID
) -> None:
    """Take an assignment away (the principal row stays, for the audit trail's sake).

    Raises:
        NotFoundError: no such assignment in this organisation.
    """
    row = await repository.get_role_assignment(db, org_id=org_id, assignment_id=assignment_id)
    if row is None:
        raise NotFoundError(f"role assignment {assignment_id} not found")
    await db.delete(row)
    await db.flush()
