"""Acknowledgements: original mode (AA/AE/AR) and enhanced mode (CA/CE/CR).

The receiving side swaps the applications (MSH-3/4 <-> MSH-5/6), takes a fresh MSH-10,
echoes the inbound MSH-10 in MSA-2 and, on error, says why in ERR with an HL7 table 0357
code. v2.5 and later carry the location in ERR-2, the code in ERR-3 and the severity in
ERR-4; older versions use MSA-3 for the text and ERR-1 for location and code.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from datetime import datetime

from ..errors import ParseError, PathError
from ._datetime import format_datetime
from ._encoding import Encoding
from ._message import Message, parse
from ._path import parse_path
from ._segment import Segment

__all__ = ["ERROR_CODES", "ErrorDetail", "build_ack", "new_control_id", "peek_control_id"]

# HL7 table 0357, message error condition codes.
ERROR_CODES = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "104": "Value too long",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}

_ENHANCED = {"AA": "CA", "AE": "CE", "AR": "CR"}
_ACK_CODES = frozenset(_ENHANCED) | frozenset(_ENHANCED.values())
_counter = itertools.count()
_prefix = os.urandom(2).hex()


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One ERR segment: what went wrong (table 0357 code), where, and how badly.

    ``location`` is a path such as ``"PID-3"`` or ``"OBX[2]-5"``; ``severity`` is
    E (error), W (warning) or I (information).
    """

    code: str = "207"
    text: str = ""
    location: str | None = None
    severity: str = "E"


def new_control_id() -> str:
    """A unique MSH-10 that fits the 20 characters older versions allow."""
    stamp = f"{time.time_ns() // 1_000_000:011x}"[-11:]
    return f"{stamp}{_prefix}{next(_counter) % 0x100000:05x}"


def peek_control_id(data: bytes) -> str | None:
    """MSH-10 read straight from raw bytes, without a full parse (for matching ACKs).

    >>> peek_control_id(b"MSH|^~\\\\&|A|B|C|D|20250101||ACK|abc|P|2.5\\r")
    'abc'
    """
    start = data.find(b"MSH")
    if start < 0 or len(data) < start + 4:
        return None
    sep = data[start + 3 : start + 4]
    end = len(data)
    for terminator in (b"\r", b"\n"):
        idx = data.find(terminator, start)
        if 0 <= idx < end:
            end = idx
    fields = data[start:end].split(sep)
    if len(fields) < 10:
        return None
    return fields[9].decode("latin-1")


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for part in version.split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def _salvage_header(data: Message | bytes | str) -> tuple[Segment | None, Encoding]:
    """The inbound MSH as a segment, as far as it can be read; never raises."""
    if isinstance(data, Message):
        return data.header, data.encoding
    try:
        message = parse(data)
        return message.header, message.encoding
    except ParseError:
        pass
    text = data.decode("latin-1") if isinstance(data, bytes | bytearray) else str(data)
    start = text.find("MSH")
    if start < 0 or len(text) < start + 4:
        return None, Encoding()
    line = text[start:].replace("\n", "\r").split("\r", 1)[0]
    sep = line[3]
    if sep.isalnum() or sep.isspace():
        return None, Encoding()
    try:
        encoding = Encoding.from_msh2(sep, line[4:].split(sep, 1)[0])
    except ValueError:
        encoding = Encoding(field=sep)
    return Segment(line, encoding), encoding


def _location_components(location: str) -> list[str]:
    """ERR-2 (ERL) components for a path: segment^occurrence^field^repetition^comp^sub."""
    try:
        path = parse_path(location)
    except PathError:
        return [location]
    parts = [path.segment, str(path.occurrence)]
    if path.field is not None:
        parts.append(str(path.field))
        parts.append(str(path.repetition or 1) if path.component is not None else "")
        if path.component is not None:
            parts.append(str(path.component))
            if path.subcomponent is not None:
                parts.append(str(path.subcomponent))
    while parts and not parts[-1]:
        parts.pop()
    return parts


