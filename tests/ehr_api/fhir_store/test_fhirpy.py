"""A real FHIR client (fhirpy, async) against the app served by uvicorn on a free port."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import uvicorn
from fhirpy import AsyncFHIRClient

from tests.ehr_api.support import running


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_fhirpy_crud_and_search(migrated: str, tmp_path: Path) -> None:
    async with running(migrated, tmp_path) as harness:
        await harness.org("org-a")
        port = _free_port()
        # The harness already runs the lifespan; uvicorn only serves the same app.
        config = uvicorn.Config(harness.app, host="127.0.0.1", port=port, lifespan="off",
                                log_level="warning")  # fmt: skip
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        try:
            for _ in range(500):  # uvicorn offers no event to wait on
                if server.started:
                    break
                await asyncio.sleep(0.01)
            client = AsyncFHIRClient(
                f"http://127.0.0.1:{port}/fhir/R4",
                authorization=f"Bearer {harness.token('org-a', 'org_admin')}",
            )
            patient = client.resource(
                "Patient",
                identifier=[{"system": "urn:mrn", "value": "fp-1"}],
                name=[{"family": "Py", "given": ["Fhir"]}],
            )
            await patient.save()
            assert patient["id"] and patient["meta"]["versionId"] == "1"

            fetched = await client.reference("Patient", patient["id"]).to_resource()
            assert fetched["name"][0]["family"] == "Py"

            fetched["gender"] = "other"
            await fetched.save()
            assert fetched["meta"]["versionId"] == "2"

            found = await client.resources("Patient").search(identifier="urn:mrn|fp-1").fetch()
            assert [item["id"] for item in found] == [patient["id"]]
            assert await client.resources("Patient").search(identifier="urn:mrn|x").count() == 0

            await fetched.delete()
            assert await client.resources("Patient").search(_id=patient["id"]).fetch() == []
        finally:
            server.should_exit = True
            await task
