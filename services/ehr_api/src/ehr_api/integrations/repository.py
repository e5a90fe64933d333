"""Queries on `integration_credentials`, and nothing else: rules live in `service.py`.

Every function takes the organisation as a required keyword and filters on it, on top of
the org session's own filter (and row-level security on PostgreSQL): three walls, so a
query written here can never reach another tenant's credentials even if one slips.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ehr_api.integrations.models import HL7_V2X, IntegrationCredential

__all__ = ["add", "count", "delete", "get", "get_by_name", "inbound_ports", "list_page"]


async def get(
    db: AsyncSession, *, org_id: uuid.UUID, integration_id: uuid.UUID
) -> IntegrationCredential | None:
    result = await db.execute(
        select(IntegrationCredential).where(
            IntegrationCredential.org_id == org_id, IntegrationCredential.id == integration_id
        )
    )
    return result.scalar_one_or_none()


async def get_by_name(
    db: AsyncSession, *, org_id: uuid.UUID, name: str
) -> IntegrationCredential | None:
    result = await db.execute(
        select(IntegrationCredential).where(
            IntegrationCredential.org_id == org_id, IntegrationCredential.name == name
        )
    )
    return result.scalar_one_or_none()


async def list_page(
    db: AsyncSession, *, org_id: uuid.UUID, limit: int, offset: int, vendor: str | None = None
) -> Sequence[IntegrationCredential]:
    query = select(IntegrationCredential).where(IntegrationCredential.org_id == org_id)
    if vendor is not None:
        query = query.where(IntegrationCredential.vendor == vendor)
    query = query.order_by(IntegrationCredential.name).limit(limit).offset(offset)
    return (await db.execute(query)).scalars().all()


async def count(db: AsyncSession, *, org_id: uuid.UUID, vendor: str | None = None) -> int:
    query = select(func.count()).where(IntegrationCredential.org_id == org_id)
    if vendor is not None:
        query = query.where(IntegrationCredential.vendor == vendor)
    return int((await db.execute(query)).scalar_one())


async def inbound_ports(
    db: AsyncSession, *, org_id: uuid.UUID, exclude: uuid.UUID | None = None
) -> dict[int, str]:
    """Listener ports of the organisation's hl7-v2x integrations -> integration name.

    Read from the JSON config in Python: an organisation has a handful of integrations,
    and this stays portable across SQLite and PostgreSQL JSON operators.
    """
    query = select(
        IntegrationCredential.id, IntegrationCredential.name, IntegrationCredential.config
    ).where(IntegrationCredential.org_id == org_id, IntegrationCredential.vendor == HL7_V2X)
    ports: dict[int, str] = {}
    for row_id, name, config in (await db.execute(query)).all():
        port = (config or {}).get("inbound_port")
        if row_id != exclude and isinstance(port, int):
            ports[port] = name
    return ports


async def add(db: AsyncSession, credential: IntegrationCredential) -> IntegrationCredential:
    db.add(credential)
    await db.flush()
    return credential


async def delete(db: AsyncSession, credential: IntegrationCredential) -> None:
    await db.delete(credential)
    await db.flush()
