"""MLLP round trips per second: our server (and client) next to a bare asyncio server.

Every case runs the server in its own process and the load in this one, for the same
number of seconds, on 127.0.0.1; cases are interleaved over a few rounds and the best
run of each is kept, which tames a noisy machine:

- ``echo`` (the baseline the ratios use): ``asyncio.start_server`` that reads up to
  ``<FS><CR>`` and answers an ACK echoing the inbound MSH-10, the least a *correct*
  MLLP listener does;
- ``bare``: the same, writing one fixed pre-framed ACK without looking at the message
  (the socket floor, for reference);
- ``server, fixed ACK``: :class:`MLLPServer` whose handler returns pre-built ACK bytes,
  so the difference to ``bare`` is the framing/connection/server layer alone;
- ``server, build_ack``: :class:`MLLPServer` with a handler returning ``None``, so each
  answer is a real ACK built from the inbound message (the default path);
- ``client -> server, build_ack``: :class:`MLLPClient` as the load (parses and matches
  every ACK) against the default server.

The first three share one load generator: raw asyncio streams, one message in flight
per connection. Run: ``uv run python bench/mllp.py [--duration 2] [--rounds 3] [--connections 1,8]``.
Numbers depend on the machine; compare the ratios, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
import time
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import TypeVar

from hl7_fhir import v2
from hl7_fhir.mllp import ConnectionInfo, MLLPClient, MLLPServer, frame

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
DEFAULT_MESSAGE = CORPUS / "radiology" / "orm_o01_v25_new_order.hl7"
TRAILER = b"\x1c\r"
T = TypeVar("T")


def load_message(path: Path) -> bytes:
    """The message with CR segment terminators, as a sender puts it on the wire."""
    return path.read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r")


def with_control_id(message: bytes, control_id: str) -> bytes:
    header, sep, rest = message.partition(b"\r")
    fields = header.split(b"|")
    fields[9] = control_id.encode()
    return b"|".join(fields) + sep + rest


# -- servers (child process) ---------------------------------------------------------


async def _serve(kind: str, message: bytes, ports: Connection, stop: Event) -> None:
    fixed_ack = v2.build_ack(message).encode()
    if kind in ("bare", "echo"):
        framed_ack = frame(fixed_ack)

        async def bare(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    await reader.readuntil(TRAILER)
                    writer.write(framed_ack)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            # The least a correct listener does: echo the inbound MSH-10 in an ACK.
            try:
                while True:
                    data = await reader.readuntil(TRAILER)
                    header = data[1 : data.find(b"\r")].split(b"|")
                    writer.write(
                        b"\x0bMSH|^~\\&|" + header[4] + b"|" + header[5] + b"|" + header[2]
                        + b"|" + header[3] + b"|" + header[6] + b"||ACK|" + header[9]
                        + b"|P|2.5\rMSA|AA|" + header[9] + b"\r\x1c\r"
                    )  # fmt: skip
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(echo if kind == "echo" else bare, "127.0.0.1", 0)
        ports.send(server.sockets[0].getsockname()[1])
        await asyncio.to_thread(stop.wait)
        server.close()
        return

    async def fixed(payload: bytes, info: ConnectionInfo) -> bytes:
        return fixed_ack

    async def default(payload: bytes, info: ConnectionInfo) -> None:
        return None

    async with MLLPServer(fixed if kind == "fixed" else default, port=0) as ours:
        ports.send(ours.port)
        await asyncio.to_thread(stop.wait)


def _run(coroutine: Coroutine[None, None, T], use_uvloop: bool) -> T:
    if use_uvloop:
        import uvloop

        return uvloop.run(coroutine)
    return asyncio.run(coroutine)


def _server_process(
    kind: str, message: bytes, ports: Connection, stop: Event, use_uvloop: bool
) -> None:
    _run(_serve(kind, message, ports, stop), use_uvloop)


# -- load ----------------------------------------------------------------------------


async def _raw_worker(port: int, payload: bytes, deadline: float) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framed = frame(payload)
    done = 0
    try:
        while time.perf_counter() < deadline:
            writer.write(framed)
            await writer.drain()
            await reader.readuntil(TRAILER)
            done += 1
    finally:
        writer.close()
        await writer.wait_closed()
    return done


async def raw_load(port: int, message: bytes, connections: int, seconds: float) -> float:
    await _raw_worker(port, message, time.perf_counter() + 0.3)  # warm up
    started = time.perf_counter()
    counts = await asyncio.gather(
        *(_raw_worker(port, message, started + seconds) for _ in range(connections))
    )
    return sum(counts) / (time.perf_counter() - started)


async def client_load(port: int, message: bytes, connections: int, seconds: float) -> float:
    async with MLLPClient("127.0.0.1", port, pool_size=connections) as client:

        async def worker(index: int, deadline: float) -> int:
            payload = with_control_id(message, f"BENCH{index}")
            done = 0
            while time.perf_counter() < deadline:
                ack = await client.send(payload)
                assert ack["MSA-1"] == "AA"
                done += 1
            return done

        await worker(0, time.perf_counter() + 0.3)  # warm up
        started = time.perf_counter()
        counts = await asyncio.gather(*(worker(i, started + seconds) for i in range(connections)))
        return sum(counts) / (time.perf_counter() - started)


Load = Callable[[int, bytes, int, float], Coroutine[None, None, float]]


def run_case(
    kind: str, load: Load, message: bytes, connections: int, seconds: float, use_uvloop: bool
) -> float:
    context = mp.get_context("spawn")
    receiving, sending = context.Pipe(duplex=False)
    stop = context.Event()
    process = context.Process(
        target=_server_process, args=(kind, message, sending, stop, use_uvloop)
    )
    process.start()
    try:
        port = receiving.recv()
        return _run(load(port, message, connections, seconds), use_uvloop)
    finally:
        stop.set()
        process.join(10)
        if process.is_alive():
            process.terminate()
            process.join()


CASES: list[tuple[str, str, Load]] = [
    ("bare asyncio echo-ACK server", "echo", raw_load),
    ("bare asyncio, fixed bytes", "bare", raw_load),
    ("MLLPServer, fixed ACK", "fixed", raw_load),
    ("MLLPServer, build_ack", "default", raw_load),
    ("MLLPClient -> MLLPServer, build_ack", "default", client_load),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs per case, best kept")
    parser.add_argument("--connections", default="1,8", help="comma-separated counts")
    parser.add_argument("--message", type=Path, default=DEFAULT_MESSAGE, help="HL7 file to send")
    parser.add_argument("--uvloop", action="store_true", help="run every side on uvloop")
    args = parser.parse_args(argv)
    message = with_control_id(load_message(args.message), "BENCH0")
    counts = [int(c) for c in args.connections.split(",")]

    print(
        f"python {sys.version.split()[0]}, {len(message)}-byte message, "
        f"best of {args.rounds} x {args.duration:g} s, cases interleaved, "
        f"{'uvloop' if args.uvloop else 'asyncio'} event loop"
    )
    print(f"{'case':<38}{'conns':>6}{'round trips/s':>16}{'vs bare':>10}")
    for connections in counts:
        best = [0.0] * len(CASES)
        for _ in range(args.rounds):  # interleaved, so a noisy moment hits every case
            for index, (_, kind, load) in enumerate(CASES):
                rate = run_case(kind, load, message, connections, args.duration, args.uvloop)
                best[index] = max(best[index], rate)
        for (label, _, _), rate in zip(CASES, best, strict=True):
            print(f"{label:<38}{connections:>6}{rate:>16,.0f}{rate / best[0]:>10.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
