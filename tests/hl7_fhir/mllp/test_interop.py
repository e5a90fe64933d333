"""Independent peers: python-hl7's MLLP client, server and ``mllp_send`` against ours."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import hl7
import hl7.client
import hl7.mllp
import pytest
from hl7_fhir import v2
from hl7_fhir.mllp import ConnectionInfo, MLLPClient, MLLPServer

from .conftest import RADIOLOGY, radiology, with_control_id

MESSAGES = ["orm_o01_v25_new_order.hl7", "oru_r01_v25_rtf_report.hl7", "siu_s12_v25_book.hl7"]


def text(message: bytes) -> str:
    return message.decode("ascii")


async def recording_server() -> tuple[MLLPServer, list[bytes]]:
    received: list[bytes] = []

    async def handler(message: bytes, info: ConnectionInfo) -> None:
        received.append(message)

    server = MLLPServer(handler, port=0)
    await server.start()
    return server, received


async def test_python_hl7_asyncio_client_against_our_server() -> None:
    server, received = await recording_server()
    async with server:
        reader, writer = await hl7.mllp.open_hl7_connection("127.0.0.1", server.port)
        try:
            acks = []
            for name in MESSAGES:
                writer.writemessage(hl7.parse(text(radiology(name))))
                await writer.drain()
                acks.append(await reader.readmessage())
        finally:
            writer.close()
            await writer.wait_closed()
    assert [str(ack.segment("MSA")[1]) for ack in acks] == ["AA"] * len(MESSAGES)
    assert [str(ack.segment("MSA")[2]) for ack in acks] == [
        v2.parse(radiology(name)).control_id for name in MESSAGES
    ]
    assert received == [radiology(name) for name in MESSAGES]


async def test_python_hl7_blocking_client_against_our_server(order: bytes) -> None:
    server, received = await recording_server()

    def send_blocking(port: int) -> bytes:
        with hl7.client.MLLPClient("127.0.0.1", port) as client:
            answer: bytes = client.send_message(order)
            return answer

    async with server:
        answer = await asyncio.to_thread(send_blocking, server.port)
    ack = v2.parse(answer.strip(b"\x0b\x1c\r"))
    assert (ack["MSA-1"], ack["MSA-2"]) == ("AA", "MSG00001")
    assert received == [order]


async def test_mllp_send_console_script_against_our_server() -> None:
    script = Path(sys.executable).with_name("mllp_send")
    if not script.exists():
        pytest.skip("python-hl7's mllp_send script is not installed next to the interpreter")
    source = RADIOLOGY / "orm_o01_v25_lf_line_endings.hl7"  # --loose turns LF into CR
    server, received = await recording_server()
    async with server:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            "--loose",
            "--file",
            str(source),
            "--port",
            str(server.port),
            "127.0.0.1",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    ack = v2.parse(out.strip(b"\x0b\x1c\r\n"))
    assert (ack["MSA-1"], ack["MSA-2"]) == ("AA", "MSG00005")
    assert received == [radiology("orm_o01_v25_lf_line_endings.hl7").rstrip(b"\r")]


async def test_our_client_against_a_python_hl7_server(order: bytes, report: bytes) -> None:
    got: list[str] = []
    sessions: list[asyncio.Task[None]] = []

    async def answer(reader: hl7.mllp.HL7StreamReader, writer: hl7.mllp.HL7StreamWriter) -> None:
        sessions.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            while True:
                message = await reader.readmessage()
                got.append(str(message.segment("MSH")[10]))
                writer.writemessage(message.create_ack())
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await hl7.mllp.start_hl7_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with MLLPClient("127.0.0.1", port) as client:
            acks = [await client.send(order), await client.send(report)]
            acks += await asyncio.gather(
                *(client.send(with_control_id(order, f"PIPE{i}")) for i in range(5))
            )
    finally:
        server.close()
        await server.wait_closed()
        await asyncio.gather(*sessions, return_exceptions=True)
    assert [ack["MSA-1"] for ack in acks] == ["AA"] * 7
    assert [ack["MSA-2"] for ack in acks] == ["MSG00001", "MSG00002"] + [
        f"PIPE{i}" for i in range(5)
    ]
    assert got == [ack["MSA-2"] for ack in acks]
