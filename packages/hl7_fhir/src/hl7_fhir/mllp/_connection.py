"""One MLLP stream over asyncio: framed reads and writes, and ACK matching for senders.

The server reads frames and writes answers in turn (:meth:`MLLPConnection.read_frame`,
:meth:`MLLPConnection.write_frame`). A sender instead calls
:meth:`MLLPConnection.request`: a background task reads every incoming frame, parses it
as an ACK and resolves the future registered under the MSA-2 it echoes (a dict of
control id -> future, as Medplum's hl7 client does), so several messages can be in
flight on one connection and answers may even arrive out of order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as _ssl
import time
from collections import OrderedDict, deque
from typing import Any

from hl7_fhir.errors import (
    AckError,
    AckMismatchError,
    AckTimeoutError,
    ConnectionClosedError,
    FramingError,
    MessageTooLargeError,
    ParseError,
)
from hl7_fhir.v2 import Message, parse

from ._framing import DEFAULT_MAX_MESSAGE_SIZE, FrameDecoder, Overflow, frame

__all__ = ["MLLPConnection", "open_connection"]

logger = logging.getLogger(__name__)

READ_SIZE = 256 * 1024
_ABANDONED_MEMORY = 1024  # control ids of timed-out sends whose late ACKs are ignored


class MLLPConnection:
    """Framed HL7 messages over an asyncio stream pair.

    Use either the reading methods (a server) or :meth:`request` (a sender) on one
    connection, not both: once :meth:`request` has been called a background task owns
    the reading side.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        read_size: int = READ_SIZE,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._decoder = FrameDecoder(max_message_size)
        self._read_size = read_size
        self._frames: deque[bytes] = deque()
        self._overflow: Overflow | None = None
        self._eof = False
        self._closed = False
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._abandoned: OrderedDict[str, None] = OrderedDict()
        self._ack_reader: asyncio.Task[None] | None = None
        self.last_overflow: Overflow | None = None
        """The oversized frame behind the last :class:`MessageTooLargeError`."""
        self.last_activity = time.monotonic()
        """When bytes last came in or an answer went out (``time.monotonic()``)."""
        peer = writer.get_extra_info("peername")
        self.name = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """Transport details, as :meth:`asyncio.StreamWriter.get_extra_info`."""
        return self._writer.get_extra_info(name, default)

    @property
    def closed(self) -> bool:
        """True once the connection was closed or the peer went away."""
        return self._closed or self._eof or self._writer.is_closing()

    @property
    def in_flight(self) -> int:
        """Messages sent with :meth:`request` and still waiting for their ACK."""
        return len(self._pending)

    # -- reading -------------------------------------------------------------------

    async def read_frame(self, *, idle_timeout: float | None = None) -> bytes:
        """Return the next payload.

        ``idle_timeout`` bounds each wait for bytes, so a peer that keeps sending a large
        message slowly is not cut off, but a silent one is.

        Raises:
            ConnectionClosedError: the peer closed the stream (or it broke).
            MessageTooLargeError: a frame exceeded the limit; :attr:`last_overflow`
                holds its header. Reading may continue after it.
            TimeoutError: no bytes arrived for ``idle_timeout`` seconds.
        """
        while True:
            if self._frames:
                return self._frames.popleft()
            if self._overflow is not None:
                overflow, self._overflow = self._overflow, None
                self.last_overflow = overflow
                self._decode(b"")  # frames buffered behind the oversized one
                raise overflow.error()
            if self._eof:
                raise ConnectionClosedError(f"{self.name} closed the connection")
            if idle_timeout is None:
                data = await self._read()
            else:
                async with asyncio.timeout(idle_timeout):
                    data = await self._read()
            if data:
                self._decode(data)
            else:
                self._eof = True
                rest = self._decoder.flush()
                if rest:
                    logger.warning(
                        "%s: connection closed inside a frame, %d bytes lost: %s",
                        self.name,
                        len(rest),
                        rest[:32].hex(" "),
                    )

    async def discard_rest(self, *, grace: float) -> None:
        """After an oversized frame: read and drop its remaining bytes (bounded in time).

        Reading to the end of the frame before closing lets the sender finish writing
        and read our AR instead of hitting a reset.
        """
        with contextlib.suppress(TimeoutError, ConnectionClosedError):
            async with asyncio.timeout(grace):
                while self._decoder.discarding and not self._eof:
                    data = await self._read()
                    self._eof = not data
                    self._decode(data)

    async def _read(self) -> bytes:
        try:
            data = await self._reader.read(self._read_size)
        except OSError as exc:
            self._eof = True
            raise ConnectionClosedError(f"{self.name}: {exc}") from exc
        self.last_activity = time.monotonic()
        return data

    def _decode(self, data: bytes) -> None:
        self._frames.extend(self._decoder.feed(data))
        junk = self._decoder.take_junk()
        if junk:
            # Line breaks between frames are common and harmless; anything else is not.
            level = logging.DEBUG if not junk.strip() else logging.WARNING
            logger.log(
                level,
                "%s: %d bytes outside MLLP frames ignored: %s",
                self.name,
                len(junk),
                junk[:32].hex(" "),
            )
        self._overflow = self._decoder.take_overflow()

    # -- writing -------------------------------------------------------------------

    async def write_frame(self, payload: bytes) -> None:
        """Frame ``payload``, write it and wait until the transport takes it.

        Raises:
            ConnectionClosedError: the connection is closed or broke while writing.
        """
        if self._closed or self._writer.is_closing():
            raise ConnectionClosedError(f"{self.name}: connection is closed")
        try:
            self._writer.write(frame(payload))
            await self._writer.drain()
        except OSError as exc:
            raise ConnectionClosedError(f"{self.name}: {exc}") from exc
        self.last_activity = time.monotonic()

    # -- sending with ACK matching -------------------------------------------------

    async def request(
        self, payload: bytes, control_id: str, *, ack_timeout: float | None
    ) -> Message:
        """Send one message and return the ACK whose MSA-2 echoes ``control_id``.

        Several requests may run at once on one connection (pipelining); a second
        request with a control id already in flight waits for the first to settle.

        Raises:
            AckTimeoutError: no ACK within ``ack_timeout`` seconds (a late one is ignored).
            AckMismatchError: the peer answered, but for another control id.
            AckError: the answer could not be read as an HL7 message.
            ConnectionClosedError: the connection closed before the ACK arrived.
        """
        while (earlier := self._pending.get(control_id)) is not None:
            await asyncio.wait([earlier])
        if self._ack_reader is None:
            self._ack_reader = asyncio.create_task(self._read_acks())
        if self.closed:
            raise ConnectionClosedError(f"{self.name}: connection is closed")
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[control_id] = future
        try:
            await self.write_frame(payload)
            async with asyncio.timeout(ack_timeout):
                return await future
        except TimeoutError as exc:
            self._abandoned[control_id] = None
            while len(self._abandoned) > _ABANDONED_MEMORY:
                self._abandoned.popitem(last=False)
            raise AckTimeoutError(f"no ACK for {control_id!r} within {ack_timeout} s") from exc
        finally:
            if self._pending.get(control_id) is future:
                del self._pending[control_id]
            if not future.done():
                future.cancel()

    async def _read_acks(self) -> None:
        error: Exception = ConnectionClosedError(f"{self.name}: connection is closed")
        try:
            while True:
                try:
                    payload = await self.read_frame()
                except MessageTooLargeError as exc:
                    self._fail_oldest(exc)
                    continue
                self._dispatch(payload)
        except (ConnectionClosedError, FramingError) as exc:
            error = exc
        finally:
            self._eof = True
            self._fail_all(error)

    def _dispatch(self, payload: bytes) -> None:
        try:
            ack = parse(payload)
        except ParseError as exc:
            logger.warning("%s: unreadable answer: %s", self.name, payload[:64])
            failure = AckError(f"unreadable answer from {self.name}: {exc}")
            failure.__cause__ = exc
            self._fail_oldest(failure)
            return
        acked = ack["MSA-2"]
        future = self._pending.pop(acked, None)
        if future is not None:
            if not future.done():
                future.set_result(ack)
            return
        if acked in self._abandoned:
            logger.info("%s: late ACK for %r ignored (timed out)", self.name, acked)
            return
        if not self._pending:
            logger.warning("%s: unsolicited message ignored (MSA-2 %r)", self.name, acked)
            return
        waiting = next(iter(self._pending))
        self._fail_oldest(
            AckMismatchError(
                f"ACK for {acked!r} while waiting for {waiting!r}", ack=ack, code=ack["MSA-1"]
            )
        )

    def _fail_all(self, error: Exception) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()

    def _fail_oldest(self, error: Exception) -> None:
        if not self._pending:
            logger.warning("%s: %s (nothing was waiting)", self.name, error)
            return
        key = next(iter(self._pending))
        future = self._pending.pop(key)
        if not future.done():
            future.set_exception(error)

    # -- closing -------------------------------------------------------------------

    def start_closing(self) -> None:
        """Start closing without waiting; a pending read then sees end of stream."""
        self._writer.close()

    async def close(self) -> None:
        """Close the stream and fail any request still waiting; never raises."""
        if self._closed:
            return
        self._closed = True
        if self._ack_reader is not None:
            self._ack_reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ack_reader
        # The reader fails what it knows of, unless it was cancelled before it started.
        self._fail_all(ConnectionClosedError(f"{self.name}: connection closed"))
        self._writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await self._writer.wait_closed()


async def open_connection(
    host: str,
    port: int,
    *,
    ssl: _ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> MLLPConnection:
    """Connect to an MLLP listener, like :func:`asyncio.open_connection`.

    Raises:
        OSError: the connection (or TLS handshake) failed.
    """
    reader, writer = await asyncio.open_connection(
        host, port, ssl=ssl, server_hostname=server_hostname if ssl else None, limit=READ_SIZE
    )
    return MLLPConnection(reader, writer, max_message_size=max_message_size)
