"""What the audit API returns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from ehr_api.audit.models import ActorType

__all__ = ["AuditPageRead", "AuditRead", "VerificationRead"]


class AuditRead(BaseModel):
    """One audit row, hashes included so a reader can re-check the chain themselves."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    org_id: uuid.UUID | None
    occurred_at: datetime
    actor: str
    actor_type: ActorType
    action: str
    resource_type: str | None
    resource_ids: list[str]
    outcome: str
    status_code: int | None
    client_ip: str | None
    user_agent: str | None
    request_id: str | None
    details: dict[str, Any]
    prev_hash: str | None
    hash: str


class AuditPageRead(BaseModel):
    """Rows newest first; follow `next` (a URL) for older ones until it is null."""

    items: list[AuditRead]
    next: str | None


class VerificationRead(BaseModel):
    """The outcome of walking the caller's organisation's chain."""

    ok: bool
    rows_checked: int
    broken_row_id: int | None = None
    reason: str | None = None
