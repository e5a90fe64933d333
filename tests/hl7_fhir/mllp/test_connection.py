"""MLLPConnection on its own: framed reads, limits, end of stream, request matching."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from hl7_fhir import v2
from hl7_fhir.errors import ConnectionClosedError, MessageTooLargeError
from hl7_fhir.mllp import ConnectionInfo, MLLPConnection, MLLPServer, frame, open_connection

from .conftest import with_control_id


@contextlib.asynccontextmanager
async def sender(data: bytes) -> AsyncIterator[int]:
    """A listener that writes ``data`` to whoever connects, then closes."""
    done: list[asyncio.Task[None]] = []

    async def write(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(
        lambda r, w: done.append(asyncio.create_task(write(r, w))), "127.0.0.1", 0
    )
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
        await asyncio.gather(*done)


@contextlib.asynccontextmanager
async def connected(
    port: int, max_message_size: int = 10 * 1024 * 1024
) -> AsyncIterator[MLLPConnection]:
    connection = await open_connection("127.0.0.1", port, max_message_size=max_message_size)
    try:
        yield connection
    finally:
        await connection.close()


async def test_frames_then_end_of_stream(order: bytes) -> None:
    async with sender(frame(order) + frame(b"MSH|two")) as port, connected(port) as connection:
        assert await connection.read_frame() == order
        assert await connection.read_frame() == b"MSH|two"
        with pytest.raises(ConnectionClosedError):
            await connection.read_frame()
        assert connection.closed


async def test_end_of_stream_inside_a_frame_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with sender(b"\x0bMSH|cut short") as port, connected(port) as connection:
        with pytest.raises(ConnectionClosedError):
            await connection.read_frame()
    assert "0b 4d 53 48" in caplog.text


async def test_reading_goes_on_after_an_oversized_frame(order: bytes) -> None:
    stream = frame(order + b"x" * 5000) + frame(b"MSH|after")
    async with (
        sender(stream) as port,
        connected(port, max_message_size=1000) as connection,
    ):
        with pytest.raises(MessageTooLargeError) as caught:
            await connection.read_frame()
        assert caught.value.limit == 1000
        assert connection.last_overflow is not None
        assert connection.last_overflow.head == order.split(b"\r")[0]
        assert await connection.read_frame() == b"MSH|after"


async def test_idle_timeout_on_read() -> None:
    async def quiet(message: bytes, info: ConnectionInfo) -> None:
        return None

    async with MLLPServer(quiet, port=0) as server, connected(server.port) as connection:
        with pytest.raises(TimeoutError):
            await connection.read_frame(idle_timeout=0.05)


async def test_writing_to_a_closed_connection_fails(order: bytes) -> None:
    async with sender(b"") as port:
        connection = await open_connection("127.0.0.1", port)
        await connection.close()
        await connection.close()  # twice is fine
        with pytest.raises(ConnectionClosedError):
            await connection.write_frame(order)


async def test_requests_with_the_same_control_id_take_turns(order: bytes) -> None:
    inside = 0
    most_inside = 0

    async def handler(message: bytes, info: ConnectionInfo) -> None:
        nonlocal inside, most_inside
        inside += 1
        most_inside = max(most_inside, inside)
        await asyncio.sleep(0)
        inside -= 1

    async with MLLPServer(handler, port=0) as server, connected(server.port) as connection:
        acks = await asyncio.gather(
            *(connection.request(order, "MSG00001", ack_timeout=None) for _ in range(3)),
            connection.request(with_control_id(order, "other"), "other", ack_timeout=None),
        )
        assert connection.in_flight == 0
    assert [ack["MSA-2"] for ack in acks] == ["MSG00001"] * 3 + ["other"]
    assert all(isinstance(ack, v2.Message) for ack in acks)


async def test_close_fails_requests_still_waiting(order: bytes) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    connection = await open_connection("127.0.0.1", port)
    waiting = asyncio.create_task(connection.request(order, "MSG00001", ack_timeout=None))
    await asyncio.sleep(0)  # the request registers itself, then waits on the write
    assert connection.in_flight == 1
    await connection.close()
    with pytest.raises(ConnectionClosedError):
        await waiting
    server.close()
    await server.wait_closed()
