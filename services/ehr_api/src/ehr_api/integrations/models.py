"""Integration vendors (global reference data) and each organisation's credentials.

`integration_vendors` is seeded by the migrations (`hl7-v2x`, `fhir-r4`) and read-only to
the application: a vendor exists when the code has a handler for it. Its slug is the key,
so credentials and handler registries name vendors the same way.

`integration_credentials.config` holds non-secret settings as plain JSON; `secrets` holds
only encrypted envelopes (`{"tls_key": {"kid": ..., "ct": ...}}`) written by the crypto
helper, never plaintext. `version` is SQLAlchemy's optimistic-concurrency counter: every
UPDATE bumps it and a concurrent writer gets `StaleDataError` instead of silently
overwriting; cached clients compare it to know when credentials changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from ehr_api.db.base import Base, OrgScopedMixin, TimestampMixin, UuidPrimaryKeyMixin, utcnow

__all__ = ["FHIR_R4", "HL7_V2X", "SEEDED_VENDORS", "IntegrationCredential", "IntegrationVendor"]

HL7_V2X = "hl7-v2x"
FHIR_R4 = "fhir-r4"
#: Rows the initial migration inserts; later migrations add vendors as handlers appear.
SEEDED_VENDORS: tuple[tuple[str, str], ...] = (
    (HL7_V2X, "HL7 v2.x over MLLP"),
    (FHIR_R4, "FHIR R4 REST"),
)


class IntegrationVendor(Base):
    """A kind of integration the platform has a handler for."""

    __tablename__ = "integration_vendors"

    slug: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))


class IntegrationCredential(UuidPrimaryKeyMixin, OrgScopedMixin, TimestampMixin, Base):
    """One configured connection of an organisation to a vendor's system."""

    __tablename__ = "integration_credentials"
    __table_args__ = (UniqueConstraint("org_id", "name"),)
    __org_id_index__ = False  # the unique constraint leads with org_id

    vendor: Mapped[str] = mapped_column(
        String(32), ForeignKey("integration_vendors.slug", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secrets: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(default=True, server_default=true())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads it once
