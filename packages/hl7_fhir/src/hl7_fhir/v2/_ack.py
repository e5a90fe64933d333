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

from ..errors import PathError
from ._charset import decode_message_bytes
from ._datetime import format_datetime
from ._encoding import Encoding
from ._message import Message, encoding_for, parse_version
from ._path import parse_path

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
_ORIGINAL = {enhanced: original for original, enhanced in _ENHANCED.items()}
_ACK_CODES = frozenset(_ENHANCED) | frozenset(_ORIGINAL)
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


def _header_line(data: bytes | bytearray | str) -> bytes | str:
    """Only the first line of the inbound data: an ACK needs nothing else."""
    if isinstance(data, str):
        data = data.lstrip("\ufeff\x0b \t\r\n")
        cut = min((i for i in (data.find("\r"), data.find("\n")) if i >= 0), default=len(data))
        return data[:cut]
    raw = bytes(data).lstrip(b"\xef\xbb\xbf\x0b \t\r\n")
    cut = min((i for i in (raw.find(b"\r"), raw.find(b"\n")) if i >= 0), default=len(raw))
    return raw[:cut]


def _header_fields(line: bytes | str) -> tuple[list[str], Encoding] | None:
    """The MSH line split into fields (index n-1 is MSH-n), or None if it is not usable."""
    if line[:3] not in (b"MSH", "MSH") or len(line) < 8:
        return None
    if isinstance(line, bytes):
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            text = decode_message_bytes(line).text
    else:
        text = line
    fields = text.split(text[3])
    try:
        return fields, encoding_for(text[3], fields[1])
    except (ValueError, IndexError):
        return None


def _salvage_header(data: Message | bytes | bytearray | str) -> tuple[list[str], Encoding]:
    """The inbound MSH split into fields, as far as it can be read; never raises."""
    if isinstance(data, Message):
        return data.header._split(), data.encoding
    line = _header_line(data)
    found = _header_fields(line)
    if found is not None:
        return found
    text = line.decode("latin-1") if isinstance(line, bytes) else line
    if isinstance(data, bytes | bytearray) and "MSH" not in text:
        text = bytes(data).decode("latin-1")  # an MSH further in, after junk
    start = text.find("MSH")
    if start < 0 or len(text) < start + 4:
        return [], Encoding()
    line = text[start:].replace("\n", "\r").split("\r", 1)[0]
    sep = line[3]
    if sep.isalnum() or sep.isspace():
        return [], Encoding()
    try:
        encoding = Encoding.from_msh2(sep, line[4:].split(sep, 1)[0])
    except ValueError:
        encoding = Encoding(field=sep)
    return line.split(sep), encoding


_clock: tuple[int, str] = (0, "")


def _now_hl7() -> str:
    """The current local time as HL7 DTM with offset, formatted once per second."""
    global _clock
    second = int(time.time())
    if _clock[0] != second:
        _clock = (second, format_datetime(datetime.fromtimestamp(second).astimezone()))
    return _clock[1]


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
    inbound: Message | bytes | bytearray | str,
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

    >>> ack = build_ack(("MSH|^~\\\\&|RIS|H|EHR|H|20250101||ORM^O01|42|P|2.5"), "AA")
    >>> ack["MSA-1"], ack["MSA-2"], ack["MSH-3"]
    ('AA', '42', 'EHR')

    Raises:
        ValueError: ``code`` is not an acknowledgement code.
    """
    code = code.upper()
    if code not in _ACK_CODES:
        raise ValueError(f"not an acknowledgement code: {code!r}")
    header_fields, enc = _salvage_header(inbound)

    # MSH field n sits at index n - 1 of the split header (MSH-1 is the separator itself).
    count = len(header_fields)

    def inbound_field(field: int) -> str:
        return header_fields[field - 1] if field - 1 < count else ""

    version = inbound_field(12).split(enc.component, 1)[0] or "2.5.1"
    version_number = parse_version(version)
    if enhanced is None:
        enhanced = bool(inbound_field(15) or inbound_field(16))
    if enhanced and code in _ENHANCED:
        code = _ENHANCED[code]
    if not enhanced and code in _ENHANCED.values():
        code = _ORIGINAL[code]

    # Built as text: this runs for every message the gateway receives.
    esc = enc.escape_text
    comp, sub = enc.component, enc.subcomponent
    event = inbound_field(9).split(enc.repetition, 1)[0].split(comp)
    trigger = event[1] if len(event) > 1 else ""
    msh9 = f"ACK{comp}{trigger}{comp}ACK" if version_number >= (2, 3, 1) else f"ACK{comp}{trigger}"
    when = (
        format_datetime(timestamp.replace(microsecond=0)) if timestamp is not None else _now_hl7()
    )
    msh = [
        "MSH",
        enc.encoding_characters,
        inbound_field(5),
        inbound_field(6),
        inbound_field(3),
        inbound_field(4),
        when,
        "",
        msh9,
        esc(control_id) if control_id else new_control_id(),
        inbound_field(11) or "P",
        inbound_field(12) or version,
    ]
    charset = inbound_field(18)
    if charset:
        msh += ["", "", "", "", "", charset]

    is_error = code not in ("AA", "CA")
    if is_error and not errors:
        errors = [ErrorDetail("207", text or ERROR_CODES["207"])]
    modern = version_number >= (2, 5)
    msa = ["MSA", code, inbound_field(10).split(comp, 1)[0]]
    if not modern and (text or errors):
        msa.append(esc(text or errors[0].text))
    lines = [enc.field.join(msh), enc.field.join(msa)]
    for detail in errors:
        label = ERROR_CODES.get(detail.code, "")
        location = _location_components(detail.location) if detail.location else []
        if modern:
            err = [
                "ERR",
                "",
                comp.join(esc(p) for p in location),
                comp.join((esc(detail.code), esc(label), "HL70357")),
                esc(detail.severity),
            ]
            if detail.text:
                err += ["", "", "", esc(detail.text)]
        else:
            eld = [*location[:3], "", "", ""][:3]
            code_ce = sub.join((esc(detail.code), esc(detail.text or label), "HL70357"))
            err = ["ERR", comp.join([*(esc(p) for p in eld), code_ce])]
        lines.append(enc.field.join(err))
    return Message("\r".join(lines) + "\r", enc)
