"""FHIR CRUD throughput: a create/read/update/delete/search mix against uvicorn on PostgreSQL.

What it does, end to end, so that one command reproduces a figure:

1. creates a uniquely named PostgreSQL database on --server (dropped at the end), migrates
   it (as `ehr-platform migrate` does, with the `ehr_app` row-security role), creates one
   organisation and signs an org_admin JWT for it;
2. starts the real app (`uvicorn ehr_api.app:create_app --factory --workers N`, settings
   from the environment, uvloop + httptools; or, with --reuse-port, N one-worker uvicorns
   on SO_REUSEPORT sockets) on a free port and waits for /readyz;
3. seeds --seed resources per type per connection (each connection owns its ids, so two
   connections never update or delete the same resource at once), then ANALYZEs;
4. baseline: GET /healthz (no auth, no audit, no database) with the same client setup;
5. the mix over nine types (Patient, Observation, DiagnosticReport, ServiceRequest,
   Appointment, Encounter, Practitioner, Organization, Location), default 20% create,
   40% read, 15% update, 5% delete, 20% search (half `identifier=system|value`, half
   `_id`); a warm-up, then a timed window.

Load: --connections keep-alive connections of a lean asyncio + httptools client
(bench/_raw_http.py; --client aiohttp or httpx to compare), split over --client-procs
processes (asyncio in each). The client runs on the same machine and
competes for its cores: the CPU line shows how the window's CPU was shared between the
client, each server worker, PostgreSQL and other processes (from /proc), so a client-bound,
starved or unbalanced run is visible as such.

6. with --floor, the same mix on the same data against bench/fhir_floor.py: a raw ASGI app
   sending the platform's own SQL (tenant prelude with BEGIN, the one-statement write,
   the same reads and searches) with no FastAPI, SQLAlchemy, auth, validation or audit.
   "platform / floor" is the share of what Python + asyncpg + PostgreSQL allow here that
   the platform reaches.

Counted: requests *started* inside the window. Errors are statuses other than the
operation's success code and the expected 404/410, transport errors, and searches whose
Bundle does not hold exactly the one resource searched for.

Usage: uv run python bench/fhir_crud.py [--workers 2] [--connections 32] [--client-procs 1] [--floor]
           [--duration 20] [--warmup 5] [--quick] [--server postgresql://postgres@127.0.0.1:5432]
           [--mix create=20,read=40,update=15,delete=5,search=20] [--reuse-port]
           [--pool-size 10] [--client raw|aiohttp|httpx] [--py-spy DIR]
       uv run --with py-spy python bench/fhir_crud.py --py-spy /tmp/spy   (where CPU goes)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
from _raw_http import RawClient

ORG = "bench"
BASE = "/fhir/R4"
SYSTEM = "urn:bench:id"
TYPES = (
    "Patient",
    "Observation",
    "DiagnosticReport",
    "ServiceRequest",
    "Appointment",
    "Encounter",
    "Practitioner",
    "Organization",
    "Location",
)
OPERATIONS = ("create", "read", "update", "delete", "search")
DEFAULT_MIX = "create=20,read=40,update=15,delete=5,search=20"
_SUCCESS = {"create": 201, "read": 200, "update": 200, "delete": 200, "search": 200}
_EXPECTED_MISSES = {404, 410}
FHIR_JSON = "application/fhir+json"
_SESSIONS = "SELECT sessions FROM pg_stat_database WHERE datname = '{name}'"


# --- resources -------------------------------------------------------------------------


_LOINC = "http://loinc.org"
_HEART_RATE = {"system": _LOINC, "code": "8867-4", "display": "Heart rate"}
_CBC = {"system": _LOINC, "code": "58410-2", "display": "CBC panel"}
_PANEL = {"system": _LOINC, "code": "24323-8", "display": "Metabolic panel"}
_VITALS = {
    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
    "code": "vital-signs",
}
_AMBULATORY = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}
_UCUM = "http://unitsofmeasure.org"
_ADDRESS = {"line": ["1 Main St"], "city": "London", "postalCode": "N1 9GU", "country": "GB"}


def resource(kind: str, ident: str, patient: str, *, rev: int = 0) -> dict[str, Any]:
    """A small valid R4 resource of `kind`; `rev` changes a field, as an update would."""
    subject = {"reference": f"Patient/{patient}"}
    day = f"2026-0{1 + rev % 9}-1{rev % 10}"
    bodies: dict[str, Callable[[], dict[str, Any]]] = {
        "Patient": lambda: {
            "name": [{"family": f"Doe{rev}", "given": ["Jane", "Q"]}],
            "gender": "female",
            "birthDate": "1980-04-12",
            "telecom": [{"system": "phone", "value": "+44 20 7946 0000", "use": "home"}],
        },
        "Observation": lambda: {
            "status": "final",
            "category": [{"coding": [_VITALS]}],
            "code": {"coding": [_HEART_RATE]},
            "subject": subject,
            "effectiveDateTime": f"{day}T08:30:00Z",
            "valueQuantity": {
                "value": 60 + rev % 40,
                "unit": "/min",
                "system": _UCUM,
                "code": "/min",
            },
        },
        "DiagnosticReport": lambda: {
            "status": "final" if rev % 2 == 0 else "amended",
            "code": {"coding": [_CBC]},
            "subject": subject,
            "effectiveDateTime": f"{day}T09:00:00Z",
            "issued": f"{day}T10:00:00Z",
            "conclusion": f"Within normal limits ({rev})",
        },
        "ServiceRequest": lambda: {
            "status": "active" if rev % 2 == 0 else "on-hold",
            "intent": "order",
            "code": {"coding": [_PANEL]},
            "subject": subject,
            "authoredOn": f"{day}T07:00:00Z",
        },
        "Appointment": lambda: {
            "status": "booked",
            "description": f"Follow-up {rev}",
            "start": f"{day}T09:00:00Z",
            "end": f"{day}T09:20:00Z",
            "participant": [{"actor": subject, "status": "accepted"}],
        },
        "Encounter": lambda: {
            "status": "finished" if rev % 2 == 0 else "in-progress",
            "class": _AMBULATORY,
            "subject": subject,
            "period": {"start": f"{day}T09:00:00Z", "end": f"{day}T09:30:00Z"},
        },
        "Practitioner": lambda: {
            "active": True,
            "name": [{"family": f"Smith{rev}", "given": ["John"], "prefix": ["Dr"]}],
            "gender": "male",
        },
        "Organization": lambda: {
            "active": True,
            "name": f"General Hospital {rev}",
            "telecom": [{"system": "phone", "value": "+44 20 7946 0001"}],
        },
        "Location": lambda: {
            "status": "active",
            "name": f"Ward {rev}",
            "mode": "instance",
            "address": _ADDRESS,
        },
    }
    identifier = [{"system": SYSTEM, "value": ident}]
    return {"resourceType": kind, "identifier": identifier, **bodies[kind]()}


# --- setup: database, organisation, token, server --------------------------------------


@dataclass(frozen=True)
class Target:
    base: str
    token: str
    patient: str
    client: str = "raw"


async def _admin_execute(server: str, sql: str, database: str = "postgres") -> Any:
    """Run `sql` as the server's admin user; the first column of the first row."""
    connection = await asyncpg.connect(f"{server.rstrip('/')}/{database}")
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


