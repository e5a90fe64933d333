"""Server CPU per FHIR request, in-process: the app called as ASGI, no HTTP, no client.

Why next to fhir_crud.py: on this shared VM the end-to-end req/s of one commit moves by a
third over minutes, so a change worth 5% cannot be seen there. Here the app runs in this
process on a fresh PostgreSQL database (as fhir_crud.py sets it up: migrated, one
organisation, an org_admin JWT, seeded resources) and the figure is this process's CPU
per request (`time.process_time`), by operation, over a seeded, repeatable sequence of the
same create/read/update/delete/search mix over the same nine types, sent by fhir_crud.py's
own `Worker` through an in-process client. Each request ends when the app returns, so its
audit row (its own transaction) is included.

`--instructions` re-runs the same thing under valgrind's callgrind with instrumentation on
only for the measured requests, and prints instructions per request: repeatable to a
fraction of a percent whatever else the machine does (but blind to system calls and to
PostgreSQL). Use it to compare two commits.

Baseline, same process: GET /healthz (no auth, no audit, no database).

Usage: uv run python bench/fhir_inprocess.py [--ops read=1 | create=20,read=40,...] [--requests 1000]
           [--warmup 200] [--lanes 1] [--instructions]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fhir_crud import (
    BASE,
    FHIR_JSON,
    TYPES,
    Owned,
    Reply,
    Target,
    Worker,
    fresh_database,
    ok,
    parse_mix,
    prepare,
    resource,
    server_env,
)

DEFAULT_MIX = "create=20,read=40,update=15,delete=5,search=20"


class AsgiClient:
    """fhir_crud's `Client` interface (`send` -> `Reply`), straight into the ASGI app: the
    same `Worker` drives the same mix as over HTTP, with no socket in between."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.headers = [
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", FHIR_JSON.encode()),
            (b"accept", FHIR_JSON.encode()),
            (b"host", b"bench"),
        ]

    async def send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Reply:
        route, _, query = path.partition("?")
        data = b"" if body is None else json.dumps(body).encode()
        headers = [*self.headers, (b"content-length", str(len(data)).encode())]
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": route, "raw_path": route.encode(),
            "query_string": query.encode(), "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
        }  # fmt: skip
        delivered = False
        status, location, chunks = 0, "", []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                await asyncio.Event().wait()  # never: the app does not read twice
            delivered = True
            return {"type": "http.request", "body": data, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, location
            if message["type"] == "http.response.start":
                status = message["status"]
                location = dict(message["headers"]).get(b"location", b"").decode()
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return Reply(status, location, b"".join(chunks))


def _expect(op: str, status: str) -> None:
    if not ok(op, status) or status in ("404", "410"):
        raise SystemExit(f"{op} answered {status}")


def _callgrind(switch: str) -> None:
    subprocess.run(["callgrind_control", "-i", switch, str(os.getpid())], check=True,
                   capture_output=True)  # fmt: skip


async def measure(args: argparse.Namespace, url: str, data_dir: str) -> None:
    from ehr_api.app import create_app
    from ehr_api.settings import Settings

    env = server_env(url, Path(data_dir), 10)
    token = await prepare(env)
    app = create_app(Settings.from_env(env))
    client = AsgiClient(app, token)
    async with app.router.lifespan_context(app):
        first = await client.send("POST", f"{BASE}/Patient", resource("Patient", "subject", "-"))
        target = Target(BASE, token, json.loads(first.body)["id"])
        workers = [Worker(client, target, Owned(), f"lane{index}") for index in range(args.lanes)]
        for worker in workers:
            for kind in TYPES:
                for _ in range(3):
                    _expect("create", await worker.create(kind))
        ops, weights = list(args.ops), list(args.ops.values())
        spent: dict[str, list[float]] = {}

        async def drive(worker: Worker, count: int, seed: str) -> None:
            rng = random.Random(seed)
            for _ in range(count):
                began = time.process_time()
                done, status = await worker.run(rng.choices(ops, weights)[0], rng.choice(TYPES))
                if args.lanes == 1:  # per-operation CPU only means something sequentially
                    spent.setdefault(done, []).append(time.process_time() - began)
                _expect(done, status)

        async def healthz(count: int) -> float:
            began = time.process_time()
            for _ in range(count):
                await client.send("GET", "/healthz")
            return (time.process_time() - began) / count

        await asyncio.gather(
            *(drive(lane, args.warmup, f"warm{i}") for i, lane in enumerate(workers))
        )
        baseline = await healthz(max(200, args.requests // 4))
        spent.clear()
        if args.callgrind:
            _callgrind("on")
        began = time.process_time()
        await asyncio.gather(
            *(drive(lane, args.requests, f"m{i}") for i, lane in enumerate(workers))
        )
        cpu = time.process_time() - began
        if args.callgrind:
            _callgrind("off")
    total = args.requests * args.lanes
    print(f"{total} requests in {args.lanes} lane(s): {cpu / total * 1e3:.3f} ms CPU/request"
          f" ({cpu / total / baseline:.1f} x GET /healthz at {baseline * 1e3:.3f} ms)")  # fmt: skip
    for op, times in sorted(spent.items()):
        print(f"  {op:7s} {len(times):6d}  {sum(times) / len(times) * 1e3:.3f} ms CPU/request")


def instructions(argv: Sequence[str], requests: int) -> None:
    """Run this script under callgrind (measured requests only); instructions/request."""
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
               "--callgrind-out-file=/dev/null", sys.executable, __file__,
               *[arg for arg in argv if arg != "--instructions"], "--callgrind"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    counted = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or counted is None:
        raise SystemExit(f"callgrind run failed:\n{done.stdout}\n{done.stderr[-2000:]}")
    print(done.stdout, end="")
    print(f"callgrind: {int(counted.group(1)) / requests / 1e6:.3f} M instructions/request"
          " (the measured requests only)")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=parse_mix, default=parse_mix(DEFAULT_MIX),
                        help="mix, e.g. read=1 or create=20,read=40 (default: fhir_crud's)")  # fmt: skip
    parser.add_argument("--requests", type=int, default=1000, help="measured, per lane")
    parser.add_argument("--warmup", type=int, default=200, help="per lane, before measuring")
    parser.add_argument("--lanes", type=int, default=1, help="concurrent sequences (1)")
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--instructions", action="store_true", help="count under callgrind")
    parser.add_argument("--callgrind", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.instructions:
        instructions(argv, args.requests * args.lanes)
        return
    _use_uvloop()
    with fresh_database(args.server) as (url, _), tempfile.TemporaryDirectory() as data_dir:
        asyncio.run(measure(args, url, data_dir))


def _use_uvloop() -> None:
    """The served app runs on uvloop (uvicorn's default when installed): so does this."""
    try:
        import uvloop
    except ImportError:
        return
    uvloop.install()


if __name__ == "__main__":
    main()
