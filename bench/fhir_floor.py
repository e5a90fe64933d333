"""The floor under bench/fhir_crud.py: the same PostgreSQL work with no framework around it.

A raw ASGI app (served by the same uvicorn + httptools) that answers the CRUD mix's five
requests with the statements the platform sends on PostgreSQL, and nothing else:

- connections are scoped as the platform's scoped pool scopes them
  (`ehr_api.db.scoped_pool`): role, organisation and platform flag set at session level
  once, so row-level security applies as in production; every statement runs in
  autocommit: reads and creates are one statement, update and delete a read and a write
  that only applies over the version read, as the platform's (the platform also switches
  a connection between read-only and writable when its idle ones are of the other kind,
  and retries under a row lock when another write came between; the floor does neither);
- create/update/delete run the platform's own one-statement write (current row, history,
  search index, event: `ehr_api.fhir_store.pg_write.version_statement`), with index rows
  from the platform's indexer; update and delete read the current version first;
- read is one primary-key SELECT whose JSON text is sent as it is; search is one
  identifier (token index join) or `_id` SELECT wrapped in a searchset Bundle.

Left out, on purpose: FastAPI, SQLAlchemy, JWT verification, RBAC, validation with
fhir.resources, the audit row (written in batches of about 8.5 per transaction by the
platform, measured), ETag/Location/Prefer handling beyond what the client checks. The
difference between the platform's figure and this one is what those layers cost; this
figure is what Python, asyncpg, uvicorn and PostgreSQL allow on the machine.

Run by bench/fhir_crud.py --floor (one process per --workers, SO_REUSEPORT), never alone.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
from ehr_api.db.base import utcnow
from ehr_api.db.begin_prelude import set_config_sql
from ehr_api.db.driver_sql import compiled
from ehr_api.fhir_store.indexing import index
from ehr_api.fhir_store.models import FhirResource
from ehr_api.fhir_store.pg_write import version_statement

_READ = (
    "SELECT content::text FROM fhir_resources"
    " WHERE org_id = $1 AND resource_type = $2 AND id = $3 AND NOT deleted"
)
_CURRENT = (
    "SELECT version_id, deleted FROM fhir_resources"
    " WHERE org_id = $1 AND resource_type = $2 AND id = $3"
)
_BY_IDENTIFIER = (
    "SELECT r.content::text FROM fhir_resources r JOIN fhir_search_token t"
    " ON t.org_id = r.org_id AND t.resource_type = r.resource_type AND t.resource_id = r.id"
    " WHERE r.org_id = $1 AND r.resource_type = $2 AND NOT r.deleted"
    " AND t.param = 'identifier' AND t.system = $3 AND t.code = $4 LIMIT 51"
)
_BY_ID = _READ + " LIMIT 51"


class Floor:
    """The ASGI app; one asyncpg pool per process."""

    def __init__(self, dsn: str, org_id: uuid.UUID, pool_size: int) -> None:
        self.dsn = dsn
        self.org_id = org_id
        self.pool_size = pool_size
        self.pool: asyncpg.Pool | None = None
        settings = {"app.current_org": str(org_id), "app.platform": "off", "role": "ehr_app"}
        scope = set_config_sql(settings)
        assert scope is not None
        self.scope = scope.replace(", true)", ", false)")  # session-level, as scoped_pool

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        parts = scope["path"].strip("/").split("/")  # fhir, R4, Type[, id]
        status, headers, payload = await self._handle(
            scope["method"], parts[2:], scope["query_string"].decode(), body
        )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/fhir+json"), *headers],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=self.pool_size,
                    max_size=self.pool_size,
                    init=self._scoped,
                    reset=_keep_scope,
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.pool is not None:
                    await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _handle(
        self, method: str, path: list[str], query: str, body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        assert self.pool is not None
        kind = path[0]
        async with self.pool.acquire() as connection:
            return await self._work(connection, method, kind, path[1:], query, body)

    async def _scoped(self, connection: asyncpg.Connection) -> None:
        await connection.execute(self.scope)

    async def _work(
        self,
        connection: asyncpg.Connection,
        method: str,
        kind: str,
        rest: list[str],
        query: str,
        body: bytes,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        org = self.org_id
        if method == "GET" and rest:
            content = await connection.fetchval(_READ, org, kind, rest[0])
            return (200, [], content.encode()) if content else (404, [], b"{}")
        if method == "GET":
            return 200, [], await self._search(connection, kind, dict(parse_qsl(query)))
        if method == "POST":
            resource_id = str(uuid.uuid4())
            row = await self._write(connection, kind, resource_id, json.loads(body), None)
            assert row is not None  # an insert writes, or raises
            location = f"/fhir/R4/{kind}/{resource_id}/_history/1".encode()
            return 201, [(b"location", location)], json.dumps(row.content).encode()
        current = await connection.fetchrow(_CURRENT, org, kind, rest[0])
        if current is None or current["deleted"]:
            return 404, [], b"{}"
        content = json.loads(body) if method == "PUT" else None
        row = await self._write(connection, kind, rest[0], content, current["version_id"])
        if row is None:
            return 409, [], b"{}"  # another write came first (never, in this mix)
        return 200, [], json.dumps(row.content).encode() if content else b""

    async def _write(
        self,
        connection: asyncpg.Connection,
        kind: str,
        resource_id: str,
        content: dict[str, Any] | None,
        version: int | None,
    ) -> FhirResource | None:
        now = utcnow()
        number = 1 if version is None else version + 1
        if content is not None:
            meta = {"versionId": str(number), "lastUpdated": now.isoformat()}
            content = {**content, "id": resource_id, "meta": meta}
        row = FhirResource(
            org_id=self.org_id,
            resource_type=kind,
            id=resource_id,
            version_id=number,
            last_updated=now,
            deleted=content is None,
            content=content or {"resourceType": kind, "id": resource_id},
        )
        event = (
            "fhir.created"
            if version is None
            else "fhir.deleted"
            if content is None
            else "fhir.updated"
        )
        statement, params = version_statement(
            org_id=self.org_id,
            row=row,
            existed=version is not None,
            rows=None if content is None else index(kind, content),
            event_type=event,
        )
        sql, names = compiled(statement)
        written = await connection.fetchval(sql, *(params[name] for name in names))
        return row if written else None

    async def _search(
        self, connection: asyncpg.Connection, kind: str, params: dict[str, str]
    ) -> bytes:
        if "identifier" in params:
            system, _, code = params["identifier"].partition("|")
            rows = await connection.fetch(_BY_IDENTIFIER, self.org_id, kind, system, code)
        else:
            rows = await connection.fetch(_BY_ID, self.org_id, kind, params.get("_id", ""))
        entries = ",".join(f'{{"resource":{content}}}' for (content,) in rows)
        return (
            f'{{"resourceType":"Bundle","type":"searchset","total":{len(rows)},'
            f'"entry":[{entries}]}}'
        ).encode()


async def _keep_scope(connection: asyncpg.Connection) -> None:
    """asyncpg's default reset on release (RESET ALL, ...) would drop the scope and cost
    a round trip per request; the platform's scoped pool keeps the scope too."""


def serve(port: int) -> None:
    """One uvicorn process on a SO_REUSEPORT socket (settings from the environment)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    app = Floor(
        os.environ["BENCH_FLOOR_DSN"],
        uuid.UUID(os.environ["BENCH_FLOOR_ORG"]),
        int(os.environ.get("EHR_DB_POOL_SIZE", "10")),
    )
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
