"""``hl7fhir to-fhir`` and ``hl7fhir from-fhir``: the mapping engine from the shell."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from hl7_fhir._cli.inputs import UsageError, messages, read
from hl7_fhir.errors import MappingError

__all__ = ["add_parsers"]


def _profile(path: str | None) -> Any:
    from hl7_fhir.mapping import MappingProfile

    if path is None:
        return None
    try:
        data = json.loads(read(path))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not JSON ({exc})") from exc
    try:
        return MappingProfile.from_dict(data)
    except MappingError as exc:
        raise UsageError(f"{path}: {exc}") from exc


def _cmd_to_fhir(args: argparse.Namespace, out: TextIO) -> int:
    from hl7_fhir.mapping import to_fhir

    profile = _profile(args.profile)
    bundles = [
        to_fhir(message, profile, bundle_type=args.bundle_type)
        for message in messages(read(args.file))
    ]
    result = bundles[0] if len(bundles) == 1 else bundles
    out.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0


def _cmd_from_fhir(args: argparse.Namespace, out: TextIO) -> int:
    from hl7_fhir.mapping import from_fhir

    try:
        data = json.loads(read(args.file))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{args.file}: not JSON ({exc})") from exc
    options: dict[str, Any] = {"version": args.version}
    message = from_fhir(data, args.message, _profile(args.profile), **options)
    text = message.to_er7()
    out.write(text.replace("\r", "\n") if args.lf else text)
    if args.lf:
        out.write("\n")
    return 0


def add_parsers(commands: Any) -> None:
    """Register ``to-fhir`` and ``from-fhir`` on the CLI's subcommand parser."""
    p = commands.add_parser(
        "to-fhir",
        help="map HL7 v2 messages to FHIR R4 Bundles (JSON)",
        description="Print the FHIR R4 Bundle for each message of FILE (a list when several).",
    )
    p.add_argument("file", metavar="FILE", help="HL7 v2 file, or - for standard input")
    p.add_argument("--profile", metavar="PROFILE.json", help="mapping profile of the sender")
    p.add_argument(
        "--bundle-type",
        choices=("transaction", "batch", "message", "collection"),
        default="transaction",
        help="default: %(default)s",
    )
    p.set_defaults(run=_cmd_to_fhir)

    p = commands.add_parser(
        "from-fhir",
        help="build an HL7 v2 message from FHIR R4 resources",
        description="Read a FHIR resource, a JSON list of resources or a Bundle and print "
        "the HL7 v2 message (CR segment terminators; --lf for reading).",
    )
    p.add_argument("file", metavar="FILE", help="FHIR JSON file, or - for standard input")
    p.add_argument(
        "--message",
        required=True,
        metavar="TYPE^TRIGGER",
        help="e.g. ORU^R01, ORM^O01, ADT^A08, SIU^S12",
    )
    p.add_argument("--version", default="2.5.1", help="HL7 version (default: %(default)s)")
    p.add_argument("--profile", metavar="PROFILE.json", help="mapping profile of the receiver")
    p.add_argument("--lf", action="store_true", help="LF instead of CR between segments")
    p.set_defaults(run=_cmd_from_fhir)
