"""Tables of the FHIR store: current versions, every version, and the search index.

The current table answers read and search without scanning history; the history table
keeps every version (tombstones included) so vread and `_history` never depend on the
current row. The token index is written in the same transaction as the resource, so a
search can never see a resource its index does not describe (or the reverse).

Every table leads its primary key with `org_id`: the org session filters on it and, on
PostgreSQL, row-level security admits only the session's organisation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from ehr_api.db.base import Base, OrgScopedMixin

__all__ = ["FhirResource", "FhirResourceHistory", "FhirSearchToken"]


class FhirResource(OrgScopedMixin, Base):
    """The current version of one resource (a tombstone when `deleted`)."""

    __tablename__ = "fhir_resources"
    __table_args__ = (PrimaryKeyConstraint("org_id", "resource_type", "id"),)
    __org_id_index__ = False  # the primary key leads with org_id

    resource_type: Mapped[str] = mapped_column(String(64))
    id: Mapped[str] = mapped_column(String(64))
    version_id: Mapped[int]
    last_updated: Mapped[datetime]
    deleted: Mapped[bool] = mapped_column(default=False)
    content: Mapped[dict[str, Any]]


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
