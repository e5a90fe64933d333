"""The declarative base, the column types every table shares, and the common mixins.

Types are chosen to behave the same on SQLite and PostgreSQL:

- `UTCDateTime`: `timestamptz` on PostgreSQL; on SQLite (which has no time zones) the value
  is stored as UTC text and comes back tagged UTC, so code never meets a naive datetime.
  Naive datetimes are refused on the way in rather than guessed at.
- `JSONDocument`: JSONB on PostgreSQL (indexable, compact), JSON text on SQLite; Python
  `None` is SQL NULL, not the JSON literal `null`.
- `uuid.UUID` columns use `sqlalchemy.Uuid`: native `uuid` on PostgreSQL, 32 hex
  characters on SQLite.
- `BigIdentity`: a 64-bit identity on PostgreSQL; on SQLite an INTEGER PRIMARY KEY
  (the rowid alias, 64-bit anyway), so hot append tables get monotonic ids on both.

The naming convention gives every constraint and index a predictable name, which is what
lets a migration drop or alter it later, on both databases.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Integer,
    MetaData,
    TypeDecorator,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, synonym
from sqlalchemy.types import TypeEngine

__all__ = [
    "NAMING_CONVENTION",
    "Base",
    "BigIdentity",
    "JSONDocument",
    "OptionalOrgScopedMixin",
    "OrgScopedMixin",
    "TenantRoot",
    "TenantScoped",
    "TimestampMixin",
    "UTCDateTime",
    "UuidPrimaryKeyMixin",
    "text_enum",
    "utcnow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the only kind stored)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (see the module docstring)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware value")
        value = value.astimezone(UTC)
        # SQLite stores text; drop the offset so values sort and compare as text.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONDocument: TypeEngine[Any] = JSON(none_as_null=True).with_variant(
    JSONB(none_as_null=True), "postgresql"
)
BigIdentity: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")


def text_enum(enum: type[StrEnum], *, name: str, length: int = 16) -> Enum:
    """A `StrEnum` stored as its values in VARCHAR with a CHECK constraint.

    Not a native PostgreSQL ENUM: adding a value to a CHECK is a plain migration on both
    databases, while `ALTER TYPE ... ADD VALUE` cannot run inside a transaction block.
    """
    return Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=length,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    """Declarative base of every table; `Base.metadata` is what Alembic compares against."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - read by SQLAlchemy at class creation
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
        dict[str, Any]: JSONDocument,
        list[str]: JSONDocument,
        list[Any]: JSONDocument,
    }


class UuidPrimaryKeyMixin:
    """A random UUID primary key: ids reveal nothing about other tenants' volumes."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, sort_order=-10)


class TimestampMixin:
    """`created_at`, set by Python for ORM/Core inserts and by the database for raw ones."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class TenantScoped:
    """Base of every row that belongs to an organisation, named by its `org_id`.

    The tenant-scoped session (`ehr_api.db.session`) filters every ORM query on these
    classes by the session's organisation (one criterion on this base covers them all)
    and refuses to flush rows of another one; on PostgreSQL the same tables carry
    row-level security policies. Use one of the mixins below rather than this class.

    A table whose composite index or unique constraint already leads with `org_id` sets
    `__org_id_index__ = False` to skip the redundant single-column index (a test checks
    that every tenant table has some index leading with `org_id`).
    """

    __org_id_index__: ClassVar[bool] = True

    @declared_attr
    def org_id(cls) -> Mapped[uuid.UUID | None]:
        return _org_id_column(index=cls.__org_id_index__, nullable=True)


class OrgScopedMixin(TenantScoped):
    """`org_id NOT NULL`, a foreign key to organizations, indexed."""

    @declared_attr
    def org_id(cls) -> Mapped[uuid.UUID]:
        return _org_id_column(index=cls.__org_id_index__, nullable=False)


class OptionalOrgScopedMixin(TenantScoped):
    """`org_id` that may be NULL for platform-level rows (global roles, platform audit).

    NULL rows are visible only to a platform session: an organisation never sees them.
    """


def _org_id_column(*, index: bool, nullable: bool) -> Mapped[Any]:
    return mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"),
        index=index,
        nullable=nullable,
        sort_order=-5,
    )


class TenantRoot(UuidPrimaryKeyMixin, TenantScoped):
    """Mixin of the organisations table: its `id` is the tenant key, `org_id` a synonym.

    So the session's one criterion (`org_id = :org`) covers it as well: an organisation's
    session sees only its own row, and "list organisations" is platform work.
    """

    @declared_attr
    def org_id(cls) -> Mapped[uuid.UUID]:
        return synonym("id")
