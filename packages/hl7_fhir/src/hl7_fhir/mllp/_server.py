"""The MLLP listener: one task per connection, one answer per message, in order.

The handler sees the bytes exactly as received (persist first, then ACK) and returns the
answer. Whatever the handler does, the sender gets an answer: ``None`` becomes an AA,
an exception an AE (CE in enhanced mode) with an ERR 207, and the listener carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl as _ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from hl7_fhir.errors import (
    ConnectionClosedError,
    HL7FhirError,
    MessageTooLargeError,
    ParseError,
)
from hl7_fhir.v2 import ErrorDetail, Message, build_ack, new_control_id, peek_control_id

from ._connection import READ_SIZE, MLLPConnection
from ._framing import DEFAULT_MAX_MESSAGE_SIZE

__all__ = ["ConnectionInfo", "Handler", "MLLPServer", "ServerSettings", "start_server"]

logger = logging.getLogger(__name__)

_SUBJECT_KEYS = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "stateOrProvinceName": "ST",
    "localityName": "L",
}


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """Who is talking to the handler.

    ``peer_cert_subject`` is the verified client certificate's subject
    (``"CN=ris,O=Hospital"``) under mutual TLS, else ``None``.
    """

    connection_id: int
    peer_host: str
    peer_port: int
    server_port: int
    tls: bool = False
    peer_cert_subject: str | None = None


Handler = Callable[[bytes, ConnectionInfo], Awaitable[bytes | Message | None]]
"""``async def handler(message: bytes, info: ConnectionInfo) -> bytes | Message | None``."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Limits of an :class:`MLLPServer`.

    ``idle_timeout`` closes a connection that sent nothing for that many seconds
    (``None``: never); ``max_connections`` closes connections beyond that number at
    once; ``shutdown_timeout`` is how long :meth:`MLLPServer.close` lets messages in
    flight finish before cancelling them.
    """

    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    idle_timeout: float | None = 300.0
    max_connections: int | None = 256
    shutdown_timeout: float = 10.0
    discard_timeout: float = 5.0
    read_size: int = READ_SIZE


@dataclass(slots=True)
class _Session:
    connection: MLLPConnection
    info: ConnectionInfo
    busy: bool = False


class MLLPServer:
    """An asyncio MLLP listener.

    >>> async def handler(message: bytes, info: ConnectionInfo) -> None:
    ...     store(message)  # returning None answers AA
    >>> async with MLLPServer(handler, port=0) as server:  # doctest: +SKIP
    ...     print(server.port)
    ...     await server.serve_forever()
    """

    def __init__(
        self,
        handler: Handler,
        host: str | None = "127.0.0.1",
        port: int = 2575,
        *,
        ssl: _ssl.SSLContext | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        idle_timeout: float | None = 300.0,
        max_connections: int | None = 256,
        shutdown_timeout: float = 10.0,
        discard_timeout: float = 5.0,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.ssl = ssl
        self.settings = ServerSettings(
            max_message_size=max_message_size,
            idle_timeout=idle_timeout,
            max_connections=max_connections,
            shutdown_timeout=shutdown_timeout,
            discard_timeout=discard_timeout,
        )
        self._server: asyncio.Server | None = None
        self._sessions: dict[asyncio.Task[Any], _Session] = {}
        self._ids = itertools.count(1)
        self._closing = False
        self._closed = asyncio.Event()
        self._watchdog: asyncio.Task[None] | None = None

    @property
    def connections(self) -> int:
        """Connections open right now."""
        return len(self._sessions)

    async def start(self) -> None:
        """Bind and start accepting; after it, :attr:`port` is the bound port.

        Raises:
            OSError: the address cannot be bound.
        """
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, ssl=self.ssl, limit=self.settings.read_size
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self.settings.idle_timeout is not None:
            self._watchdog = asyncio.create_task(self._close_idle(self.settings.idle_timeout))
        logger.info("MLLP listening on %s:%d%s", self.host, self.port, " (TLS)" if self.ssl else "")

    async def serve_forever(self) -> None:
        """Serve until :meth:`close` is called or this task is cancelled (then close)."""
        await self.start()
        try:
            await self._closed.wait()
        finally:
            await self.close()

    async def close(self) -> None:
        """Shut down gracefully.

        Stop accepting, close idle connections, let messages being handled get their
        answer (up to ``shutdown_timeout`` seconds, then cancel them), close the rest.
        """
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        if self._server is not None:
            self._server.close()
        for task, session in list(self._sessions.items()):
            if not session.busy:
                task.cancel()
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        tasks = list(self._sessions)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.settings.shutdown_timeout)
            for task in late:
                logger.warning("MLLP shutdown: cancelling a message still being handled")
                task.cancel()
            if late:
                await asyncio.wait(late)
        if self._server is not None:
            await self._server.wait_closed()
        self._closed.set()
        logger.info("MLLP listener on port %d closed", self.port)

    async def __aenter__(self) -> MLLPServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _close_idle(self, idle_timeout: float) -> None:
        """Close connections quiet for ``idle_timeout`` seconds.

        One sweep for all connections costs less than a timer around every read.
        """
        interval = min(1.0, idle_timeout / 4)
        while True:
            await asyncio.sleep(interval)
            quiet_since = time.monotonic() - idle_timeout
            for session in self._sessions.values():
                connection = session.connection
                if not session.busy and connection.last_activity < quiet_since:
                    logger.info("%s: idle, closing", connection.name)
                    connection.start_closing()

    # -- one connection ------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = MLLPConnection(
            reader,
            writer,
            max_message_size=self.settings.max_message_size,
            read_size=self.settings.read_size,
        )
        limit = self.settings.max_connections
        if self._closing or (limit is not None and len(self._sessions) >= limit):
            logger.warning("%s: refused, %d connections open", connection.name, len(self._sessions))
            await connection.close()
            return
        task = asyncio.current_task()
        assert task is not None  # always true inside a callback task
        session = _Session(connection, self._describe(connection))
        self._sessions[task] = session
        logger.info("%s: connected (#%d)", connection.name, session.info.connection_id)
        try:
            await self._serve(session)
        except asyncio.CancelledError:
            if not self._closing:
                raise
            # Our own shutdown: end quietly (asyncio logs a cancelled callback task).
        except Exception:
            logger.exception("%s: connection failed", connection.name)
        finally:
            del self._sessions[task]
            await connection.close()
            logger.info("%s: disconnected", connection.name)

    def _describe(self, connection: MLLPConnection) -> ConnectionInfo:
        peer = connection.get_extra_info("peername")
        host, port = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else (str(peer), 0)
        cert = connection.get_extra_info("peercert")
        subject = None
        if cert:
            subject = ",".join(
                f"{_SUBJECT_KEYS.get(key, key)}={value}"
                for rdn in cert.get("subject", ())
                for key, value in rdn
            )
        return ConnectionInfo(
            connection_id=next(self._ids),
            peer_host=host,
            peer_port=port,
            server_port=self.port,
            tls=connection.get_extra_info("ssl_object") is not None,
            peer_cert_subject=subject,
        )

    async def _serve(self, session: _Session) -> None:
        connection = session.connection
        while not self._closing:
            try:
                payload = await connection.read_frame()
            except ConnectionClosedError:
                return
            except MessageTooLargeError as exc:
                await self._refuse_oversized(connection, exc)
                return
            session.busy = True
            try:
                answer = await self._answer(payload, session.info)
                await connection.write_frame(answer)
            except ConnectionClosedError:
                logger.warning("%s: closed before the answer was sent", connection.name)
                return
            finally:
                session.busy = False

    async def _answer(self, payload: bytes, info: ConnectionInfo) -> bytes:
        try:
            result: object = await self.handler(payload, info)  # untyped handlers exist
        except Exception as exc:
            logger.exception(
                "handler failed on message %r from %s:%d",
                peek_control_id(payload),
                info.peer_host,
                info.peer_port,
            )
            # Input errors describe the sender's data; anything else stays private.
            text = str(exc) if isinstance(exc, ParseError) else "Application internal error"
            return _ack(payload, "AE", text)
        if result is None:
            return _ack(payload, "AA")
        if isinstance(result, bytes):
            return result
        if isinstance(result, Message):
            return result.encode()
        logger.error("handler returned %s, not bytes, Message or None", type(result).__name__)
        return _ack(payload, "AE", "Application internal error")

    async def _refuse_oversized(self, connection: MLLPConnection, exc: Exception) -> None:
        overflow = connection.last_overflow
        head = overflow.head if overflow is not None else b""
        logger.warning("%s: %s; answering AR and closing", connection.name, exc)
        answer = _ack(head, "AR", f"message exceeds {self.settings.max_message_size} bytes")
        with contextlib.suppress(ConnectionClosedError):
            await connection.write_frame(answer)
            await connection.discard_rest(grace=self.settings.discard_timeout)


def _ack(inbound: bytes, code: str, text: str | None = None) -> bytes:
    """An ACK for ``inbound``; falls back to a bare one if even that cannot be built."""
    errors = [ErrorDetail("207", text)] if text else []
    try:
        return build_ack(inbound, code, text=text, errors=errors).encode()
    except (HL7FhirError, ValueError, UnicodeError):
        logger.exception("cannot build an ACK, sending a minimal one")
        echoed = (peek_control_id(inbound) or "").encode("latin-1", "replace")
        header = f"MSH|^~\\&|||||||ACK|{new_control_id()}|P|2.5\rMSA|{code}|".encode()
        return header + echoed + b"\r"


async def start_server(
    handler: Handler,
    host: str | None = "127.0.0.1",
    port: int = 2575,
    **options: Any,
) -> MLLPServer:
    """Create an :class:`MLLPServer`, start it and return it (like ``asyncio.start_server``).

    ``options`` are the keyword options of :class:`MLLPServer`.

    Raises:
        OSError: the address cannot be bound.
    """
    server = MLLPServer(handler, host, port, **options)
    await server.start()
    return server
