"""The organisations table: one row per tenant.

`organizations` carries no `org_id` (its `id` *is* the organisation) but is still
tenant-visible data: on PostgreSQL its policy lets an organisation's session see only its
own row, and looking an organisation up by slug before its session exists (token and API
key authentication) is platform work done in a platform session.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ehr_api.db.base import Base, TenantRoot, TimestampMixin, text_enum

__all__ = ["OrgStatus", "Organization"]


class OrgStatus(StrEnum):
    """A suspended organisation keeps its data but its tokens and keys are refused."""

    ACTIVE = "active"
    SUSPENDED = "suspended"


class Organization(TenantRoot, TimestampMixin, Base):
    """A tenant. Never deleted (its audit chain must stay verifiable): suspend instead."""

    __tablename__ = "organizations"

    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[OrgStatus] = mapped_column(
        text_enum(OrgStatus, name="status"), default=OrgStatus.ACTIVE
    )
