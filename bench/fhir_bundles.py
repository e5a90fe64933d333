"""FHIR Bundle throughput: what HL7 ingestion writes with, against single creates.

Creates a uniquely named PostgreSQL database on --server (dropped at the end), migrates it,
creates one organisation and runs the real app in process (its ASGI callable, no sockets:
this measures the platform, not HTTP). Then, sequentially, after a warm-up:

- baseline: the same resources POSTed one by one (`POST /fhir/R4/Patient`, ...);
- transaction Bundles of --size Patients + --size Observations, each Observation
  referencing its Patient by `urn:uuid`;
- the same as batch Bundles.

Prints entries/s and server CPU per entry (this process's CPU time: the app and its
audit writer; PostgreSQL is another process) and each mode's ratio to the baseline.

Usage: uv run python bench/fhir_bundles.py [--bundles 20] [--size 25]
           [--server postgresql://postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from fhir_crud import fresh_database, prepare, resource, server_env

BASE = "/fhir/R4"


async def call(app: Any, token: str, method: str, path: str, body: Any) -> tuple[int, bytes]:
    """One request straight into the ASGI app; (status, body)."""
    raw = json.dumps(body).encode()
    headers = [
        (b"host", b"bench"),
        (b"authorization", f"Bearer {token}".encode()),
        (b"content-type", b"application/fhir+json"),
        (b"content-length", str(len(raw)).encode()),
        (b"prefer", b"return=minimal"),
    ]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip
    sent, status, answer = False, 0, b""

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await asyncio.Event().wait()  # the client never goes away
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, answer
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            answer += message.get("body", b"")

    await app(scope, receive, send)
    return status, answer


def pairs(size: int, tag: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(Patient, Observation) pairs; the Observation's subject is set by the caller."""
    return [
        (resource("Patient", f"{tag}-p{n}", "x"), resource("Observation", f"{tag}-o{n}", "x"))
        for n in range(size)
    ]


def bundle(kind: str, size: int, tag: str) -> dict[str, Any]:
    entries = []
    for patient, observation in pairs(size, tag):
        placeholder = f"urn:uuid:{uuid.uuid4()}"
        observation["subject"] = {"reference": placeholder}
        request = {"method": "POST", "url": "Patient"}
        entries.append({"fullUrl": placeholder, "resource": patient, "request": request})
        entries.append({"resource": observation,
                        "request": {"method": "POST", "url": "Observation"}})  # fmt: skip
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


async def singles(app: Any, token: str, size: int, tag: str) -> None:
    for patient, observation in pairs(size, tag):
        status, body = await call(app, token, "POST", f"{BASE}/Patient", patient)
        assert status == 201, body
        observation["subject"] = {"reference": "Patient/x"}
        status, body = await call(app, token, "POST", f"{BASE}/Observation", observation)
        assert status == 201, body


async def bundles(app: Any, token: str, kind: str, size: int, tag: str) -> None:
    status, body = await call(app, token, "POST", BASE, bundle(kind, size, tag))
    assert status == 200, body[:500]


async def measure(runs: int, size: int, step: Any) -> tuple[float, float]:
    """(entries/s, ms of CPU per entry) over `runs` steps of 2 x `size` entries."""
    cpu, wall = time.process_time(), time.perf_counter()
    for run in range(runs):
        await step(f"r{run}-{uuid.uuid4().hex[:6]}")
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    entries = runs * size * 2
    return entries / wall, cpu / entries * 1e3


async def run(url: str, runs: int, size: int) -> None:
    env = server_env(url, Path(tempfile.mkdtemp(prefix="bench-bundles-")), 10)
    token = await prepare(env)
    os.environ.update(env)
    from ehr_api.app import create_app
    from ehr_api.settings import Settings

    app = create_app(Settings.from_env(env))
    async with app.router.lifespan_context(app):
        modes = {
            "single creates": lambda tag: singles(app, token, size, tag),
            "transaction": lambda tag: bundles(app, token, "transaction", size, tag),
            "batch": lambda tag: bundles(app, token, "batch", size, tag),
        }
        for step in modes.values():  # warm-up: plans, caches, connections
            await measure(2, size, step)
        results = {name: await measure(runs, size, step) for name, step in modes.items()}
    baseline = results["single creates"][0]
    print(f"{runs} x {size * 2} entries per mode, sequential, PostgreSQL, in-process ASGI")
    for name, (rate, cpu) in results.items():
        print(
            f"{name:15s} {rate:7.0f} entries/s  {cpu:5.2f} ms CPU/entry  {rate / baseline:5.2f} x single"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--bundles", type=int, default=20, help="timed runs per mode (20)")
    parser.add_argument("--size", type=int, default=25, help="Patient+Observation pairs (25)")
    args = parser.parse_args(argv)
    with fresh_database(args.server) as (url, _name):
        asyncio.run(run(url, args.bundles, args.size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
