"""Tables of the FHIR store: current versions, every version, and the search index.

The current table answers read and search without scanning history; the history table
keeps every version (tombstones included) so vread and `_history` never depend on the
current row. The index tables (token, string, date, number/quantity, reference) are written in the same transaction as the resource, so a
search can never see a resource its index does not describe (or the reverse).

Every table leads its primary key with `org_id`: the org session filters on it and, on
PostgreSQL, row-level security admits only the session's organisation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, Index, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from ehr_api.db.base import Base, OrgScopedMixin

__all__ = [
    "FhirResource",
    "FhirResourceHistory",
    "FhirSearchDate",
    "FhirSearchNumber",
    "FhirSearchReference",
    "FhirSearchString",
    "FhirSearchToken",
]


class FhirResource(OrgScopedMixin, Base):
    """The current version of one resource (a tombstone when `deleted`)."""

    __tablename__ = "fhir_resources"
    __table_args__ = (
        PrimaryKeyConstraint("org_id", "resource_type", "id"),
        # The default search order and `_lastUpdated`.
        Index("ix_fhir_resources_updated", "org_id", "resource_type", "last_updated", "id"),
    )
    __org_id_index__ = False  # the primary key leads with org_id
    __allow_unmapped__ = True  # for `written_by`, which is not a column

    resource_type: Mapped[str] = mapped_column(String(64))
    id: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int]
    last_updated: Mapped[datetime]
    deleted: Mapped[bool] = mapped_column(default=False)
    content: Mapped[dict[str, Any]]

    #: Not a column: on PostgreSQL, the id of the transaction that wrote the row version
    #: a read returned (`xmin`, as text), which a write of the next version names so that
    #: it applies only over exactly what was read (`pg_write`); None elsewhere.
    written_by: str | None = None


class FhirResourceHistory(OrgScopedMixin, Base):
    """Every version ever written, tombstones included (vread, `_history`)."""

    __tablename__ = "fhir_resource_history"
    __table_args__ = (PrimaryKeyConstraint("org_id", "resource_type", "id", "version_id"),)
    __org_id_index__ = False

    resource_type: Mapped[str] = mapped_column(String(64))
    id: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int]
    last_updated: Mapped[datetime]
    deleted: Mapped[bool] = mapped_column(default=False)
    content: Mapped[dict[str, Any]]


class FhirSearchToken(OrgScopedMixin, Base):
    """One token (`system|code`) of one search parameter of a current resource.

    `system` is '' when the token has none, so `|code` (explicitly no system) and `code`
    (any system) can both be answered with plain equality.
    """

    __tablename__ = "fhir_search_token"
    __table_args__ = (
        PrimaryKeyConstraint("org_id", "resource_type", "resource_id", "param", "system", "code"),
        Index("ix_fhir_search_token_lookup", "org_id", "resource_type", "param", "code"),
    )
    __org_id_index__ = False

    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(64))
    system: Mapped[str] = mapped_column(String(255))
    code: Mapped[str] = mapped_column(String(255))


class FhirSearchString(OrgScopedMixin, Base):
    """One string value of one search parameter (names, addresses, free text).

    `value` is normalised for the default match (case-folded, accents stripped, whitespace
    collapsed, cut to 255) so `name=jo` is a prefix LIKE on an index; `exact` keeps the
    original text (cut to 255) for `:exact`.
    """

    __tablename__ = "fhir_search_string"
    __table_args__ = (
        PrimaryKeyConstraint("org_id", "resource_type", "resource_id", "param", "exact"),
        Index(
            "ix_fhir_search_string_lookup",
            "org_id",
            "resource_type",
            "param",
            "value",
            postgresql_ops={"value": "varchar_pattern_ops"},  # prefix LIKE under any collation
        ),
    )
    __org_id_index__ = False

    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(255))
    exact: Mapped[str] = mapped_column(String(255))


class FhirSearchDate(OrgScopedMixin, Base):
    """One date/dateTime/instant/Period/Timing value as the instant range it covers.

    `low` is inclusive and `high` exclusive, both UTC: `2024-03` covers
    [2024-03-01T00:00Z, 2024-04-01T00:00Z). An open end of a Period is stored as the
    far past / far future (see `indexing.FAR_PAST` / `FAR_FUTURE`). A date without a zone
    is read as UTC.
    """

    __tablename__ = "fhir_search_date"
    __table_args__ = (
        PrimaryKeyConstraint("org_id", "resource_type", "resource_id", "param", "low", "high"),
        Index("ix_fhir_search_date_low", "org_id", "resource_type", "param", "low"),
        Index("ix_fhir_search_date_high", "org_id", "resource_type", "param", "high"),
    )
    __org_id_index__ = False

    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(64))
    low: Mapped[datetime]
    high: Mapped[datetime]


class FhirSearchNumber(OrgScopedMixin, Base):
    """One number or Quantity value as the range its precision implies.

    `100` is stored as [99.5, 100.5] (`low`/`high` inclusive, from the significant
    digits, per the spec's number semantics). For a Quantity `system` and `code` hold the
    unit system and code ('' when absent; `code` falls back to `unit`). Plain numbers
    have both ''.
    """

    __tablename__ = "fhir_search_number"
    __table_args__ = (
        PrimaryKeyConstraint(
            "org_id", "resource_type", "resource_id", "param", "low", "high", "system", "code"
        ),
        Index("ix_fhir_search_number_lookup", "org_id", "resource_type", "param", "low"),
    )
    __org_id_index__ = False

    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(64))
    low: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    system: Mapped[str] = mapped_column(String(255))
    code: Mapped[str] = mapped_column(String(255))


class FhirSearchReference(OrgScopedMixin, Base):
    """One reference of one search parameter: the edge `_include`, `_revinclude`,
    chained search and `$everything` walk.

    A relative reference `Patient/123` is stored as target_type 'Patient', target_id
    '123'; an absolute or logical one keeps `url` (the reference text, cut to 255) with
    target_type/target_id '' when they cannot be read from it. Only the caller's own
    organisation's rows exist here, so a walk can never leave the organisation.
    """

    __tablename__ = "fhir_search_reference"
    __table_args__ = (
        PrimaryKeyConstraint(
            "org_id", "resource_type", "resource_id", "param", "target_type", "target_id", "url"
        ),
        Index("ix_fhir_search_reference_target", "org_id", "target_type", "target_id"),
    )
    __org_id_index__ = False

    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(64))
    param: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(255))
