"""The ``hl7fhir`` command: parse, validate, generate, send and receive HL7 v2 messages.

::

    hl7fhir parse FILE [--json]            show each message as a tree with field names
    hl7fhir validate FILE... [--strict]    list problems; exit 1 when there are errors
    hl7fhir generate --types oru,adt_a01 --count 10 [-o FILE]
    hl7fhir send FILE|DIR... --host H --port P [--tls --ca F --cert F --key F]
    hl7fhir listen --port P [--tls-cert F --tls-key F] [--validate]
    hl7fhir to-fhir FILE [--profile PROFILE.json] [--bundle-type transaction|batch|message]
    hl7fhir from-fhir FILE --message ORU^R01

``-`` reads standard input. Files may hold several messages (plain concatenations or
FHS/BHS batches) with CR, LF or CRLF terminators.

Exit codes: 0 success; 1 validation errors, a negative ACK or a failed send, or input
that is not HL7; 2 usage and I/O errors. Errors are one line on stderr, never a
traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TextIO

from hl7_fhir._cli import inputs
from hl7_fhir._cli.inputs import UsageError
from hl7_fhir.errors import HL7FhirError, ParseError
from hl7_fhir.v2 import split_messages

__all__ = ["main"]

PROG = "hl7fhir"
DEFAULT_KINDS = ("orm", "oru", "adt_a01", "adt_a04", "adt_a08", "adt_a40", "siu")


# -- commands -------------------------------------------------------------------------


def _cmd_parse(args: argparse.Namespace, out: TextIO) -> int:
    from hl7_fhir._cli.render import dump_json, message_json, message_tree

    try:
        messages = inputs.messages(inputs.read(args.file))
    except ParseError as exc:
        raise ParseError(f"{args.file}: {exc}") from exc
    if args.json:
        out.write(dump_json([message_json(m) for m in messages]) + "\n")
        return 0
    blocks = [
        message_tree(m, index=i if len(messages) > 1 else None, full=args.full)
        for i, m in enumerate(messages, start=1)
    ]
    out.write("\n\n".join(blocks) + "\n")
    return 0


def _cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    from hl7_fhir.v2._validate import validate

    errors = 0
    results: list[dict[str, object]] = []
    for name in inputs.expand(args.files):
        data = inputs.read(name)
        try:
            messages = inputs.messages(data)
        except ParseError as exc:
            errors += 1
            results.append({"file": name, "error": str(exc)})
            if not args.json:
                out.write(f"{name}: ERROR {exc}\n")
            continue
        for index, message in enumerate(messages, start=1):
            report = validate(message, strict=args.strict)
            errors += len(report.errors)
            where = name if len(messages) == 1 else f"{name} #{index}"
            if args.json:
                results.append({"file": name, "index": index, **report.to_dict()})
                continue
            if args.quiet and report.ok:
                continue
            lines = report.to_text().splitlines()
            if args.errors_only:
                lines = [lines[0]] + [line for line in lines[1:] if "ERROR" in line]
            out.write(f"{where}: " + "\n".join(lines) + "\n")
    if args.json:
        json.dump(results, out, indent=2, ensure_ascii=False)
        out.write("\n")
    return 1 if errors else 0


def _kinds(text: str) -> list[str]:
    from hl7_fhir.v2._generate import MESSAGE_KINDS

    known = list(MESSAGE_KINDS)
    wanted = [k.strip().lower() for k in text.split(",") if k.strip()]
    if wanted == ["all"]:
        return known
    unknown = [k for k in wanted if k not in known]
    if unknown or not wanted:
        raise UsageError(
            f"unknown message kind(s) {', '.join(unknown) or '(none)'}; "
            f"choose from {', '.join(known)} or 'all'"
        )
    return wanted


def _cmd_generate(args: argparse.Namespace, out: TextIO) -> int:
    from hl7_fhir.v2._generate import generate_many

    if args.count < 1:
        raise UsageError("--count must be at least 1")
    kinds = _kinds(args.types)
    try:
        messages = generate_many(kinds, args.count, version=args.version, seed=args.seed)
    except ValueError as exc:  # an unsupported version
        raise UsageError(str(exc)) from exc
    chunks = []
    for message in messages:
        data = message.encode()
        if args.lf:
            data = data.replace(b"\r", b"\n") + b"\n"  # a blank line between messages
        else:
            data += b"\n"  # CR inside a message, LF after it
        chunks.append(data)
    payload = b"".join(chunks)
    if args.output and args.output != "-":
        try:
            Path(args.output).write_bytes(payload)
        except OSError as exc:
            raise UsageError(f"{args.output}: {exc.strerror or exc}") from exc
        print(f"wrote {len(messages)} message(s) to {args.output}", file=sys.stderr)
    else:
        out.flush()
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()
    return 0


def _cmd_send(args: argparse.Namespace, out: TextIO) -> int:
    from hl7_fhir._cli.network import Outbound, client_tls, send_all

    outbound: list[Outbound] = []
    for name in inputs.expand(args.paths):
        data = inputs.read(name)
        chunks = split_messages(data)
        if not chunks:
            raise UsageError(f"{name}: no HL7 message found")
        outbound.extend(Outbound(chunk, name) for chunk in chunks)  # CR-terminated
    context = None
    if args.tls or args.ca or args.cert:
        if args.key and not args.cert:
            raise UsageError("--key needs --cert")
        try:
            context = client_tls(args.ca, args.cert, args.key)
        except OSError as exc:
            raise UsageError(f"TLS setup failed: {exc}") from exc
    result = asyncio.run(
        send_all(
            outbound,
            args.host,
            args.port,
            context=context,
            ack_timeout=args.timeout,
            out=out,
            err=sys.stderr,
        )
    )
    print(f"{args.host}:{args.port}: {result.summary()}", file=sys.stderr)
    return 0 if result.ok else 1


def _cmd_listen(args: argparse.Namespace, out: TextIO) -> int:
    import logging

    from hl7_fhir._cli.network import listen, server_tls

    logging.basicConfig(level=logging.WARNING, format=f"{PROG}: %(levelname)s %(message)s")
    context = None
    if args.tls_cert:
        try:
            context = server_tls(args.tls_cert, args.tls_key, args.tls_client_ca)
        except OSError as exc:
            raise UsageError(f"TLS setup failed: {exc}") from exc
    elif args.tls_key or args.tls_client_ca:
        raise UsageError("--tls-key and --tls-client-ca need --tls-cert")
    try:
        asyncio.run(
            listen(
                args.host,
                args.port,
                context=context,
                validate=args.validate,
                out=out,
                err=sys.stderr,
            )
        )
    except KeyboardInterrupt:  # where signal handlers are unavailable
        print("stopped", file=sys.stderr)
    return 0


# -- the parser -----------------------------------------------------------------------


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("the timeout must be positive")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Parse, validate, generate, send and receive HL7 v2 messages.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = commands.add_parser("parse", help="show messages as a tree with field names, or JSON")
    p.add_argument("file", metavar="FILE", help="an HL7 file ('-' for standard input)")
    p.add_argument(
        "--json", action="store_true", help="segments -> fields -> repetitions -> components"
    )
    p.add_argument("--full", action="store_true", help="do not shorten long values")
    p.set_defaults(run=_cmd_parse)

    p = commands.add_parser(
        "validate",
        help="check messages against the HL7 reference; exit 1 on errors",
        description="Check each message against the HL7 v2 reference of its MSH-12 version. "
        "Exit 1 when any message has errors, 0 otherwise (warnings allowed).",
    )
    p.add_argument("files", metavar="FILE", nargs="+", help="HL7 files or directories ('-': stdin)")
    p.add_argument(
        "--strict",
        action="store_true",
        help="every missing required field and malformed value is an error",
    )
    p.add_argument("--json", action="store_true", help="the reports as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="only show messages with errors")
    p.add_argument("--errors-only", action="store_true", help="leave warnings out of the listing")
    p.set_defaults(run=_cmd_validate)

    p = commands.add_parser(
        "generate",
        help="write realistic synthetic messages",
        description="Write synthetic messages. Each message keeps CR segment terminators "
        "(the bytes that would go on the wire) and is followed by one LF, so files can be "
        "sent as they are and read back by parse_batch; --lf writes LF terminators and a "
        "blank line between messages instead, for reading and diffing.",
    )
    p.add_argument(
        "--types",
        default=",".join(DEFAULT_KINDS),
        help="comma-separated kinds, or 'all' (default: %(default)s)",
    )
    p.add_argument("--count", type=int, default=1, help="how many messages (default: 1)")
    p.add_argument(
        "--version", default="2.5.1", help="HL7 version for MSH-12 (default: %(default)s)"
    )
    p.add_argument("--seed", type=int, default=None, help="for reproducible output")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of standard output")
    p.add_argument(
        "--lf", action="store_true", help="LF segment terminators, blank line between messages"
    )
    p.set_defaults(run=_cmd_generate)

    p = commands.add_parser(
        "send",
        help="send messages over MLLP and report each ACK",
        description="Send every message of the given files (directories: *.hl7, recursively; "
        "batches are split) over one MLLP connection, in order. Exit 1 when an ACK is not "
        "AA/CA or a message could not be sent.",
    )
    p.add_argument("paths", metavar="FILE|DIR", nargs="+")
    p.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    p.add_argument("--port", type=_port, required=True)
    p.add_argument(
        "--tls",
        action="store_true",
        help="use TLS (verify the server with --ca or the system store)",
    )
    p.add_argument("--ca", metavar="FILE", help="CA bundle that signed the server certificate")
    p.add_argument("--cert", metavar="FILE", help="client certificate (PEM) for mutual TLS")
    p.add_argument("--key", metavar="FILE", help="client private key, if not in --cert")
    p.add_argument(
        "--timeout", type=_seconds, default=30.0, help="seconds to wait for each ACK (default: 30)"
    )
    p.set_defaults(run=_cmd_send)

    p = commands.add_parser(
        "listen",
        help="receive messages over MLLP, print a line each, answer AA",
        description="Receive messages, print one line each (time, peer, type, control id, "
        "segment count) and answer AA; with --validate answer AE with ERR segments when a "
        "message has errors. Ctrl-C stops.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument(
        "--port", type=_port, required=True, help="0 picks a free port (printed on stderr)"
    )
    p.add_argument(
        "--tls-cert", metavar="FILE", help="server certificate (PEM) to serve MLLP over TLS"
    )
    p.add_argument("--tls-key", metavar="FILE", help="server private key, if not in --tls-cert")
    p.add_argument(
        "--tls-client-ca", metavar="FILE", help="require client certificates signed by this CA"
    )
    p.add_argument("--validate", action="store_true", help="answer AE when validation finds errors")
    p.set_defaults(run=_cmd_listen)

    from hl7_fhir._cli.convert import add_parsers

    add_parsers(commands)
    return parser


def _error(text: str) -> None:
    print(f"{PROG}: error: {text}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 failure, 2 usage/I/O)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed usage or help already
        return exc.code if isinstance(exc.code, int) else 2
    out = sys.stdout
    try:
        code: int = args.run(args, out)
        out.flush()
        return code
    except UsageError as exc:
        _error(str(exc))
        return 2
    except ModuleNotFoundError as exc:  # an optional part of the library is missing
        _error(f"this command is not available: {exc}")
        return 2
    except HL7FhirError as exc:
        _error(str(exc))
        return 1
    except BrokenPipeError:  # `hl7fhir parse big.hl7 | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        _error(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        return 2
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line, unless asked for the traceback
        if os.environ.get("HL7FHIR_DEBUG"):
            raise
        _error(f"unexpected {type(exc).__name__}: {exc} (HL7FHIR_DEBUG=1 shows the traceback)")
        return 1


if __name__ == "__main__":
    sys.exit(main())
