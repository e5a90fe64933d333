"""What authentication + RBAC + audit cost per request, next to a bare route, same app, same run.

One app from `create_app(settings)` with three extra routes that do the same nothing:

  bare              GET /bench/bare         no credential, no permission check, not audited
  auth + rbac       GET /bench/guarded      require("organization", "read"), not audited
  auth + rbac + audit GET /api/bench/guarded  the same under /api, so one audit row per call

called with a JWT and with an API key, sequentially (one request in flight: latency, not
load). Two ways:

  asgi   httpx.ASGITransport in this process: server-side cost only, and the client waits
         for the app to finish, so the audit row's transaction is *inside* the latency;
  http   uvicorn in a subprocess, httpx over a keep-alive connection: what a client sees.
         The audit row is written after the response has gone out, so it is not in the
         latency; it still costs server CPU and shows in req/s.

Rounds are interleaved (each round runs every row) so drift hits all rows alike; p50/p95 are
over every sample, req/s is samples over the time spent in them. "added p50" is the row's
p50 minus the bare route's p50 measured in the same mode and run.

Usage: uv run python bench/api_overhead.py [--requests 2000] [--rounds 5] [--mode both]
           [--database-url postgresql://...]   (default: SQLite in a temp dir)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from ehr_api import admin
from ehr_api.app import create_app
from ehr_api.auth.tokens import issue_token
from ehr_api.deps import require
from ehr_api.security.local_secrets import with_local_secrets
from ehr_api.settings import Settings
from fastapi import FastAPI

ORG = "bench"
ROWS = (
    ("bare", "/bench/bare", None),
    ("JWT + rbac", "/bench/guarded", "jwt"),
    ("JWT + rbac + audit", "/api/bench/guarded", "jwt"),
    ("API key + rbac + audit", "/api/bench/guarded", "key"),
)


@dataclass
class Samples:
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0


def bench_app(settings: Settings) -> FastAPI:
    """The platform app plus the three do-nothing routes."""
    app = create_app(settings)

    @app.get("/bench/bare")
    async def bare() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/bench/guarded", dependencies=[require("organization", "read")])
    async def guarded() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/api/bench/guarded", dependencies=[require("organization", "read")])
    async def audited() -> dict[str, bool]:
        return {"ok": True}

    return app


def settings_for(data_dir: Path, database_url: str | None) -> Settings:
    base = Settings(data_dir=data_dir, database_url=database_url, log_level="WARNING")
    return with_local_secrets(base)


async def prepare(settings: Settings) -> dict[str, dict[str, str]]:
    """Migrate, create the organisation and credentials; headers per credential kind."""
    await admin.migrate(settings)
    async with admin.open_database(settings) as database:
        await admin.create_organization(database, slug=ORG, name="Bench")
        key = await admin.create_api_key(database, org=ORG, roles=["clinician"], name="bench")
    assert settings.jwt_secret
    token = issue_token("bench-user", ORG, ["clinician"], settings.jwt_secret)
    return {"jwt": {"Authorization": f"Bearer {token}"}, "key": {"Authorization": f"Bearer {key}"}}


async def measure(
    call: Callable[[str, dict[str, str]], Awaitable[int]],
    credentials: dict[str, dict[str, str]],
    *,
    requests: int,
    rounds: int,
) -> dict[str, Samples]:
    results = {name: Samples() for name, _, _ in ROWS}
    for name, path, kind in ROWS:  # warm-up: caches, prepared statements, JIT of nothing
        for _ in range(50):
            assert await call(path, credentials[kind] if kind else {}) == 200, name
    for _ in range(rounds):
        for name, path, kind in ROWS:
            headers = credentials[kind] if kind else {}
            samples = results[name]
            start = time.perf_counter()
            for _ in range(requests // rounds):
                began = time.perf_counter()
                await call(path, headers)
                samples.latencies.append(time.perf_counter() - began)
            samples.elapsed += time.perf_counter() - start
    return results


async def run_asgi(
    settings: Settings, credentials: dict[str, dict[str, str]], requests: int, rounds: int
) -> dict[str, Samples]:
    app = bench_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

            async def call(path: str, headers: dict[str, str]) -> int:
                return (await client.get(path, headers=headers)).status_code

            return await measure(call, credentials, requests=requests, rounds=rounds)


def run_http(
    data_dir: Path,
    database_url: str | None,
    credentials: dict[str, dict[str, str]],
    requests: int,
    rounds: int,
) -> dict[str, Samples]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, __file__, "--serve", str(port), "--data-dir", str(data_dir)]
    if database_url:
        command += ["--database-url", database_url]
    server = subprocess.Popen(command, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        return asyncio.run(_client(f"http://127.0.0.1:{port}", credentials, requests, rounds))
    finally:
        server.terminate()
        server.wait(timeout=30)


async def _client(
    base: str, credentials: dict[str, dict[str, str]], requests: int, rounds: int
) -> dict[str, Samples]:
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(300):
            try:
                if (await client.get("/readyz")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        else:
            raise SystemExit("server did not become ready")

        async def call(path: str, headers: dict[str, str]) -> int:
            return (await client.get(path, headers=headers)).status_code

        return await measure(call, credentials, requests=requests, rounds=rounds)


def serve(port: int, data_dir: Path, database_url: str | None) -> None:
    import uvicorn

    app = bench_app(settings_for(data_dir, database_url))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def report(mode: str, results: dict[str, Samples]) -> None:
    bare_p50 = statistics.median(results["bare"].latencies)
    for name, samples in results.items():
        ordered = sorted(samples.latencies)
        p50 = statistics.median(ordered)
        p95 = ordered[int(0.95 * (len(ordered) - 1))]
        rate = len(ordered) / samples.elapsed
        added = "" if name == "bare" else f"{(p50 - bare_p50) * 1000:+8.3f}"
        print(f"{mode:<5} {name:<24} {p50 * 1000:8.3f} {p95 * 1000:8.3f} {rate:9.0f} {added:>9}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per row (default 2000)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mode", choices=("asgi", "http", "both"), default="both")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.data_dir, args.database_url)
        return 0

    with tempfile.TemporaryDirectory(prefix="ehr-bench-") as directory:
        data_dir = Path(directory)
        settings = settings_for(data_dir, args.database_url)
        credentials = asyncio.run(prepare(settings))
        backend = "PostgreSQL" if args.database_url else "SQLite (synchronous=FULL)"
        print(f"database: {backend}; {args.requests} sequential requests per row")
        print(
            f"{'mode':<5} {'route':<24} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>9} {'added p50':>9}"
        )
        if args.mode in ("asgi", "both"):
            report("asgi", asyncio.run(run_asgi(settings, credentials, args.requests, args.rounds)))
        if args.mode in ("http", "both"):
            results = run_http(data_dir, args.database_url, credentials, args.requests, args.rounds)
            report("http", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
