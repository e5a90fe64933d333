"""Splitting batch files (FHS/BHS ... BTS/FTS) and plain concatenations into messages."""

from __future__ import annotations

from ..errors import ParseError
from ._charset import BOM
from ._message import Message, parse

__all__ = ["parse_batch", "split_messages"]

_ENVELOPE = (b"FHS", b"BHS", b"BTS", b"FTS")


def split_messages(data: bytes | str) -> list[bytes]:
    """Split a batch or concatenation into the raw bytes of each message.

    Envelope segments (FHS, BHS, BTS, FTS) are dropped; each message keeps its own bytes
    so it can be decoded by its own MSH-18. Str input is encoded as UTF-8 first.

    Raises:
        ParseError: something other than an envelope segment precedes the first MSH.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if raw.startswith(BOM):
        raw = raw[3:]
    raw = raw.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    messages: list[list[bytes]] = []
    for number, line in enumerate(raw.split(b"\r"), start=1):
        stripped = line.strip(b"\x0b\x1c \t")
        if not stripped:
            continue
        head = stripped[:3]
        if head in _ENVELOPE:
            continue
        if head == b"MSH":
            messages.append([stripped])
        elif messages:
            messages[-1].append(line)
        else:
            preview = stripped[:20].decode("latin-1")
            raise ParseError(
                f"expected MSH or a batch header, found {preview!r}", location=f"segment {number}"
            )
    return [b"\r".join(lines) + b"\r" for lines in messages]


def parse_batch(data: bytes | str) -> list[Message]:
    """Parse every message of a batch file or a plain concatenation of messages.

    >>> [m.control_id for m in parse_batch("MSH|^~\\\\&|||||||ADT^A01|1|P|2.5\\rMSH|^~\\\\&|||||||ADT^A01|2|P|2.5")]
    ['1', '2']

    Raises:
        ParseError: a message in it is unusable (``location`` names which).
    """
    messages = []
    for index, chunk in enumerate(split_messages(data), start=1):
        try:
            messages.append(parse(chunk))
        except ParseError as exc:
            raise ParseError(str(exc), location=f"message {index}") from exc
    return messages
