"""Organisation A cannot reach organisation B's integrations, whatever it tries.

Every attempt is a `NotFoundError`, exactly like an id that does not exist, so A cannot
even learn that B's integration is there. Runs on SQLite (the session filter) and
PostgreSQL (the session filter plus row-level security).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from ehr_api.db import Database
from ehr_api.errors import NotFoundError
from ehr_api.integrations import service as integrations
from ehr_api.integrations.orchestrator import Orchestrator
from ehr_api.integrations.schemas import IntegrationUpdate
from ehr_api.security.crypto import Keyring
from sqlalchemy.ext.asyncio import AsyncSession

from tests.ehr_api.integrations.conftest import Orgs, fhir, hl7

Attempt = Callable[[AsyncSession, uuid.UUID, Keyring, Orchestrator], Awaitable[Any]]

ATTEMPTS: dict[str, Attempt] = {
    "get": lambda db, i, k, o: integrations.get(db, integration_id=i),
    "update": lambda db, i, k, o: integrations.update(
        db, integration_id=i, data=IntegrationUpdate(version=1, name="taken-over"), keyring=k
    ),
    "delete": lambda db, i, k, o: integrations.delete(db, integration_id=i, orchestrator=o),
    "test": lambda db, i, k, o: integrations.test(db, integration_id=i, keyring=k, orchestrator=o),
    "execute": lambda db, i, k, o: integrations.execute(
        db, integration_id=i, operation="parse", params={}, keyring=k, orchestrator=o
    ),
    "load": lambda db, i, k, o: integrations.load(db, integration_id=i, keyring=k),
}


@pytest.mark.parametrize("attempt", sorted(ATTEMPTS))
async def test_org_a_cannot_touch_org_b(
    database: Database, orgs: Orgs, keyring: Keyring, attempt: str
) -> None:
    async with database.org_session(orgs.b) as db:
        theirs = await integrations.create(
            db,
            data=fhir("b-secret", auth={"type": "bearer"}, secrets={"token": "b-token"}),
            keyring=keyring,
        )
    orchestrator = Orchestrator.default()
    try:
        async with database.org_session(orgs.a) as db:
            with pytest.raises(NotFoundError) as foreign:
                await ATTEMPTS[attempt](db, theirs.id, keyring, orchestrator)
            with pytest.raises(NotFoundError) as missing:
                await ATTEMPTS[attempt](db, uuid.uuid4(), keyring, orchestrator)
    finally:
        await orchestrator.aclose()
    # The same answer as for an id that does not exist.
    assert foreign.value.detail == f"integration {theirs.id} not found"
    assert missing.value.detail.endswith(" not found") and foreign.value.status == 404
    async with database.org_session(orgs.b) as db:
        still = await integrations.get(db, integration_id=theirs.id)
    assert (still.name, still.version) == ("b-secret", 1)


async def test_lists_show_only_the_callers_integrations(
    database: Database, orgs: Orgs, keyring: Keyring
) -> None:
    async with database.org_session(orgs.a) as db:
        await integrations.create(db, data=hl7("a-ris"), keyring=keyring)
    async with database.org_session(orgs.b) as db:
        await integrations.create(db, data=hl7("b-ris"), keyring=keyring)
        await integrations.create(db, data=fhir("b-fhir"), keyring=keyring)
    async with database.org_session(orgs.a, read_only=True) as db:
        mine = await integrations.list(db)
        mine_fhir = await integrations.list(db, vendor="fhir-r4")
    assert [item.name for item in mine.items] == ["a-ris"] and mine.total == 1
    assert mine_fhir.items == [] and mine_fhir.total == 0


async def test_same_inbound_port_in_two_organisations_is_not_a_clash(
    database: Database, orgs: Orgs, keyring: Keyring
) -> None:
    # Per-organisation uniqueness only; see the report on platform-wide ports.
    created = []
    for org in (orgs.a, orgs.b):
        async with database.org_session(org) as db:
            created.append(
                await integrations.create(db, data=hl7(inbound_port=2800), keyring=keyring)
            )
    assert [c.config.inbound_port for c in created] == [2800, 2800]
