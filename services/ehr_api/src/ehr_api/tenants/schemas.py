"""What the organisations admin API accepts and returns.

Slugs end up in URLs, token claims, log lines and PostgreSQL settings, so they are held to
DNS-label rules (lowercase letters, digits and inner hyphens, 3-63 characters): safe
everywhere without escaping, and readable when an operator greps for them.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from ehr_api.tenants.models import OrgStatus

__all__ = [
    "SLUG_PATTERN",
    "OrganizationCreate",
    "OrganizationList",
    "OrganizationRead",
    "Slug",
    "check_slug",
]

SLUG_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]")


def check_slug(value: str) -> str:
    """`value` if it is a valid organisation slug.

    >>> check_slug("st-marys-2")
    'st-marys-2'

    Raises:
        ValueError: not 3-63 lowercase letters, digits and inner hyphens.
    """
    if not SLUG_PATTERN.fullmatch(value):
        raise ValueError(
            "a slug is 3-63 lowercase letters, digits and hyphens, starting and ending"
            " with a letter or digit"
        )
    return value


Slug = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(check_slug)]


class OrganizationCreate(BaseModel):
    """A new tenant; it starts active."""

    model_config = ConfigDict(extra="forbid")

    slug: Slug = Field(examples=["st-marys"])
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class OrganizationRead(BaseModel):
    """An organisation as the platform administrator sees it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    slug: str
    name: str
    status: OrgStatus
    created_at: datetime


class OrganizationList(BaseModel):
    """One page of organisations, oldest first, and how many there are in all."""

    items: list[OrganizationRead]
    total: int
    limit: int
    offset: int
