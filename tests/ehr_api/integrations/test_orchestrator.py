"""The orchestrator's registry and client cache: one client per integration version.

The cache rules are pinned with a recording handler (it only counts); the end-to-end
test then changes a real credential in the database and watches a real MLLP listener.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from ehr_api.db import Database
from ehr_api.errors import ConflictError, InvalidError
from ehr_api.integrations import service as integrations
from ehr_api.integrations.orchestrator import Integration, Orchestrator, TestResult
from ehr_api.integrations.schemas import IntegrationUpdate
from ehr_api.security.crypto import Keyring
from hl7_fhir.mllp import ConnectionInfo, MLLPServer

from tests.ehr_api.integrations.conftest import Orgs, hl7, integration


class RecordingClient:
    def __init__(self, version: int) -> None:
        self.version = version
        self.closed = False
        self.gate: asyncio.Event | None = None

    async def test_connection(self) -> TestResult:
        return TestResult(True, f"version {self.version}", 0.1)

    async def execute(self, operation: str, params: Mapping[str, Any]) -> dict[str, Any]:
        if self.gate is not None:
            await self.gate.wait()
        return {"version": self.version, "closed": self.closed}

    async def aclose(self) -> None:
        self.closed = True


class RecordingHandler:
    vendor = "hl7-v2x"
    operations = frozenset({"echo"})

    def __init__(self) -> None:
        self.clients: list[RecordingClient] = []

    async def initialize(self, integration: Integration) -> RecordingClient:
        client = RecordingClient(integration.version)
        self.clients.append(client)
        return client


HL7 = {"mllp_host": "127.0.0.1", "mllp_port": 2575}


def test_registry() -> None:
    orchestrator = Orchestrator.default()
    assert orchestrator.vendors == {"hl7-v2x", "fhir-r4"}
    with pytest.raises(InvalidError) as caught:
        Orchestrator().handler_for("hl7-v2x")
    assert caught.value.field == "vendor"


async def test_one_client_per_integration_version() -> None:
    handler = RecordingHandler()
    orchestrator = Orchestrator([handler])
    ident = uuid.uuid4()
    v1 = integration("hl7-v2x", HL7, integration_id=ident, version=1)
    assert (await orchestrator.execute(v1, "echo", {}))["version"] == 1
    assert (await orchestrator.test_connection(v1)).detail == "version 1"
    assert len(handler.clients) == 1 and orchestrator.cached_version(ident) == 1

    v2 = integration("hl7-v2x", HL7, integration_id=ident, version=2)
    assert (await orchestrator.execute(v2, "echo", {}))["version"] == 2
    assert len(handler.clients) == 2 and handler.clients[0].closed
    assert orchestrator.cached_version(ident) == 2

    # A request that read version 1 before the update gets a one-off client: the newer
    # cached one is not evicted by it.
    assert (await orchestrator.execute(v1, "echo", {}))["version"] == 1
    assert handler.clients[2].closed and not handler.clients[1].closed
    assert orchestrator.cached_version(ident) == 2

    await orchestrator.forget(ident)
    assert handler.clients[1].closed and orchestrator.cached_version(ident) is None


async def test_a_replaced_client_is_closed_after_its_last_request() -> None:
    handler = RecordingHandler()
    orchestrator = Orchestrator([handler])
    ident = uuid.uuid4()
    v1 = integration("hl7-v2x", HL7, integration_id=ident, version=1)
    await orchestrator.test_connection(v1)
    old = handler.clients[0]
    old.gate = asyncio.Event()
    in_flight = asyncio.create_task(orchestrator.execute(v1, "echo", {}))
    await asyncio.sleep(0)
    await orchestrator.test_connection(integration("hl7-v2x", HL7, integration_id=ident, version=2))
    assert not old.closed  # still serving the request in flight
    old.gate.set()
    assert await in_flight == {"version": 1, "closed": False}
    assert old.closed


async def test_execute_checks_enabled_and_operation() -> None:
    orchestrator = Orchestrator([RecordingHandler()])
    with pytest.raises(ConflictError):
        await orchestrator.execute(integration("hl7-v2x", HL7, enabled=False), "echo", {})
    with pytest.raises(InvalidError) as caught:
        await orchestrator.execute(integration("hl7-v2x", HL7), "rm", {})
    assert caught.value.field == "operation"
    # A disabled integration can still be tested (before switching it on).
    assert (await orchestrator.test_connection(integration("hl7-v2x", HL7, enabled=False))).ok


@pytest.fixture
async def two_listeners() -> AsyncIterator[tuple[list[int], list[int]]]:
    """Two real MLLP listeners; yields (ports, connection counts)."""
    counts = [0, 0]

    def handler_for(index: int) -> Any:
        async def handle(message: bytes, info: ConnectionInfo) -> None:
            counts[index] += 1

        return handle

    async with (
        MLLPServer(handler_for(0), port=0) as first,
        MLLPServer(handler_for(1), port=0) as second,
    ):
        yield [first.port, second.port], counts


async def test_changing_a_credential_rebuilds_its_client(
    database: Database,
    orgs: Orgs,
    keyring: Keyring,
    orchestrator: Orchestrator,
    two_listeners: tuple[list[int], list[int]],
) -> None:
    from hl7_fhir import v2

    ports, received = two_listeners
    message = {"message": v2.generate("orm", seed=1).to_er7()}
    async with database.org_session(orgs.a) as db:
        created = await integrations.create(db, data=hl7(mllp_port=ports[0]), keyring=keyring)

    async def send() -> dict[str, Any]:
        async with database.org_session(orgs.a) as db:
            return await integrations.execute(
                db, integration_id=created.id, operation="send", params=message,
                keyring=keyring, orchestrator=orchestrator,
            )  # fmt: skip

    await send()
    await send()
    assert received == [2, 0] and orchestrator.cached_version(created.id) == 1

    async with database.org_session(orgs.a) as db:
        await integrations.update(
            db,
            integration_id=created.id,
            data=IntegrationUpdate(version=1, config={"mllp_port": ports[1]}),
            keyring=keyring,
        )
    await send()  # without being told, the next load sees version 2 and a new client
    assert received == [2, 1] and orchestrator.cached_version(created.id) == 2

    async with database.org_session(orgs.a) as db:  # told: dropped at once
        await integrations.update(
            db,
            integration_id=created.id,
            data=IntegrationUpdate(version=2, name="ris-2"),
            keyring=keyring,
            orchestrator=orchestrator,
        )
    assert orchestrator.cached_version(created.id) is None

    async with database.org_session(orgs.a) as db:
        result = await integrations.test(
            db, integration_id=created.id, keyring=keyring, orchestrator=orchestrator
        )
        assert result.ok and str(ports[1]) in result.detail
        await integrations.delete(db, integration_id=created.id, orchestrator=orchestrator)
    assert orchestrator.cached_version(created.id) is None
