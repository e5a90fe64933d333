"""What the API key, member and `me` routes accept and return."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyRead",
    "MemberCreate",
    "MemberRead",
    "PrincipalRead",
]

_Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class ApiKeyCreate(BaseModel):
    """A new key for a partner or a machine of the caller's organisation."""

    model_config = ConfigDict(extra="forbid")

    name: _Name = Field(examples=["ris-gateway"])
    roles: list[str] = Field(min_length=1, examples=[["partner"]])
    expires_at: AwareDatetime | None = None


class ApiKeyRead(BaseModel):
    """A key as listed: never the key itself, never its hash."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    prefix: str
    name: str
    roles: list[str]
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


class ApiKeyCreated(ApiKeyRead):
    """The creation response: `key` is shown this once and cannot be retrieved again."""

    key: str


class MemberCreate(BaseModel):
    """Grant `role` in the caller's organisation to the principal named `subject`."""

    model_config = ConfigDict(extra="forbid")

    subject: _Name = Field(examples=["alice@example.org"])
    role: str = Field(examples=["clinician"])


class MemberRead(BaseModel):
    """One role assignment."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    subject: str
    role: str
    created_at: datetime


class PrincipalRead(BaseModel):
    """Who the credential says the caller is, and the roles they hold in their organisation."""

    subject: str
    kind: str
    org_id: uuid.UUID | None
    org_slug: str | None
    roles: list[str]
