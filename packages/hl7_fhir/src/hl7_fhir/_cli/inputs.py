"""Reading the CLI's inputs: files, directories, standard input."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from hl7_fhir.errors import ParseError
from hl7_fhir.v2 import Message, parse_batch

__all__ = ["UsageError", "expand", "messages", "read"]


class UsageError(Exception):
    """Bad arguments or unusable input files: exit code 2."""


def read(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    path = Path(name)
    if path.is_dir():
        raise UsageError(f"{name}: is a directory")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{name}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{name}: {exc.strerror or exc}") from exc


def expand(names: Sequence[str]) -> Iterator[str]:
    """Files as given; directories searched recursively for ``*.hl7``, in sorted order."""
    for name in names:
        path = Path(name)
        if name != "-" and path.is_dir():
            found = sorted(p for p in path.rglob("*.hl7") if p.is_file())
            if not found:
                raise UsageError(f"{name}: no .hl7 files in this directory")
            yield from (str(p) for p in found)
        else:
            yield name


def messages(data: bytes) -> list[Message]:
    messages = parse_batch(data)
    if not messages:
        raise ParseError("no HL7 message found")
    return messages