def build_ack(
    inbound: Message | bytes | str,
    code: str = "AA",
    *,
    text: str | None = None,
    errors: tuple[ErrorDetail, ...] | list[ErrorDetail] = (),
    control_id: str | None = None,
    timestamp: datetime | None = None,
    enhanced: bool | None = None,
) -> Message:
    """Build the acknowledgement for ``inbound``.

    ``code`` is AA/AE/AR (mapped to CA/CE/CR when the inbound asks for enhanced mode
    through MSH-15/16, unless ``enhanced`` says otherwise) or an explicit CA/CE/CR.
    A negative code without ``errors`` gets one ERR with code 207 and ``text``.
    Broken inbound data still gets an ACK: whatever of its MSH can be read is used.

    >>> ack = build_ack(parse("MSH|^~\\\\&|RIS|H|EHR|H|20250101||ORM^O01|42|P|2.5"), "AA")
    >>> ack["MSA-1"], ack["MSA-2"], ack["MSH-3"]
    ('AA', '42', 'EHR')

    Raises:
        ValueError: ``code`` is not an acknowledgement code.
    """
    code = code.upper()
    if code not in _ACK_CODES:
        raise ValueError(f"not an acknowledgement code: {code!r}")
    header, encoding = _salvage_header(inbound)

    def inbound_field(field: int) -> str:
        return header.field_text(field) if header is not None else ""

    version = inbound_field(12).split(encoding.component, 1)[0] or "2.5.1"
    if enhanced is None:
        enhanced = bool(inbound_field(15) or inbound_field(16))
    if enhanced and code in _ENHANCED:
        code = _ENHANCED[code]
    if not enhanced and code in _ENHANCED.values():
        code = {v: k for k, v in _ENHANCED.items()}[code]

    msh = Segment.new("MSH", encoding)
    fields = msh._split()
    fields.extend([""] * 17)
    fields[2], fields[3] = inbound_field(5), inbound_field(6)
    fields[4], fields[5] = inbound_field(3), inbound_field(4)
    msh._text = None
    msh.set(7, format_datetime((timestamp or datetime.now().astimezone()).replace(microsecond=0)))
    trigger = inbound_field(9).split(encoding.repetition, 1)[0].split(encoding.component)
    event = trigger[1] if len(trigger) > 1 else ""
    msh.set(9, ("ACK", event, "ACK") if _version_tuple(version) >= (2, 3, 1) else ("ACK", event))
    msh.set(10, control_id or new_control_id())
    fields = msh._split()
    fields[10] = inbound_field(11) or "P"
    fields[11] = inbound_field(12) or version
    fields[17] = inbound_field(18)
    message = Message(msh.to_er7() + "\r", encoding)

    is_error = code not in ("AA", "CA")
    if is_error and not errors:
        errors = [ErrorDetail("207", text or ERROR_CODES["207"])]
    modern = _version_tuple(version) >= (2, 5)
    msa = message.add_segment("MSA")
    msa.set(1, code)
    msa.set(2, inbound_field(10).split(encoding.component, 1)[0] if header else "")
    if text and not modern:
        msa.set(3, text)
    elif not text and errors and not modern:
        msa.set(3, errors[0].text)
    for detail in errors:
        err = message.add_segment("ERR")
        label = ERROR_CODES.get(detail.code, "")
        location = _location_components(detail.location) if detail.location else []
        if modern:
            if location:
                err.set(2, tuple(location))
            err.set(3, (detail.code, label, "HL70357"))
            err.set(4, detail.severity)
            if detail.text:
                err.set(8, detail.text)
        else:
            eld = location[:3] if location else ["", "", ""]
            eld += [""] * (3 - len(eld))
            err.set(1, (*eld, (detail.code, detail.text or label, "HL70357")))
    return message
