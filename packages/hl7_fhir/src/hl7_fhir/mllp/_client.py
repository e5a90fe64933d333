"""The MLLP sender: persistent connections, ACK matching, reconnects with backoff.

A dropped connection is reopened on the next send, with exponential backoff between
attempts. A message whose connection broke before its ACK arrived is sent again, so a
receiver may see it twice: HL7 receivers are expected to recognise a repeated MSH-10
and acknowledge it again. A timed-out ACK is *not* retried (the receiver may still be
working on it); the caller decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as _ssl
from dataclasses import dataclass, field
from types import TracebackType

from hl7_fhir.errors import AckError, ConnectionClosedError, ParseError
from hl7_fhir.v2 import Message, parse, peek_control_id

from ._connection import MLLPConnection, open_connection
from ._framing import DEFAULT_MAX_MESSAGE_SIZE

__all__ = ["MLLPClient"]

logger = logging.getLogger(__name__)

_POSITIVE = frozenset({"AA", "CA"})


@dataclass(eq=False, slots=True)
class _Slot:
    """One pooled connection, opened lazily."""

    connection: MLLPConnection | None = None
    users: int = 0  # sends using or waiting for this slot
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class MLLPClient:
    """Send HL7 v2 messages over MLLP and wait for their ACKs.

    ``pool_size`` connections are opened on demand; concurrent senders spread over
    them and may also pipeline on one. ``send()`` returns the ACK whatever its MSA-1
    (look at ``ack["MSA-1"]``) unless ``raise_on_error`` is true.

    >>> async with MLLPClient("ris.example", 2575) as client:  # doctest: +SKIP
    ...     ack = await client.send(message)
    ...     ack["MSA-1"]
    'AA'
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl: _ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        timeout: float | None = 30.0,
        connect_timeout: float | None = 10.0,
        retries: int = 3,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        pool_size: int = 1,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        raise_on_error: bool = False,
    ) -> None:
        if pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        self.host = host
        self.port = port
        self.ssl = ssl
        self.server_hostname = server_hostname
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_message_size = max_message_size
        self.raise_on_error = raise_on_error
        self._slots = [_Slot() for _ in range(pool_size)]
        self._closed = False

    async def send(self, message: Message | bytes | str) -> Message:
        """Send one message; return its parsed ACK.

        ``bytes`` are sent exactly as given (use CR segment terminators); a ``str`` is
        parsed and encoded in the charset its MSH-18 names.

        Raises:
            ParseError: the message has no MSH-10 to match the ACK with.
            AckTimeoutError: no ACK within ``timeout`` seconds.
            AckMismatchError: the ACK's MSA-2 is not our MSH-10.
            AckError: the ACK is negative (AE/AR/CE/CR) and ``raise_on_error`` is set,
                or the answer is unreadable.
            ConnectionClosedError: no connection could be made, or each attempt broke
                before an ACK arrived (after ``retries`` retries).
        """
        payload, control_id = _prepare(message)
        attempt = 0
        while True:
            try:
                ack = await self._send_once(payload, control_id)
                break
            except ConnectionClosedError as exc:
                if attempt >= self.retries or self._closed:
                    raise
                delay = min(self.max_backoff, self.backoff * 2**attempt)
                attempt += 1
                logger.warning(
                    "MLLP %s:%d: %s; retry %d/%d in %.2f s",
                    *(self.host, self.port, exc, attempt, self.retries, delay),
                )
                await asyncio.sleep(delay)
        code = ack["MSA-1"]
        if self.raise_on_error and code not in _POSITIVE:
            raise AckError(f"{code} for {control_id!r}: {_reason(ack)}", ack=ack, code=code)
        return ack

    async def _send_once(self, payload: bytes, control_id: str) -> Message:
        if self._closed:
            raise ConnectionClosedError("the client is closed")
        slot = self._pick()
        slot.users += 1
        try:
            connection = await self._connect(slot)
            return await connection.request(payload, control_id, ack_timeout=self.timeout)
        finally:
            slot.users -= 1

    def _pick(self) -> _Slot:
        """The least busy slot, preferring one already connected."""
        return min(
            self._slots,
            key=lambda slot: (slot.users, slot.connection is None or slot.connection.closed),
        )

    async def _connect(self, slot: _Slot) -> MLLPConnection:
        async with slot.lock:
            if slot.connection is not None and not slot.connection.closed:
                return slot.connection
            if slot.connection is not None:
                await slot.connection.close()
                slot.connection = None
            try:
                async with asyncio.timeout(self.connect_timeout):
                    slot.connection = await open_connection(
                        self.host,
                        self.port,
                        ssl=self.ssl,
                        server_hostname=self.server_hostname,
                        max_message_size=self.max_message_size,
                    )
            except (OSError, TimeoutError) as exc:
                reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
                raise ConnectionClosedError(
                    f"cannot connect to {self.host}:{self.port}: {reason}"
                ) from exc
            return slot.connection

    async def close(self) -> None:
        """Close every pooled connection; sends still waiting fail."""
        self._closed = True
        for slot in self._slots:
            if slot.connection is not None:
                connection, slot.connection = slot.connection, None
                with contextlib.suppress(Exception):
                    await connection.close()

    async def __aenter__(self) -> MLLPClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _prepare(message: Message | bytes | str) -> tuple[bytes, str]:
    """The bytes to send and the control id the ACK must echo."""
    if isinstance(message, str):
        message = parse(message)
    if isinstance(message, Message):
        payload, control_id = message.encode(), message.control_id
    else:
        payload, control_id = bytes(message), peek_control_id(message) or ""
    if not control_id:
        raise ParseError("no control id to match the ACK with", location="MSH-10")
    return payload, control_id


def _reason(ack: Message) -> str:
    for path in ("ERR-8", "MSA-3", "ERR-3.2", "ERR-1.4.2"):
        text = ack.get(path)
        if text:
            return text
    return "no reason given"
