"""The FastAPI dependency: one transaction per request, committed before the response."""

from __future__ import annotations

import uuid
from typing import Annotated

import httpx
from ehr_api.db import Database, org_session_dependency
from ehr_api.db.models import IntegrationCredential, Organization
from fastapi import Depends, FastAPI, Header
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession


def caller_org(x_org: Annotated[str, Header()]) -> uuid.UUID:
    """Stands in for the authenticated principal's organisation."""
    return uuid.UUID(x_org)


OrgSession = Annotated[AsyncSession, Depends(org_session_dependency(caller_org), scope="function")]


def make_app(database: Database) -> FastAPI:
    app = FastAPI()
    app.state.database = database

    @app.post("/credentials/{name}", status_code=201)
    async def create(name: str, db: OrgSession, x_org: Annotated[str, Header()]) -> dict[str, str]:
        # No flush: the INSERT happens when the dependency commits.
        db.add(IntegrationCredential(org_id=uuid.UUID(x_org), vendor="fhir-r4", name=name))
        return {"name": name}

    @app.get("/credentials")
    async def count(db: OrgSession) -> dict[str, int]:
        total = await db.scalar(select(func.count()).select_from(IntegrationCredential))
        return {"count": total or 0}

    return app


async def test_one_transaction_per_request(database: Database) -> None:
    async with database.platform_session() as session:
        a, b = Organization(slug="a", name="A"), Organization(slug="b", name="B")
        session.add_all([a, b])

    transport = httpx.ASGITransport(app=make_app(database), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        as_a = {"x-org": str(a.id)}
        assert (await client.post("/credentials/ris", headers=as_a)).status_code == 201
        # The commit fails (duplicate name): the caller hears about it, not a 201.
        assert (await client.post("/credentials/ris", headers=as_a)).status_code == 500
        assert (await client.get("/credentials", headers=as_a)).json() == {"count": 1}
        assert (await client.get("/credentials", headers={"x-org": str(b.id)})).json() == {
            "count": 0
        }
