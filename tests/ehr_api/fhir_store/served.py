"""The app served by a real uvicorn on a free port, with fhirpy pointed at it.

fhirpy talks HTTP over sockets, so the in-process ASGI transport the other tests use will
not do; the harness runs the lifespan and uvicorn only serves the same app.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fhirpy import AsyncFHIRClient

from tests.ehr_api.support import running


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@asynccontextmanager
async def served_fhirpy(migrated: str, tmp_path: Path) -> AsyncIterator[AsyncFHIRClient]:
    """A fhirpy client of organisation `org-a` (org_admin) against the served app."""
    async with running(migrated, tmp_path) as harness:
        await harness.org("org-a")
        port = _free_port()
        config = uvicorn.Config(harness.app, host="127.0.0.1", port=port, lifespan="off",
                                log_level="warning")  # fmt: skip
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        try:
            for _ in range(500):  # uvicorn offers no event to wait on
                if server.started:
                    break
                await asyncio.sleep(0.01)
            yield AsyncFHIRClient(
                f"http://127.0.0.1:{port}/fhir/R4",
                authorization=f"Bearer {harness.token('org-a', 'org_admin')}",
            )
        finally:
            server.should_exit = True
            await task
