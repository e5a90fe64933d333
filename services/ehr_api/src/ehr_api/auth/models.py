"""Who may act, and with which roles: principals, role assignments and API keys.

Platform administrators are global, not members of an organisation. Rather than give
`principals` a nullable `org_id` (and a uniqueness rule that NULLs would escape), the
platform-wide grant lives in `role_assignments` with `org_id` NULL — casbin's global
domain "*" — keyed by the token subject alone; `principals` stays strictly org-scoped.
Global assignments are visible only in a platform session, which is where the casbin
loader reads them.

API keys are looked up by `prefix` before the organisation is known (the key is the
credential), so that lookup is platform work too; only the hash of the secret is stored.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from ehr_api.db.base import (
    Base,
    OptionalOrgScopedMixin,
    OrgScopedMixin,
    TimestampMixin,
    UuidPrimaryKeyMixin,
    text_enum,
)

__all__ = ["ApiKey", "Principal", "PrincipalKind", "RoleAssignment"]


class PrincipalKind(StrEnum):
    USER = "user"
    MACHINE = "machine"


class Principal(UuidPrimaryKeyMixin, OrgScopedMixin, TimestampMixin, Base):
    """A user or machine the organisation knows, identified by its token subject."""

    __tablename__ = "principals"
    __table_args__ = (UniqueConstraint("org_id", "subject"),)
    __org_id_index__ = False  # the unique constraint leads with org_id

    subject: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[PrincipalKind] = mapped_column(
        text_enum(PrincipalKind, name="kind"), default=PrincipalKind.USER
    )


class RoleAssignment(UuidPrimaryKeyMixin, OptionalOrgScopedMixin, TimestampMixin, Base):
    """`subject` holds `role` in organisation `org_id`, or everywhere when `org_id` is NULL.

    Uniqueness is two partial indexes because NULL never equals NULL in a plain unique
    constraint: one for organisation rows, one for global rows.
    """

    __tablename__ = "role_assignments"
    __table_args__ = (
        Index(
            "uq_role_assignments_org_id_subject_role",
            "org_id",
            "subject",
            "role",
            unique=True,
            postgresql_where=text("org_id IS NOT NULL"),
            sqlite_where=text("org_id IS NOT NULL"),
        ),
        Index(
            "uq_role_assignments_global_subject_role",
            "subject",
            "role",
            unique=True,
            postgresql_where=text("org_id IS NULL"),
            sqlite_where=text("org_id IS NULL"),
        ),
    )
    __org_id_index__ = False  # the first partial index leads with org_id

    subject: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(64))


class ApiKey(UuidPrimaryKeyMixin, OrgScopedMixin, TimestampMixin, Base):
    """A partner or machine credential: shown once, stored as `prefix` + hash of the secret.

    `roles` is a JSON list of role names granted to the key within its organisation.
    """

    __tablename__ = "api_keys"

    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    hash: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(default=list)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
