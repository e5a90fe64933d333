"""A lean keep-alive HTTP/1.1 client for load generation: asyncio protocols + httptools.

Why: the load generator shares the machine's two cores with the server and PostgreSQL,
so whatever CPU it spends per request is taken from the system under test. aiohttp costs
about 0.23 ms of CPU per request here (ClientResponse objects, multidict headers, timeouts,
tracing hooks); a protocol that writes preformatted request bytes and lets httptools parse
the reply costs a fraction of that. It speaks just enough HTTP for the benchmarks: one
request at a time per connection, Content-Length bodies (and chunked replies, which
httptools decodes), reconnecting when the server closed the connection.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httptools


@dataclass(frozen=True, slots=True)
class RawReply:
    status: int
    location: str
    body: bytes


class _Connection(asyncio.Protocol):
    """One TCP connection; `request` sends bytes and waits for the whole reply."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[RawReply] | None = None
        self.location = ""
        self.chunks: list[bytes] = []
        self.keep_alive = True
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionResetError("the server closed the connection"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.location = ""
        self.chunks = []

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"location":
            self.location = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            status = self.parser.get_status_code()
            waiter.set_result(RawReply(status, self.location, b"".join(self.chunks)))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    async def request(self, data: bytes) -> RawReply:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


class RawClient:
    """Up to `connections` keep-alive connections to `base` (http://host:port), reused LIFO."""

    def __init__(self, base: str, headers: dict[str, str], connections: int) -> None:
        host_port = base.removeprefix("http://").rstrip("/")
        host, _, port = host_port.partition(":")
        self.host, self.port = host, int(port or 80)
        fixed = {"Host": host_port, **headers}
        self._fixed = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(connections)

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(_Connection, self.host, self.port)
        return protocol

    async def send(self, method: str, path: str, body: bytes | None = None) -> RawReply:
        head = f"{method} {path} HTTP/1.1\r\n{self._fixed}"
        if body is not None:
            head += f"Content-Length: {len(body)}\r\n"
        data = (head + "\r\n").encode("latin-1") + (body or b"")
        async with self._slots:
            connection = self._idle.pop() if self._idle else await self._connect()
            if connection.closed:
                connection = await self._connect()
            try:
                reply = await connection.request(data)
            except BaseException:
                if connection.transport is not None:
                    connection.transport.close()
                raise
            if connection.keep_alive and not connection.closed:
                self._idle.append(connection)
            elif connection.transport is not None:
                connection.transport.close()
            return reply

    async def close(self) -> None:
        for connection in self._idle:
            if connection.transport is not None:
                connection.transport.close()
        self._idle.clear()
