"""Fixtures for the MLLP tests: corpus messages, raw peers, TLS material."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from hl7_fhir.mllp import FrameDecoder, frame

from tests.corpus import CORPUS

RADIOLOGY = CORPUS / "radiology"


def radiology(name: str) -> bytes:
    """A radiology corpus message with CR segment terminators, as a sender puts it on the wire."""
    data = (RADIOLOGY / name).read_bytes()
    return data.replace(b"\r\n", b"\r").replace(b"\n", b"\r")


@pytest.fixture
def order() -> bytes:
    return radiology("orm_o01_v25_new_order.hl7")


@pytest.fixture
def report() -> bytes:
    return radiology("oru_r01_v25_rtf_report.hl7")


def with_control_id(message: bytes, control_id: str) -> bytes:
    """``message`` with MSH-10 replaced."""
    header, sep, rest = message.partition(b"\r")
    fields = header.split(b"|")
    fields[9] = control_id.encode()
    return b"|".join(fields) + sep + rest


class RawPeer:
    """A bare asyncio socket that speaks MLLP by hand, to poke at the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder()
        self.frames: list[bytes] = []

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, payload: bytes) -> None:
        await self.write(frame(payload))

    async def receive(self) -> bytes:
        """The next frame; raises EOFError when the peer closes first."""
        while not self.frames:
            data = await self.reader.read(65536)
            if not data:
                raise EOFError
            self.frames.extend(self.decoder.feed(data))
        return self.frames.pop(0)

    async def at_eof(self) -> bool:
        """Wait until the peer closes; True if it did without sending another frame."""
        try:
            await self.receive()
        except (EOFError, ConnectionResetError):
            return True
        return False

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


@pytest.fixture
async def connect() -> AsyncIterator[Callable[[int], Awaitable[RawPeer]]]:
    """``await connect(port)`` opens a :class:`RawPeer`; all are closed at teardown."""
    peers: list[RawPeer] = []

    async def open_peer(port: int) -> RawPeer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        peer = RawPeer(reader, writer)
        peers.append(peer)
        return peer

    yield open_peer
    for peer in peers:
        await peer.close()
