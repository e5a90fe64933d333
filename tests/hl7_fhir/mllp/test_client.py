"""The MLLP client: ACK matching, pipelining, pooling, reconnects, large messages."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from hl7_fhir import v2
from hl7_fhir.errors import (
    AckError,
    AckMismatchError,
    AckTimeoutError,
    ConnectionClosedError,
    ParseError,
)
from hl7_fhir.mllp import ConnectionInfo, FrameDecoder, MLLPClient, MLLPServer, frame

from .conftest import radiology, with_control_id

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(handler: RawHandler) -> AsyncIterator[int]:
    """A hand-written MLLP peer, to misbehave in ways our server never would."""
    tasks: list[asyncio.Task[None]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await handler(reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
        for task in tasks:
            await asyncio.gather(task, return_exceptions=True)


async def read_frames(reader: asyncio.StreamReader, count: int) -> list[bytes]:
    decoder = FrameDecoder()
    frames: list[bytes] = []
    while len(frames) < count:
        data = await reader.read(65536)
        if not data:
            break
        frames += decoder.feed(data)
    return frames


async def accept_all(message: bytes, info: ConnectionInfo) -> None:
    return None


async def test_send_returns_the_parsed_ack(order: bytes) -> None:
    async with (
        MLLPServer(accept_all, port=0) as server,
        MLLPClient("127.0.0.1", server.port) as client,
    ):
        ack = await client.send(order)
    assert isinstance(ack, v2.Message)
    assert (ack["MSA-1"], ack["MSA-2"]) == ("AA", "MSG00001")


async def test_send_accepts_messages_and_text(order: bytes) -> None:
    received: list[bytes] = []

    async def handler(message: bytes, info: ConnectionInfo) -> None:
        received.append(message)

    utf8 = radiology("oru_r01_v251_zsegment_utf8.hl7")
    async with (
        MLLPServer(handler, port=0) as server,
        MLLPClient("127.0.0.1", server.port) as client,
    ):
        assert (await client.send(v2.parse(order)))["MSA-2"] == "MSG00001"
        assert (await client.send(utf8.decode("utf-8")))["MSA-2"] == "NS-0099"
    assert "Chalmérs".encode() in received[1]


async def test_a_message_without_control_id_is_refused_before_sending() -> None:
    async with MLLPClient("127.0.0.1", 9) as client:
        with pytest.raises(ParseError):
            await client.send(b"MSH|^~\\&|A|B|C|D|20250101||ADT^A01||P|2.5\r")


async def test_negative_acks_are_returned_or_raised(order: bytes) -> None:
    async def reject(message: bytes, info: ConnectionInfo) -> v2.Message:
        return v2.build_ack(message, "AR", errors=[v2.ErrorDetail("200", "no ORM here")])

    async with MLLPServer(reject, port=0) as server:
        async with MLLPClient("127.0.0.1", server.port) as client:
            assert (await client.send(order))["MSA-1"] == "AR"
        async with MLLPClient("127.0.0.1", server.port, raise_on_error=True) as client:
            with pytest.raises(AckError) as caught:
                await client.send(order)
    assert caught.value.code == "AR"
    assert "no ORM here" in str(caught.value)
    assert isinstance(caught.value.ack, v2.Message)


async def test_concurrent_sends_pipeline_on_one_connection(order: bytes) -> None:
    connections: set[int] = set()

    async def handler(message: bytes, info: ConnectionInfo) -> None:
        connections.add(info.connection_id)

    ids = [f"P{i}" for i in range(20)]
    async with (
        MLLPServer(handler, port=0) as server,
        MLLPClient("127.0.0.1", server.port) as client,
    ):
        acks = await asyncio.gather(*(client.send(with_control_id(order, i)) for i in ids))
    assert [ack["MSA-2"] for ack in acks] == ids
    assert len(connections) == 1


async def test_acks_out_of_order_are_matched_by_control_id(order: bytes) -> None:
    async def reversed_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = await read_frames(reader, 3)
        for message in reversed(frames):
            writer.write(frame(v2.build_ack(message).encode()))
        await writer.drain()
        await reader.read()

    async with raw_server(reversed_answers) as port, MLLPClient("127.0.0.1", port) as client:
        acks = await asyncio.gather(
            *(client.send(with_control_id(order, f"R{i}")) for i in range(3))
        )
    assert [ack["MSA-2"] for ack in acks] == ["R0", "R1", "R2"]


async def test_an_ack_for_another_message_is_a_mismatch(order: bytes) -> None:
    async def wrong_id(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_frames(reader, 1)
        writer.write(frame(v2.build_ack(with_control_id(order, "SOMEONE-ELSE")).encode()))
        await writer.drain()
        await reader.read()

    async with raw_server(wrong_id) as port, MLLPClient("127.0.0.1", port) as client:
        with pytest.raises(AckMismatchError) as caught:
            await client.send(order)
    assert isinstance(caught.value.ack, v2.Message)
    assert caught.value.ack["MSA-2"] == "SOMEONE-ELSE"


async def test_no_ack_in_time_raises_ack_timeout(order: bytes) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with raw_server(silent) as port, MLLPClient("127.0.0.1", port, timeout=0.1) as client:
        with pytest.raises(AckTimeoutError):
            await client.send(order)


async def test_a_late_ack_does_not_confuse_the_next_send(order: bytes) -> None:
    first_seen = asyncio.Event()
    answer_late = asyncio.Event()

    async def late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()
        frames: list[bytes] = []
        while len(frames) < 2:
            frames += decoder.feed(await reader.read(65536))
            first_seen.set()
            if len(frames) == 1:
                await answer_late.wait()
        for message in frames:
            writer.write(frame(v2.build_ack(message).encode()))
        await writer.drain()
        await reader.read()

    async with raw_server(late) as port, MLLPClient("127.0.0.1", port, timeout=0.1) as client:
        with pytest.raises(AckTimeoutError):
            await client.send(with_control_id(order, "SLOW"))
        answer_late.set()
        client.timeout = 30
        ack = await client.send(with_control_id(order, "NEXT"))
    assert ack["MSA-2"] == "NEXT"


async def test_an_unreadable_answer_is_an_ack_error(order: bytes) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_frames(reader, 1)
        writer.write(frame(b"this is not HL7"))
        await writer.drain()
        await reader.read()

    async with raw_server(garbage) as port, MLLPClient("127.0.0.1", port) as client:
        with pytest.raises(AckError):
            await client.send(order)


async def test_pool_spreads_concurrent_senders_over_connections(order: bytes) -> None:
    pool_size = 4
    inside = 0
    all_inside = asyncio.Event()
    connections: set[int] = set()

    async def handler(message: bytes, info: ConnectionInfo) -> None:
        # Only returns once pool_size messages are being handled at the same time,
        # which one connection (answered in order) could never do.
        nonlocal inside
        connections.add(info.connection_id)
        inside += 1
        if inside == pool_size:
            all_inside.set()
        await all_inside.wait()

    async with (
        MLLPServer(handler, port=0) as server,
        MLLPClient("127.0.0.1", server.port, pool_size=pool_size) as client,
    ):
        ids = [f"C{i}" for i in range(pool_size)]
        acks = await asyncio.gather(*(client.send(with_control_id(order, i)) for i in ids))
        more = await asyncio.gather(
            *(client.send(with_control_id(order, f"M{i}")) for i in range(12))
        )
    assert [ack["MSA-2"] for ack in acks] == ids
    assert [ack["MSA-2"] for ack in more] == [f"M{i}" for i in range(12)]
    assert len(connections) == pool_size  # connections are reused, not reopened


async def test_reconnects_after_the_server_restarts(order: bytes) -> None:
    server = await MLLPServer(accept_all, port=0).__aenter__()
    port = server.port
    async with MLLPClient("127.0.0.1", port, backoff=0.01) as client:
        assert (await client.send(with_control_id(order, "before")))["MSA-1"] == "AA"
        await server.close()
        async with MLLPServer(accept_all, port=port):
            ack = await client.send(with_control_id(order, "after"))
    assert (ack["MSA-1"], ack["MSA-2"]) == ("AA", "after")


async def test_a_connection_dropped_before_the_ack_is_retried(order: bytes) -> None:
    attempts = 0

    async def drop_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        frames = await read_frames(reader, 1)
        if attempts > 1:
            writer.write(frame(v2.build_ack(frames[0]).encode()))
            await writer.drain()
            await reader.read()

    async with (
        raw_server(drop_first) as port,
        MLLPClient("127.0.0.1", port, backoff=0.01) as client,
    ):
        ack = await client.send(order)
    assert ack["MSA-1"] == "AA"
    assert attempts == 2


async def test_gives_up_after_the_retries(order: bytes) -> None:
    server = await MLLPServer(accept_all, port=0).__aenter__()
    port = server.port
    await server.close()  # nothing listens there any more
    async with MLLPClient("127.0.0.1", port, retries=2, backoff=0.01) as client:
        with pytest.raises(ConnectionClosedError) as caught:
            await client.send(order)
    assert isinstance(caught.value.__cause__, OSError)


async def test_send_after_close_fails(order: bytes) -> None:
    client = MLLPClient("127.0.0.1", 9)
    await client.close()
    with pytest.raises(ConnectionClosedError):
        await client.send(order)


async def test_five_megabyte_messages_both_ways(report: bytes) -> None:
    big_report = report + b"NTE|1||" + b"A" * (5 * 1024 * 1024) + b"\r"
    received: list[int] = []

    async def echo_big(message: bytes, info: ConnectionInfo) -> bytes:
        received.append(len(message))
        ack = v2.build_ack(message).encode()
        return ack + b"NTE|1||" + b"B" * (5 * 1024 * 1024) + b"\r"

    async with (
        MLLPServer(echo_big, port=0) as server,
        MLLPClient("127.0.0.1", server.port) as client,
    ):
        ack = await client.send(big_report)
        again = await client.send(with_control_id(big_report, "again"))
    assert received == [len(big_report), len(big_report) - len("MSG00002") + len("again")]
    assert (ack["MSA-1"], ack["MSA-2"]) == ("AA", "MSG00002")
    assert len(ack["NTE-3"]) == 5 * 1024 * 1024
    assert again["MSA-2"] == "again"


async def test_pool_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MLLPClient("127.0.0.1", 9, pool_size=0)
