"""``hl7fhir send`` and ``hl7fhir listen``: MLLP from the command line."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from hl7_fhir.errors import ConnectionClosedError, HL7FhirError
from hl7_fhir.mllp import ConnectionInfo, MLLPClient, MLLPServer
from hl7_fhir.v2 import Message, build_ack, parse, peek_control_id

__all__ = ["Outbound", "SendResult", "client_tls", "listen", "send_all", "server_tls"]

POSITIVE = frozenset({"AA", "CA"})
PROGRESS_ABOVE = 20


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message to send: its bytes exactly as read, and where it came from."""

    payload: bytes
    source: str


@dataclass(slots=True)
class SendResult:
    """ACK codes counted, messages that failed, messages never sent."""

    acknowledged: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    not_sent: int = 0

    @property
    def accepted(self) -> int:
        return sum(n for code, n in self.codes.items() if code in POSITIVE)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.not_sent == 0 and self.accepted == self.acknowledged

    def summary(self) -> str:
        counts = ", ".join(f"{n} {code}" for code, n in sorted(self.codes.items()))
        text = f"{self.acknowledged} acknowledged ({counts or 'none'})"
        if self.failed:
            text += f", {self.failed} failed"
        if self.not_sent:
            text += f", {self.not_sent} not sent"
        return text


def client_tls(ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext:
    """A client context verifying the server (``ca`` or the system store), with an
    optional client certificate for mutual TLS.

    Raises:
        OSError: a file cannot be read; ssl.SSLError (an OSError) if it is not PEM.
    """
    context = ssl.create_default_context(cafile=ca)
    if cert:
        context.load_cert_chain(cert, key)
    return context


def server_tls(cert: str, key: str | None, client_ca: str | None) -> ssl.SSLContext:
    """A server context; with ``client_ca`` clients must present a certificate it signed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    if client_ca:
        context.load_verify_locations(client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class _Progress:
    """A one-line bar on a terminal; silent elsewhere."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        self.enabled = total > PROGRESS_ABOVE and stream.isatty()

    def update(self, done: int, bad: int) -> None:
        if not self.enabled:
            return
        width = 30
        filled = width * done // self.total
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r[{bar}] {done}/{self.total} ({bad} not accepted)")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


async def send_all(
    messages: Sequence[Outbound],
    host: str,
    port: int,
    *,
    context: ssl.SSLContext | None,
    ack_timeout: float | None,
    out: TextIO,
    err: TextIO,
) -> SendResult:
    """Send ``messages`` one after the other on one connection and collect the ACK codes.

    With few messages each ACK is printed (``control id -> code``); with more than 20
    a progress bar goes to ``err`` when it is a terminal, and only the messages that
    were not accepted are listed. The summary line always ends the output.
    """
    result = SendResult()
    progress = _Progress(len(messages), err)
    verbose = len(messages) <= PROGRESS_ABOVE
    client = MLLPClient(
        host, port, ssl=context, timeout=ack_timeout, connect_timeout=ack_timeout, retries=1
    )
    async with client:
        for index, item in enumerate(messages, start=1):
            control_id = peek_control_id(item.payload) or "(no control id)"
            try:
                ack = await client.send(item.payload)
            except ConnectionClosedError as exc:
                # Nothing more will get through: stop rather than retry every message.
                result.failed += 1
                result.not_sent = len(messages) - index
                progress.finish()
                print(f"{control_id} -> not sent ({item.source}): {exc}", file=out)
                return result
            except HL7FhirError as exc:  # no MSH-10, ACK timeout or mismatch
                result.failed += 1
                print(f"{control_id} -> failed ({item.source}): {exc}", file=out)
                progress.update(index, index - result.accepted)
                continue
            result.acknowledged += 1
            code = ack["MSA-1"] or "?"
            result.codes[code] = result.codes.get(code, 0) + 1
            if verbose or code not in POSITIVE:
                reason = ack.get("MSA-3") or ack.get("ERR-8") or ack.get("ERR-3.2")
                suffix = f" ({reason})" if reason and code not in POSITIVE else ""
                print(f"{control_id} -> {code}{suffix}", file=out)
            progress.update(index, index - result.accepted)
    progress.finish()
    return result


def summary_line(message: bytes, info: ConnectionInfo) -> str:
    """``time peer type^trigger control-id N segments`` for one received message."""
    now = datetime.now().astimezone().isoformat(timespec="seconds")
    peer = f"{info.peer_host}:{info.peer_port}"
    try:
        parsed = parse(message)
    except HL7FhirError as exc:
        return f"{now} {peer} unparseable message ({exc})"
    kind = f"{parsed.message_type}^{parsed.trigger_event}".rstrip("^")
    return f"{now} {peer} {kind} {parsed.control_id or '-'} {len(parsed)} segments"


async def listen(
    host: str,
    port: int,
    *,
    context: ssl.SSLContext | None,
    validate: bool,
    out: TextIO,
    err: TextIO,
) -> None:
    """Answer every message AA (or AE with ERR segments when ``validate`` finds errors),
    printing one summary line per message, until SIGINT/SIGTERM.

    Raises:
        OSError: the address cannot be bound.
    """

    async def handler(message: bytes, info: ConnectionInfo) -> Message | None:
        line = summary_line(message, info)
        if not validate:
            print(line, file=out, flush=True)
            return None
        from hl7_fhir.v2._validate import validate as check

        parsed = parse(message)
        report = check(parsed)
        print(f"{line} {len(report.errors)} error(s)", file=out, flush=True)
        if report.ok:
            return None
        return build_ack(parsed, "AE", errors=report.error_details())

    server = MLLPServer(handler, host, port, ssl=context, idle_timeout=None)
    await server.start()
    scheme = "MLLP over TLS" if context else "MLLP"
    print(f"listening on {host}:{server.port} ({scheme}); Ctrl-C stops", file=err, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
    try:
        await stop.wait()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
        await server.close()
        print("stopped", file=err, flush=True)
