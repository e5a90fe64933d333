"""The MLLP server over real sockets on 127.0.0.1, poked by a raw peer and by our client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest
from hl7_fhir import v2
from hl7_fhir.errors import ParseError
from hl7_fhir.mllp import ConnectionInfo, MLLPClient, MLLPServer, ServerSettings, start_server

from .conftest import RawPeer, radiology, with_control_id

Connect = Callable[[int], Awaitable[RawPeer]]


async def accept_all(message: bytes, info: ConnectionInfo) -> None:
    return None


async def test_none_from_the_handler_answers_aa(connect: Connect, order: bytes) -> None:
    seen: list[tuple[bytes, ConnectionInfo]] = []

    async def handler(message: bytes, info: ConnectionInfo) -> None:
        seen.append((message, info))

    async with MLLPServer(handler, port=0) as server:
        peer = await connect(server.port)
        await peer.send(order)
        ack = v2.parse(await peer.receive())

    assert (ack["MSA-1"], ack["MSA-2"]) == ("AA", "MSG00001")
    assert ack.message_type == "ACK"
    message, info = seen[0]
    assert message == order  # bytes as received, not decoded
    assert info.peer_host == "127.0.0.1"
    assert info.server_port == server.port
    assert info.tls is False
    assert info.peer_cert_subject is None


async def test_the_handler_answer_is_sent_as_is(connect: Connect, order: bytes) -> None:
    async def handler(message: bytes, info: ConnectionInfo) -> bytes | v2.Message:
        if b"bytes" in message:
            return b"MSH|^~\\&|CUSTOM|||||||ACK|1|P|2.5\rMSA|AA|bytes\r"
        return v2.build_ack(message, "AR", text="not today")

    async with MLLPServer(handler, port=0) as server:
        peer = await connect(server.port)
        await peer.send(with_control_id(order, "bytes"))
        assert await peer.receive() == b"MSH|^~\\&|CUSTOM|||||||ACK|1|P|2.5\rMSA|AA|bytes\r"
        await peer.send(order)
        ack = v2.parse(await peer.receive())
    assert ack["MSA-1"] == "AR"


async def test_a_failing_handler_gets_ae_and_the_listener_carries_on(
    connect: Connect, order: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(message: bytes, info: ConnectionInfo) -> None:
        if b"FAIL" in message:
            raise RuntimeError("database is down")

    async with MLLPServer(handler, port=0) as server:
        peer = await connect(server.port)
        await peer.send(with_control_id(order, "FAIL1"))
        failed = v2.parse(await peer.receive())
        await peer.send(with_control_id(order, "OK2"))
        same_connection = v2.parse(await peer.receive())
        other = await connect(server.port)
        await other.send(with_control_id(order, "OK3"))
        new_connection = v2.parse(await other.receive())

    assert (failed["MSA-1"], failed["MSA-2"]) == ("AE", "FAIL1")
    assert failed["ERR-3.1"] == "207"
    assert "database is down" not in failed.encode().decode()  # details stay in the log
    assert (same_connection["MSA-1"], same_connection["MSA-2"]) == ("AA", "OK2")
    assert (new_connection["MSA-1"], new_connection["MSA-2"]) == ("AA", "OK3")
    assert "database is down" in caplog.text


async def test_a_parse_error_is_explained_to_the_sender(connect: Connect, order: bytes) -> None:
    async def handler(message: bytes, info: ConnectionInfo) -> None:
        v2.parse(b"PID|not a message")

    async with MLLPServer(handler, port=0) as server:
        peer = await connect(server.port)
        await peer.send(order)
        ack = v2.parse(await peer.receive())
    assert ack["MSA-1"] == "AE"
    assert ack["ERR-3.1"] == "207"
    assert ack["ERR-8"]


async def test_enhanced_mode_failures_answer_ce(connect: Connect) -> None:
    enhanced = radiology("oru_r01_v251_zsegment_utf8.hl7")  # MSH-15/16 = AL/NE

    async def handler(message: bytes, info: ConnectionInfo) -> None:
        raise ParseError("cannot map", location="OBX-5")

    async with MLLPServer(handler, port=0) as server:
        peer = await connect(server.port)
        await peer.send(enhanced)
        ack = v2.parse(await peer.receive())
    assert (ack["MSA-1"], ack["MSA-2"]) == ("CE", "NS-0099")


async def test_a_handler_returning_nonsense_still_answers(connect: Connect, order: bytes) -> None:
    async def handler(message: bytes, info: ConnectionInfo) -> object:
        return 42

    async with MLLPServer(handler, port=0) as server:  # type: ignore[arg-type]
        peer = await connect(server.port)
        await peer.send(order)
        assert v2.parse(await peer.receive())["MSA-1"] == "AE"


async def test_garbage_frames_still_get_an_answer(connect: Connect) -> None:
    async with MLLPServer(accept_all, port=0) as server:
        peer = await connect(server.port)
        await peer.send(b"\x00\xffnot hl7 at all")
        ack = v2.parse(await peer.receive())
    assert ack["MSA-1"] == "AA"
    assert ack["MSA-2"] == ""


async def test_pipelined_frames_and_junk_in_one_write(
    connect: Connect, order: bytes, report: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async with MLLPServer(accept_all, port=0) as server:
        peer = await connect(server.port)
        await peer.write(b"junk!" + b"\x0b" + order + b"\x1c\r\n\x0b" + report + b"\x1c\r")
        first, second = v2.parse(await peer.receive()), v2.parse(await peer.receive())
    assert [first["MSA-2"], second["MSA-2"]] == ["MSG00001", "MSG00002"]
    assert "6a 75 6e 6b 21" in caplog.text  # hex preview of b"junk!"


async def test_a_message_written_one_byte_at_a_time(connect: Connect, order: bytes) -> None:
    async with MLLPServer(accept_all, port=0) as server:
        peer = await connect(server.port)
        for byte in b"\x0b" + order + b"\x1c\r":
            await peer.write(bytes([byte]))
        assert v2.parse(await peer.receive())["MSA-2"] == "MSG00001"


async def test_oversized_message_gets_ar_then_the_connection_closes(
    connect: Connect, order: bytes
) -> None:
    calls: list[bytes] = []

    async def handler(message: bytes, info: ConnectionInfo) -> None:
        calls.append(message)

    big = order + b"NTE|1||" + b"x" * 200_000 + b"\r"
    async with MLLPServer(handler, port=0, max_message_size=64 * 1024) as server:
        peer = await connect(server.port)
        await peer.send(big)
        ack = v2.parse(await peer.receive())
        assert await peer.at_eof()
        # The listener itself is fine.
        other = await connect(server.port)
        await other.send(order)
        assert v2.parse(await other.receive())["MSA-1"] == "AA"
    assert (ack["MSA-1"], ack["MSA-2"]) == ("AR", "MSG00001")
    assert "65536" in ack["ERR-8"]
    assert calls == [order]


async def test_oversized_enhanced_mode_message_gets_cr(connect: Connect) -> None:
    enhanced = radiology("oru_r01_v251_zsegment_utf8.hl7")
    async with MLLPServer(accept_all, port=0, max_message_size=100) as server:
        peer = await connect(server.port)
        await peer.send(enhanced)
        ack = v2.parse(await peer.receive())
    assert (ack["MSA-1"], ack["MSA-2"]) == ("CR", "NS-0099")


async def test_idle_connections_are_closed(connect: Connect, order: bytes) -> None:
    async with MLLPServer(accept_all, port=0, idle_timeout=0.2) as server:
        peer = await connect(server.port)
        await peer.send(order)
        assert v2.parse(await peer.receive())["MSA-1"] == "AA"
        assert await peer.at_eof()


async def test_connections_beyond_the_limit_are_refused(connect: Connect, order: bytes) -> None:
    async with MLLPServer(accept_all, port=0, max_connections=1) as server:
        first = await connect(server.port)
        await first.send(order)
        assert v2.parse(await first.receive())["MSA-1"] == "AA"
        second = await connect(server.port)
        assert await second.at_eof()
        await first.send(order)
        assert v2.parse(await first.receive())["MSA-1"] == "AA"
        assert server.connections == 1
        await first.close()
        third = await connect(server.port)
        await third.send(order)
        assert v2.parse(await third.receive())["MSA-1"] == "AA"


async def test_graceful_shutdown_finishes_messages_in_flight(
    connect: Connect, order: bytes
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow(message: bytes, info: ConnectionInfo) -> None:
        started.set()
        await release.wait()

    server = await start_server(slow, port=0)
    idle = await connect(server.port)
    busy = await connect(server.port)
    await busy.send(order)
    await started.wait()

    closing = asyncio.create_task(server.close())
    await asyncio.sleep(0)  # close() stops the listener before its first await
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", server.port)
    assert await idle.at_eof()
    assert not closing.done()

    release.set()
    ack = v2.parse(await busy.receive())
    assert ack["MSA-1"] == "AA"
    assert await busy.at_eof()
    await closing


async def test_shutdown_timeout_cancels_stuck_handlers(connect: Connect, order: bytes) -> None:
    started = asyncio.Event()

    async def stuck(message: bytes, info: ConnectionInfo) -> None:
        started.set()
        await asyncio.Event().wait()

    server = await start_server(stuck, port=0, shutdown_timeout=0.1)
    peer = await connect(server.port)
    await peer.send(order)
    await started.wait()
    await server.close()
    assert await peer.at_eof()


async def test_serve_forever_returns_after_close(order: bytes) -> None:
    server = MLLPServer(accept_all, port=0)
    await server.start()  # serve_forever() would bind too; this way we know the port
    serving = asyncio.create_task(server.serve_forever())
    async with MLLPClient("127.0.0.1", server.port) as client:
        assert (await client.send(order))["MSA-1"] == "AA"
    await server.close()
    await serving


async def test_settings_are_frozen_and_visible() -> None:
    server = MLLPServer(accept_all, port=0, idle_timeout=5, max_connections=3)
    assert server.settings == ServerSettings(idle_timeout=5, max_connections=3)
    with pytest.raises(AttributeError):
        server.settings.idle_timeout = 1  # type: ignore[misc]


async def test_connection_ids_are_distinct(connect: Connect, order: bytes) -> None:
    ids: list[int] = []

    async def handler(message: bytes, info: ConnectionInfo) -> None:
        ids.append(info.connection_id)

    async with MLLPServer(handler, port=0) as server:
        for _ in range(3):
            peer = await connect(server.port)
            await peer.send(order)
            await peer.receive()
            await peer.close()
    assert len(set(ids)) == 3


async def test_handler_failure_is_logged(
    connect: Connect, order: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(message: bytes, info: ConnectionInfo) -> None:
        raise KeyError("boom")

    with caplog.at_level(logging.ERROR, logger="hl7_fhir.mllp"):
        async with MLLPServer(handler, port=0) as server:
            peer = await connect(server.port)
            await peer.send(order)
            await peer.receive()
    assert any(record.exc_info for record in caplog.records)


async def test_cancelling_serve_forever_closes_the_server(order: bytes) -> None:
    server = MLLPServer(accept_all, port=0)
    await server.start()
    serving = asyncio.create_task(server.serve_forever())
    await asyncio.sleep(0)
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", server.port)