@contextlib.contextmanager
def fresh_database(server: str) -> Iterator[tuple[str, str]]:
    """A new database on `server` for this run, dropped (connections and all) afterwards."""
    name = f"bench_fhir_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_execute(server, f"CREATE DATABASE {name}"))
    try:
        yield f"{server.rstrip('/')}/{name}", name
    finally:
        asyncio.run(_admin_execute(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def server_env(url: str, data_dir: Path, pool_size: int) -> dict[str, str]:
    from ehr_api.security.crypto import Keyring

    return {
        **os.environ,
        "DATABASE_URL": url,
        "EHR_DATA_DIR": str(data_dir),
        "EHR_JWT_SECRET": "bench-" + uuid.uuid4().hex + uuid.uuid4().hex,
        "EHR_ENCRYPTION_KEYS": Keyring.generate().to_spec(),
        "EHR_LOG_LEVEL": "WARNING",
        "EHR_DB_POOL_SIZE": str(pool_size),
        "PYTHONUNBUFFERED": "1",
    }


async def prepare(env: dict[str, str]) -> str:
    """Migrate, create the organisation; an org_admin token for it."""
    from ehr_api import admin
    from ehr_api.auth.tokens import issue_token
    from ehr_api.settings import Settings

    settings = Settings.from_env(env)
    await admin.migrate(settings)
    async with admin.open_database(settings) as database:
        await admin.create_organization(database, slug=ORG, name="Bench")
    return issue_token("bench-user", ORG, ["org_admin"], env["EHR_JWT_SECRET"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def uvicorn_server(
    env: dict[str, str], port: int, workers: int, *, reuse_port: bool, serve: str = "--serve"
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`uvicorn --workers N`, or N one-worker uvicorns each on its own SO_REUSEPORT socket.

    With `--workers`, the workers share one listening socket and asyncio accepts in batches,
    so a client opening its keep-alive connections at once often lands them all on one
    worker (the CPU line shows the split). SO_REUSEPORT sockets make the kernel spread
    connections over the processes instead. `serve="--serve-floor"` starts the floor app
    (bench/fhir_floor.py) that way instead of the platform.
    """
    if reuse_port:
        command = [sys.executable, __file__, serve, str(port)]
        servers = [subprocess.Popen(command, env=env) for _ in range(workers)]
    else:
        command = [sys.executable, "-m", "uvicorn", "ehr_api.app:create_app", "--factory"]
        command += f"--host 127.0.0.1 --port {port} --workers {workers}".split()
        command += ["--log-level", "warning", "--no-access-log"]
        servers = [subprocess.Popen(command, env=env)]
    try:
        yield servers
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def serve_reuse_port(port: int) -> None:
    """One uvicorn worker (settings from the environment) on a SO_REUSEPORT socket."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(
        "ehr_api.app:create_app", factory=True, log_level="warning", access_log=False
    )
    uvicorn.Server(config).run(sockets=[sock])


async def wait_ready(
    base: str, servers: list[subprocess.Popen[bytes]], path: str = "/readyz"
) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(600):
            for server in servers:
                if server.poll() is not None:
                    raise SystemExit(f"uvicorn exited with {server.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(path)).status_code == 200:
                    await asyncio.sleep(2.0 if len(servers) > 1 else 0.0)  # the others too
                    return
            await asyncio.sleep(0.1)
    raise SystemExit("the server did not become ready in 60 s")


# --- load ------------------------------------------------------------------------------


@dataclass
class Owned:
    """The resources one connection created and may read, update, delete and search."""

    by_type: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # id, identifier


@dataclass
class Tally:
    """What one client process saw in the timed window."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)
    cpu: float = 0.0  # client CPU seconds inside the window

    def add(self, op: str, seconds: float, status: str) -> None:
        self.latencies.setdefault(op, []).append(seconds)
        self.statuses[(op, status)] += 1

    def merge(self, other: Tally) -> None:
        for op, values in other.latencies.items():
            self.latencies.setdefault(op, []).extend(values)
        self.statuses.update(other.statuses)
        self.cpu += other.cpu


def headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": FHIR_JSON, "Accept": FHIR_JSON}


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    location: str
    body: bytes


class Client:
    """A keep-alive HTTP client over `connections` connections: raw, aiohttp or httpx.

    `raw` (bench/_raw_http.py: asyncio protocols + httptools) by default, because the client
    shares the two cores with the server and PostgreSQL: aiohttp costs about 0.23 ms of
    client CPU per request in the CRUD mix and httpx's pool about 3.6 ms at 32 concurrent
    requests (266 req/s against a bare ASGI app on this machine, aiohttp 8,100), so with
    httpx the benchmark would measure its own client.
    """

    def __init__(self, kind: str, base: str, token: str, connections: int) -> None:
        self.kind = kind
        self.base = base
        self.token = token
        self.connections = connections
        self._session: Any = None

    async def __aenter__(self) -> Client:
        if self.kind == "raw":
            self._session = RawClient(self.base, headers(self.token), self.connections)
        elif self.kind == "httpx":
            limits = httpx.Limits(
                max_connections=self.connections, max_keepalive_connections=self.connections
            )
            self._session = httpx.AsyncClient(
                base_url=self.base, headers=headers(self.token), limits=limits, timeout=30.0
            )
        else:
            self._session = aiohttp.ClientSession(
                self.base,
                headers=headers(self.token),
                connector=aiohttp.TCPConnector(limit=self.connections),
                timeout=aiohttp.ClientTimeout(total=30.0),
            )
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await (self._session.aclose() if self.kind == "httpx" else self._session.close())

    async def send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Reply:
        data = None if body is None else json.dumps(body).encode()
        if self.kind == "raw":
            raw = await self._session.send(method, path, data)
            return Reply(raw.status, raw.location, raw.body)
        if self.kind == "httpx":
            response = await self._session.request(method, path, content=data)
            return Reply(
                response.status_code, response.headers.get("location", ""), response.content
            )
        async with self._session.request(method, path, data=data) as response:
            return Reply(
                response.status, response.headers.get("Location", ""), await response.read()
            )


class Worker:
    """One connection's loop: pick an operation and a type, send it, time it."""

    def __init__(self, client: Client, target: Target, owned: Owned, tag: str) -> None:
        self.client = client
        self.target = target
        self.owned = owned
        self.tag = tag
        self.counter = 0
        self.rng = random.Random(tag)

    async def create(self, kind: str) -> str:
        self.counter += 1
        ident = f"{self.tag}-{self.counter}"
        body = resource(kind, ident, self.target.patient)
        reply = await self.client.send("POST", f"{BASE}/{kind}", body)
        if reply.status == 201:
            new_id = reply.location.split(f"/{kind}/")[1].split("/")[0]
            self.owned.by_type.setdefault(kind, []).append((new_id, ident))
        return str(reply.status)

    async def run(self, op: str, kind: str) -> tuple[str, str]:
        """Send one `op` on `kind`; (operation actually done, status or error name)."""
        pool = self.owned.by_type.get(kind) or []
        if op != "create" and not pool:
            op = "create"  # every resource of this type was deleted: make one
        if op == "create":
            return op, await self.create(kind)
        index = self.rng.randrange(len(pool))
        resource_id, ident = pool[index]
        url = f"{BASE}/{kind}/{resource_id}"
        if op == "read":
            reply = await self.client.send("GET", url)
        elif op == "update":
            self.counter += 1
            body = resource(kind, ident, self.target.patient, rev=self.counter)
            reply = await self.client.send("PUT", url, {**body, "id": resource_id})
        elif op == "delete":
            pool[index] = pool[-1]
            pool.pop()
            reply = await self.client.send("DELETE", url)
        else:
            query = f"identifier={SYSTEM}|{ident}" if self.counter % 2 else f"_id={resource_id}"
            self.counter += 1
            reply = await self.client.send("GET", f"{BASE}/{kind}?{query}")
            if reply.status == 200 and b'"total":1' not in reply.body:
                return op, "miss"
        return op, str(reply.status)


@dataclass(frozen=True)
class Window:
    """Absolute times (time.time()): load starts, the timed window opens, it closes."""

    start: float
    open: float
    close: float

    @classmethod
    def after(cls, delay: float, warmup: float, duration: float) -> Window:
        start = time.time() + delay
        return cls(start, start + warmup, start + warmup + duration)

    @property
    def seconds(self) -> float:
        return self.close - self.open


async def drive(
    target: Target,
    owned: list[Owned],
    tags: list[str],
    mix: dict[str, int],
    window: Window,
    path: str | None,
) -> Tally:
    """Run len(owned) connections; record the requests started inside `window`."""
    tally = Tally()
    ops, weights = list(mix), list(mix.values())

    async def loop(worker: Worker) -> None:
        await asyncio.sleep(max(0.0, window.start - time.time()))
        while (now := time.time()) < window.close:
            if path:
                op, kind = "baseline", ""
            else:
                op, kind = worker.rng.choices(ops, weights)[0], worker.rng.choice(TYPES)
            began = time.perf_counter()
            try:
                if path:
                    status = str((await worker.client.send("GET", path)).status)
                else:
                    op, status = await worker.run(op, kind)
            except (httpx.HTTPError, aiohttp.ClientError, OSError, TimeoutError) as exc:
                status = type(exc).__name__
            if now >= window.open:
                tally.add(op, time.perf_counter() - began, status)

    async def clock() -> None:
        await asyncio.sleep(max(0.0, window.open - time.time()))
        began = time.process_time()
        await asyncio.sleep(max(0.0, window.close - time.time()))
        tally.cpu = time.process_time() - began

    async with Client(target.client, target.base, target.token, len(owned)) as client:
        workers = [Worker(client, target, mine, tag) for mine, tag in zip(owned, tags, strict=True)]
        await asyncio.gather(clock(), *(loop(worker) for worker in workers))
    return tally


def drive_process(args: tuple[Any, ...]) -> Tally:
    """Entry point of one client process (spawned)."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    return asyncio.run(drive(*args))


async def seed(target: Target, connections: int, per_type: int) -> list[Owned]:
    """`per_type` resources of each type for each connection, created over HTTP."""
    owned = [Owned() for _ in range(connections)]
    async with Client(target.client, target.base, target.token, connections) as client:

        async def fill(index: int) -> None:
            worker = Worker(client, target, owned[index], f"seed{index}")
            for kind in TYPES:
                for _ in range(per_type):
                    if (status := await worker.create(kind)) != "201":
                        raise SystemExit(f"seeding {kind} answered {status}")

        await asyncio.gather(*(fill(index) for index in range(connections)))
    return owned


async def first_patient(target: Target) -> str:
    """The Patient every clinical resource points at (its first create also warms up)."""
    async with Client(target.client, target.base, target.token, 1) as client:
        reply = await client.send("POST", f"{BASE}/Patient", resource("Patient", "subject", "-"))
    if reply.status != 201:
        raise SystemExit(f"creating a Patient answered {reply.status}: {reply.body[:500]!r}")
    return str(json.loads(reply.body)["id"])


def run_load(
    target: Target,
    owned: list[Owned],
    window: Window,
    *,
    procs: int,
    mix: dict[str, int],
    path: str | None = None,
) -> Tally:
    """Drive the load from `procs` processes (owned resources split between them)."""
    shares = [owned[index::procs] for index in range(procs)]
    jobs = [
        (
            target,
            share,
            [f"p{proc}c{index}-{uuid.uuid4().hex[:6]}" for index in range(len(share))],
            mix,
            window,
            path,
        )
        for proc, share in enumerate(shares)
    ]
    merged = Tally()
    if procs == 1:
        merged.merge(drive_process(jobs[0]))
    else:
        with ProcessPoolExecutor(procs, mp_context=get_context("spawn")) as pool:
            for tally in pool.map(drive_process, jobs):
                merged.merge(tally)
    return merged


# --- CPU accounting (Linux /proc) ------------------------------------------------------


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for child in _children(pid):
        pids += _tree(child)
    return pids


def _postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
    return pids


def _machine() -> tuple[int, int]:
    """(busy, idle) ticks of the whole machine."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, idle


def worker_pids(servers: list[subprocess.Popen[bytes]]) -> list[int]:
    """The processes serving requests: uvicorn's workers, or the servers themselves."""
    found = []
    for server in servers:
        children = [pid for pid in _tree(server.pid) if pid != server.pid]
        workers = [pid for pid in children if "resource_tracker" not in _cmdline(pid)]
        found += workers or [server.pid]
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def cpu_snapshot(servers: list[subprocess.Popen[bytes]]) -> dict[str, int]:
    workers = worker_pids(servers)
    busy, idle = _machine()
    return {
        **{f"worker {pid}": _ticks(pid) for pid in workers},
        "server": sum(_ticks(pid) for pid in workers),
        "postgres": sum(_ticks(pid) for pid in _postgres_pids()),
        "busy": busy,
        "idle": idle,
    }


class Meter:
    """CPU of the server workers, PostgreSQL and the machine over a window (from /proc).

    Snapshots are taken by timers at the window's edges, so warm-up is left out. A
    PostgreSQL backend that exits inside the window loses its ticks (connections are
    pooled, so few do).
    """

    def __init__(self, servers: list[subprocess.Popen[bytes]], window: Window) -> None:
        self.snapshots: list[dict[str, int]] = []
        self._timers = [
            threading.Timer(
                max(0.0, at - time.time()), lambda: self.snapshots.append(cpu_snapshot(servers))
            )
            for at in (window.open, window.close)
        ]
        for timer in self._timers:
            timer.start()

    def cores(self, seconds: float, client_cpu: float) -> dict[str, Any]:
        """Average cores used: client, server, postgres, other (the rest of busy), idle."""
        for timer in self._timers:
            timer.join()
        hz = os.sysconf("SC_CLK_TCK")
        before, after = self.snapshots
        used = {name: (after[name] - before.get(name, 0)) / hz / seconds for name in after}
        client = client_cpu / seconds
        other = used["busy"] - used["server"] - used["postgres"] - client
        return {
            "client": client,
            "server": used["server"],
            "postgres": used["postgres"],
            "other": max(0.0, other),
            "idle": used["idle"],
            # Keep-alive connections stay with the worker that accepted them, and the
            # kernel does not balance accepts: one busy worker and one idle one shows here.
            "workers": sorted((v for k, v in used.items() if k.startswith("worker")), reverse=True),
        }


# --- report ----------------------------------------------------------------------------


def percentile(ordered: Sequence[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def summary(tally: Tally, seconds: float) -> tuple[float, float, float, float]:
    everything = sorted(value for values in tally.latencies.values() for value in values)
    rate = len(everything) / seconds
    return (
        rate,
        percentile(everything, 0.5),
        percentile(everything, 0.95),
        percentile(everything, 0.99),
    )


def report(
    name: str, tally: Tally, seconds: float, cpu: dict[str, Any], baseline: float | None
) -> float:
    """Print one run's figures; return its req/s."""
    rate, p50, p95, p99 = summary(tally, seconds)
    errors = Counter(
        {f"{op}:{status}": n for (op, status), n in tally.statuses.items() if not ok(op, status)}
    )
    ratio = f"   = {rate / baseline:.3f} x /healthz" if baseline else ""
    print(
        f"{name:<9} {rate:7.0f} req/s  p50 {p50 * 1e3:6.2f} ms  p95 {p95 * 1e3:6.2f} ms"
        f"  p99 {p99 * 1e3:6.2f} ms  errors {sum(errors.values())}{ratio}"
    )
    per_request = {
        k: cpu[k] / rate * 1e3 if rate else 0.0 for k in ("client", "server", "postgres")
    }
    print(
        "          cores: client {client:.2f}  server {server:.2f} ({split})  postgres {postgres:.2f}"
        "  other processes {other:.2f}  idle {idle:.2f}".format(
            split=" + ".join(f"{core:.2f}" for core in cpu["workers"]), **cpu
        )
        + "   CPU ms/request: server {server:.2f}  postgres {postgres:.2f}"
        "  client {client:.2f}".format(**per_request)
    )
    if errors:
        shown = ", ".join(f"{key}={count}" for key, count in errors.most_common())
        print(f"          errors (op:status=count): {shown}")
    for op in OPERATIONS:
        values = sorted(tally.latencies.get(op, ()))
        if values and len(tally.latencies) > 1:
            codes = Counter({s: n for (o, s), n in tally.statuses.items() if o == op})
            shown = " ".join(f"{s}={n}" for s, n in sorted(codes.items()))
            print(
                f"  {op:<7} {len(values) / seconds:6.0f} req/s  p50 {statistics.median(values) * 1e3:6.2f} ms"
                f"  p99 {percentile(values, 0.99) * 1e3:6.2f} ms  [{shown}]"
            )
    return rate


def ok(op: str, status: str) -> bool:
    if not status.isdigit():
        return False
    if op == "baseline":
        return status == "200"
    return int(status) == _SUCCESS[op] or int(status) in _EXPECTED_MISSES


# --- main ------------------------------------------------------------------------------


def _server_text(workers: int, reuse_port: bool) -> str:
    if reuse_port:
        return f"{workers} one-worker uvicorn(s) on SO_REUSEPORT sockets"
    return f"uvicorn --workers {workers}"


def _mix_text(mix: dict[str, int]) -> str:
    total = sum(mix.values()) or 1
    return ", ".join(f"{round(100 * weight / total)}% {op}" for op, weight in mix.items())


def parse_mix(text: str) -> dict[str, int]:
    mix = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        if name.strip() not in OPERATIONS or not weight.strip().isdigit():
            raise argparse.ArgumentTypeError(f"--mix: expected op=weight over {OPERATIONS}")
        mix[name.strip()] = int(weight)
    return mix


def measured(
    servers: list[subprocess.Popen[bytes]], run: Callable[[Window], Tally], window: Window
) -> tuple[Tally, dict[str, Any]]:
    """Run the load over `window`; the tally and the cores each party used inside it."""
    meter = Meter(servers, window)
    tally = run(window)
    return tally, meter.cores(window.seconds, tally.cpu)


def profile(
    servers: list[subprocess.Popen[bytes]], directory: Path, seconds: float
) -> list[subprocess.Popen[bytes]]:
    """py-spy raw (collapsed) stacks of every worker, for the timed window (CPU only)."""
    directory.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [
                "py-spy",
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "200",
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(directory / f"worker-{pid}.txt"),
            ],
            stdout=subprocess.DEVNULL,
        )
        for pid in worker_pids(servers)
    ]


#: What a worker's CPU sample was doing, by purpose: the first rule with a frame containing
#: one of its marks wins (so the order is the priority).
OWNERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("audit row (own transaction, after the response)", ("AuditWriter.",)),
    ("auth: JWT + RBAC", ("FhirCall.allow (", "FhirCall.require (", "FhirCall.principal (")),
    ("validation (fhir.resources + bindings)", ("validate_body (",)),
    ("scoped pool: checkout, scope, check-in", ("ScopedPool.",)),
    (
        "BEGIN (+ RLS set_config on the main pool)",
        ("_apply_scope (", "_start_transaction (", "Transaction.__aenter__"),
    ),
    ("COMMIT", ("AsyncSessionTransaction.__aexit__", "Transaction.__aexit__", "commit (")),
    ("FHIR write statement (pg_write)", ("write_version (",)),
    ("FHIR reads and searches (statements)", ("driver_sql.py",)),
    (
        "FHIR store: service, search and index building",
        ("fhir_store/service.py", "fhir_store/repository.py", "fhir_store/search"),
    ),
    ("request body JSON parse", ("read_json (", "read_resource (")),
    ("response: JSON render + headers", ("respond (", "_search (", "render (", "init_headers (")),
    ("FHIR router + handlers (rest)", ("fhir_store/",)),
    ("thread-pool hops (sync dependencies)", ("to_thread.py", "threading.py", "queue.py")),
    (
        "Starlette + middleware (request id, audit)",
        ("starlette/", "ehr_api/app.py", "audit/middleware.py"),
    ),
    ("FastAPI (app, middleware)", ("fastapi/",)),
    ("uvicorn + httptools (HTTP parsing, writes)", ("uvicorn/protocols",)),
    # SQLAlchemy runs statements in greenlets whose stacks start at the session call: the
    # caller (store, session set-up, audit) is not visible, only that it is an ORM statement.
    (
        "SQLAlchemy + asyncpg statements seen from greenlets (caller not visible)",
        ("Session.", "PreparedStatement.", "_prepare_and_execute"),
    ),
)
#: ... and by library: the innermost frame that belongs to one.
LIBRARIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("asyncpg (driver, protocol)", ("asyncpg/",)),
    ("SQLAlchemy (ORM, Core, compile)", ("sqlalchemy/",)),
    ("pydantic / fhir.resources", ("pydantic", "fhir/resources", "fhir_core")),
    ("json", ("json/",)),
    ("jwt + hashlib", ("jwt/", "hashlib", "hmac")),
    ("FastAPI + Starlette", ("fastapi/", "starlette/")),
    ("uvicorn + httptools", ("uvicorn/", "httptools")),
    ("threads (anyio pool)", ("threading.py", "queue.py", "anyio/")),
    ("our code (ehr_api, hl7_fhir)", ("ehr_api/", "hl7_fhir/")),
    ("asyncio event loop", ("asyncio/", "uvloop")),
)


def summarise_profile(directory: Path, server_ms: float) -> None:
    """Print where the workers' CPU samples went, by purpose and by library.

    Shares are of the samples; ms/request apportions the measured server CPU per request
    (py-spy's sample counts include every thread and some blocked time, so they are not
    themselves a CPU clock).
    """
    owners: Counter[str] = Counter()
    libraries: Counter[str] = Counter()
    for path in directory.glob("worker-*.txt"):
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = [frame for frame in stack.split(";") if frame]
            owners[_by_rule(frames, OWNERS) if frames else "no Python frame"] += int(count)
            libraries[_by_frame(frames[::-1], LIBRARIES) if frames else "no Python frame"] += int(
                count
            )
    total = sum(owners.values())
    if not total:
        print("py-spy recorded nothing (is py-spy on PATH? `uv run --with py-spy ...`)")
        return
    for title, counts in (("by purpose", owners), ("by library", libraries)):
        print(f"server CPU {title} (py-spy, {total} samples):")
        for label, samples in counts.most_common():
            share = samples / total
            print(f"  {share:6.1%}  {share * server_ms:6.2f} ms/request  {label}")


def _by_rule(frames: Sequence[str], rules: Sequence[tuple[str, tuple[str, ...]]]) -> str:
    for label, marks in rules:
        if any(mark in frame for frame in frames for mark in marks):
            return label
    return "other (event loop, idle callbacks)"


def _by_frame(frames: Sequence[str], rules: Sequence[tuple[str, tuple[str, ...]]]) -> str:
    for frame in frames:
        for label, marks in rules:
            if any(mark in frame for mark in marks):
                return label
    return "other"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server",
        default=os.environ.get("BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432"),
        help="PostgreSQL server URL without a database",
    )
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (2)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (32)")
    parser.add_argument("--client-procs", type=int, default=1, help="client processes (1)")
    parser.add_argument("--duration", type=float, default=20.0, help="timed window, s (20)")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up before it, s (5)")
    parser.add_argument("--baseline-seconds", type=float, default=5.0, help="/healthz window")
    parser.add_argument("--seed", type=int, default=3, help="resources per type per connection")
    parser.add_argument("--pool-size", type=int, default=10, help="EHR_DB_POOL_SIZE per worker")
    parser.add_argument("--client", choices=("raw", "aiohttp", "httpx"), default="raw")
    parser.add_argument("--mix", type=parse_mix, default=parse_mix(DEFAULT_MIX))
    parser.add_argument("--quick", action="store_true", help="5 s window, 2 s warm-up")
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        help="N one-worker uvicorns on SO_REUSEPORT sockets instead of --workers N",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="then run the same mix against bench/fhir_floor.py (same SQL, no framework)",
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-floor", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--py-spy", type=Path, help="record worker stacks into this directory")
    args = parser.parse_args(argv)
    if args.serve:
        serve_reuse_port(args.serve)
        return 0
    if args.serve_floor:
        sys.path.insert(0, str(Path(__file__).parent))
        from fhir_floor import serve

        serve(args.serve_floor)
        return 0
    if args.quick:
        args.duration, args.warmup, args.baseline_seconds = 5.0, 2.0, 2.0

    delay = 2.5 if args.client_procs > 1 else 0.2  # spawned client processes import first
    load = {"procs": args.client_procs, "mix": args.mix}
    with (
        fresh_database(args.server) as (url, name),
        tempfile.TemporaryDirectory(prefix="ehr-bench-") as directory,
    ):
        env = server_env(url, Path(directory), args.pool_size)
        token = asyncio.run(prepare(env))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with uvicorn_server(env, port, args.workers, reuse_port=args.reuse_port) as server:
            asyncio.run(wait_ready(base, server))
            target = Target(base, token, "", args.client)
            target = Target(base, token, asyncio.run(first_patient(target)), args.client)
            owned = asyncio.run(seed(target, args.connections, args.seed))
            # Fresh tables have no statistics until autovacuum gets to them (a minute or
            # more): without them identifier search plans scan every resource of the type.
            asyncio.run(_admin_execute(args.server, "ANALYZE", name))
            print(
                f"PostgreSQL database {name}; {_server_text(args.workers, args.reuse_port)}"
                f" (pool {args.pool_size}); {args.client}, {args.connections} connections in"
                f" {args.client_procs} client process(es); {os.cpu_count()} cores shared by"
                f" client, server and PostgreSQL; mix {_mix_text(args.mix)};"
                f" {args.duration:g} s window after {args.warmup:g} s warm-up"
            )
            window = Window.after(delay, 1.0, args.baseline_seconds)
            tally, cpu = measured(
                server, lambda w: run_load(target, owned, w, path="/healthz", **load), window
            )
            baseline = report("/healthz", tally, window.seconds, cpu, None)
            window = Window.after(delay, args.warmup, args.duration)
            spies: list[subprocess.Popen[bytes]] = []
            if args.py_spy:
                attach = lambda: spies.extend(profile(server, args.py_spy, window.seconds))  # noqa: E731
                threading.Timer(max(0.0, window.open - time.time()), attach).start()
            tally, cpu = measured(server, lambda w: run_load(target, owned, w, **load), window)
            rate = report("CRUD mix", tally, window.seconds, cpu, baseline)
            sessions = asyncio.run(_admin_execute(args.server, _SESSIONS.format(name=name)))
            print(f"          PostgreSQL sessions opened in the whole run: {sessions} (pool churn)")
            for spy in spies:
                spy.wait()
            if args.py_spy:
                summarise_profile(args.py_spy, cpu["server"] / rate * 1e3 if rate else 0.0)
        if args.floor:
            floor = run_floor(args, env, name, target, owned, window_args=(delay, load))
            print(f"          platform / floor = {rate / floor:.3f}" if floor else "")
    return 0


def run_floor(
    args: argparse.Namespace,
    env: dict[str, str],
    name: str,
    target: Target,
    owned: list[Owned],
    *,
    window_args: tuple[float, dict[str, Any]],
) -> float:
    """The same mix on the same data against the floor app; its req/s."""
    delay, load = window_args
    org = asyncio.run(
        _admin_execute(
            args.server, f"SELECT id::text FROM organizations WHERE slug = '{ORG}'", name
        )
    )
    dsn = env["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    floor_env = {**env, "BENCH_FLOOR_DSN": dsn, "BENCH_FLOOR_ORG": org}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with uvicorn_server(
        floor_env, port, args.workers, reuse_port=True, serve="--serve-floor"
    ) as server:
        asyncio.run(wait_ready(base, server, path=f"{BASE}/Patient?_id={target.patient}"))
        floor_target = Target(base, target.token, target.patient, target.client)
        window = Window.after(delay, args.warmup, args.duration)
        tally, cpu = measured(server, lambda w: run_load(floor_target, owned, w, **load), window)
        return report("floor", tally, window.seconds, cpu, None)


if __name__ == "__main__":
    sys.exit(main())
