"""The :class:`Message`: lazily split ER7 text with path access and safe editing."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from ..errors import ParseError, PathError
from ._charset import decode_message_bytes, python_codec
from ._datetime import HL7DateTime, parse_datetime
from ._encoding import Encoding
from ._path import parse_path
from ._segment import Segment, Value

__all__ = ["Message", "parse", "parse_version", "standard_structure"]

_STRIP_LEADING = "\ufeff\x0b \t\r\n"
_STRIP_TRAILING = "\x1c\r\n"

# HL7 table 0354: trigger events whose message structure is not TYPE_TRIGGER.
_STRUCTURES = {
    **{f"ADT^A{n:02d}": "ADT_A01" for n in (1, 4, 8, 13)},
    **{f"ADT^A{n:02d}": "ADT_A05" for n in (5, 14, 28, 31)},
    **{f"ADT^A{n:02d}": "ADT_A03" for n in (3,)},
    **{f"ADT^A{n:02d}": "ADT_A06" for n in (6, 7)},
    **{f"ADT^A{n:02d}": "ADT_A09" for n in (9, 10, 11)},
    **{f"ADT^A{n:02d}": "ADT_A21" for n in (21, 22, 23, 25, 26, 27, 29, 32, 33)},
    **{f"ADT^A{n:02d}": "ADT_A39" for n in (39, 40, 41, 42)},
    **{f"SIU^S{n}": "SIU_S12" for n in range(12, 27)},
    "ORM^O01": "ORM_O01",
    "ORU^R01": "ORU_R01",
    "OML^O21": "OML_O21",
    "MDM^T01": "MDM_T01",
    "MDM^T02": "MDM_T02",
    "VXU^V04": "VXU_V04",
}


def parse_version(text: str) -> tuple[int, ...]:
    """An HL7 version (MSH-12.1) as numbers for comparisons; ``()`` when unreadable.

    >>> parse_version("2.5.1"), parse_version("v2.3"), parse_version("")
    ((2, 5, 1), (2, 3), ())
    """
    parts: list[int] = []
    for part in text.strip().lstrip("vV").split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def standard_structure(message_type: str, trigger_event: str) -> str | None:
    """The message structure HL7 table 0354 gives an event, when it is not TYPE_TRIGGER.

    >>> standard_structure("ADT", "A08")
    'ADT_A01'
    """
    return _STRUCTURES.get(f"{message_type}^{trigger_event}")


@lru_cache(maxsize=64)
def encoding_for(field_separator: str, msh2: str) -> Encoding:
    return Encoding.from_msh2(field_separator, msh2)


def _normalise(text: str) -> str:
    """CR as the only terminator, no blank lines, framing/BOM debris removed, final CR."""
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    text = text.lstrip(_STRIP_LEADING).rstrip(_STRIP_TRAILING)
    if "\r\r" in text or "\r " in text or "\r\t" in text or text[-1:] in (" ", "\t"):
        text = "\r".join(line for line in text.split("\r") if line.strip())
    return text + "\r"


class Message:
    """One HL7 v2 message.

    Build one with :func:`parse` (received text) or :func:`hl7_fhir.v2.new_message`.
    Read with paths (``msg["PID-3[2].1"]``), edit by assigning to them (values are
    escaped on write). ``str(msg)`` and :meth:`encode` give ER7 with CR terminators;
    an unedited message re-serialises to exactly the text it was parsed from.
    """

    __slots__ = (
        "_by_name",
        "_decoded",
        "_header",
        "_seg_charset",
        "_segments",
        "_text",
        "charset_fallback",
        "encoding",
    )

    def __init__(
        self,
        text: str,
        encoding: Encoding,
        *,
        charset: str | None = None,
        charset_fallback: bool = False,
    ) -> None:
        self._text = text
        self.encoding = encoding
        self._segments: list[Segment] | None = None
        self._by_name: dict[str, list[Segment]] | None = None
        self._header: Segment | None = None
        declared = self._raw_header_field(18)
        # The codec the bytes were really decoded with wins while MSH-18 is unchanged,
        # so re-encoding an unedited message gives back the bytes it came from.
        self._decoded = (declared, charset) if charset else None
        self._seg_charset = charset or python_codec(declared) or "utf-8"
        self.charset_fallback = charset_fallback

    def _raw_header_field(self, field: int) -> str:
        text = self._text
        header = text[: text.find("\r")]
        parts = header.split(self.encoding.field, field)
        if len(parts) < field:
            return ""
        return parts[field - 1].split(self.encoding.repetition, 1)[0]

    # -- segments ---------------------------------------------------------------

    def _all(self) -> list[Segment]:
        segments = self._segments
        if segments is None:
            enc, charset = self.encoding, self._seg_charset
            lines = self._text.split("\r")
            lines.pop()  # the text always ends with a terminator
            header = self._header or Segment(lines[0], enc, charset)
            segments = [header] + [Segment(line, enc, charset) for line in lines[1:]]
            self._segments = segments
        return segments

    def _named(self) -> dict[str, list[Segment]]:
        index = self._by_name
        if index is None:
            index = {}
            for seg in self._all():
                index.setdefault(seg.name, []).append(seg)
            self._by_name = index
        return index

    @property
    def header(self) -> Segment:
        """The MSH segment, split without touching the rest of the message."""
        if self._segments is not None:
            return self._segments[0]
        if self._header is None:
            self._header = Segment(
                self._text[: self._text.find("\r")], self.encoding, self._seg_charset
            )
        return self._header

    def segments(self, name: str | None = None) -> list[Segment]:
        """Every segment, or those called ``name``, in message order."""
        if name is None:
            return list(self._all())
        return list(self._named().get(name.upper(), ()))

    def segment(self, name: str, occurrence: int = 1) -> Segment | None:
        """The ``occurrence``-th segment called ``name`` (1-based), or ``None``."""
        found = self._named().get(name.upper(), ())
        return found[occurrence - 1] if 0 < occurrence <= len(found) else None

    def __iter__(self) -> Iterator[Segment]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def add_segment(self, name: str, position: int | None = None) -> Segment:
        """Append (or insert at ``position``) a new empty segment and return it."""
        name = name.upper()
        if len(name) != 3 or not name.isalnum() or name == "MSH":
            raise PathError(f"not a segment name that can be added: {name!r}")
        segment = Segment.new(name, self.encoding, self._seg_charset)
        segments = self._all()
        if position is None:
            segments.append(segment)
        else:
            segments.insert(max(position, 1), segment)
        self._by_name = None
        return segment

    def remove_segment(self, segment: Segment) -> None:
        """Remove ``segment`` (the MSH cannot be removed)."""
        segments = self._all()
        if segment is segments[0]:
            raise PathError("the MSH segment cannot be removed")
        segments.remove(segment)
        self._by_name = None

    # -- paths -------------------------------------------------------------------

    def __getitem__(self, path: str) -> str:
        """The value at ``path``; ``""`` when absent. Leaves come back unescaped.

        Raises:
            PathError: ``path`` is malformed.
        """
        p = parse_path(path)
        if p.segment == "MSH" and p.occurrence == 1:
            segment: Segment | None = self.header
        else:
            segment = self.segment(p.segment, p.occurrence)
        if segment is None:
            return ""
        if p.field is None:
            return segment.to_er7()
        return segment.get(p.field, p.repetition, p.component, p.subcomponent)

    def get(self, path: str, default: str = "") -> str:
        """Like ``msg[path]`` but with a default for absent or empty values."""
        return self[path] or default

    def __setitem__(self, path: str, value: Value) -> None:
        """Write ``value`` at ``path``, escaping it; a missing next segment is appended.

        Raises:
            PathError: the path is malformed, has no field, or skips segments.
        """
        p = parse_path(path)
        if p.field is None:
            raise PathError(f"assign to a field, not a whole segment: {path!r}")
        segment = self.header if p.segment == "MSH" else self.segment(p.segment, p.occurrence)
        if segment is None:
            existing = len(self._named().get(p.segment, ()))
            if p.occurrence != existing + 1:
                raise PathError(f"{path!r}: only {existing} {p.segment} segment(s) exist")
            segment = self.add_segment(p.segment)
        segment.set(p.field, value, p.repetition, p.component, p.subcomponent)

    def datetime(self, path: str) -> HL7DateTime | None:
        """The date/time at ``path`` with its precision, ``None`` when empty.

        Raises:
            ParseError: the value is not an HL7 date/time (``location`` is the path).
        """
        try:
            return parse_datetime(self[path])
        except ParseError as exc:
            raise ParseError(str(exc), location=path) from exc

    # -- header helpers ----------------------------------------------------------

    @property
    def message_type(self) -> str:
        """MSH-9.1, e.g. ``ORU``."""
        return self.header.get(9, 1, 1)

    @property
    def trigger_event(self) -> str:
        """MSH-9.2, e.g. ``R01``."""
        return self.header.get(9, 1, 2)

    @property
    def structure(self) -> str:
        """MSH-9.3 when sent, else the standard structure for the event (``ADT_A01`` for A08)."""
        sent = self.header.get(9, 1, 3)
        if sent:
            return sent
        kind, event = self.message_type, self.trigger_event
        return standard_structure(kind, event) or (f"{kind}_{event}" if event else kind)

    @property
    def control_id(self) -> str:
        """MSH-10, the id the ACK must echo in MSA-2."""
        return self.header.get(10)

    @property
    def processing_id(self) -> str:
        """MSH-11.1: P production, T training, D debugging."""
        return self.header.get(11, 1, 1)

    @property
    def version(self) -> str:
        """MSH-12.1, e.g. ``2.5.1``."""
        return self.header.get(12, 1, 1)

    @property
    def version_tuple(self) -> tuple[int, ...]:
        """MSH-12.1 as numbers for comparisons: ``(2, 5, 1)``; ``()`` when unreadable."""
        return parse_version(self.version)

    @property
    def sending_application(self) -> str:
        """MSH-3.1 (namespace id); the whole HD is ``msg["MSH-3"]``."""
        return self.header.get(3, 1, 1)

    @property
    def sending_facility(self) -> str:
        """MSH-4.1."""
        return self.header.get(4, 1, 1)

    @property
    def receiving_application(self) -> str:
        """MSH-5.1."""
        return self.header.get(5, 1, 1)

    @property
    def receiving_facility(self) -> str:
        """MSH-6.1."""
        return self.header.get(6, 1, 1)

    @property
    def timestamp(self) -> HL7DateTime | None:
        """MSH-7 with its precision and offset (if the sender wrote one)."""
        return self.datetime("MSH-7")

    @property
    def accept_ack_type(self) -> str:
        """MSH-15 (AL, NE, ER, SU); non-empty means enhanced acknowledgement mode."""
        return self.header.get(15)

    @property
    def application_ack_type(self) -> str:
        """MSH-16 (AL, NE, ER, SU)."""
        return self.header.get(16)

    @property
    def enhanced_ack_mode(self) -> bool:
        """True when the sender asked for enhanced-mode acknowledgements (MSH-15/16)."""
        return bool(self.accept_ack_type or self.application_ack_type)

    @property
    def declared_charset(self) -> str:
        """MSH-18's first repetition as written (``""`` when absent)."""
        return self.header.get(18, 1)

    # -- output ------------------------------------------------------------------

    def to_er7(self) -> str:
        """ER7 text, every segment ended by CR."""
        if self._segments is not None:
            return "\r".join(seg.to_er7() for seg in self._segments) + "\r"
        if self._header is not None and self._header._text is None:
            rest = self._text[self._text.find("\r") :]
            return self._header.to_er7() + rest
        return self._text

    def __str__(self) -> str:
        return self.to_er7()

    @property
    def charset(self) -> str:
        """The Python codec for this message's bytes: MSH-18's, else UTF-8.

        For a message parsed from bytes it is the codec actually used to decode them
        (which differs from MSH-18 when the sender declared the wrong charset).
        """
        header = self._header
        if self._segments is None and (header is None or header._text is not None):
            return self._seg_charset  # header unedited: MSH-18 is what it was at parse time
        declared = self.declared_charset
        if self._decoded is not None and self._decoded[0] == declared:
            return self._decoded[1]
        return python_codec(declared) or "utf-8"

    def encode(self) -> bytes:
        """ER7 bytes in the message's charset.

        Text that the declared charset cannot represent is never sent mislabelled: MSH-18
        is rewritten to ``UNICODE UTF-8`` and the message is encoded as UTF-8.
        """
        text = self.to_er7()
        try:
            return text.encode(self.charset)
        except UnicodeEncodeError:
            self["MSH-18"] = "UNICODE UTF-8"
            return self.to_er7().encode("utf-8")

    def __bytes__(self) -> bytes:
        return self.encode()

    def __repr__(self) -> str:
        return (
            f"<Message {self.message_type}^{self.trigger_event} "
            f"id={self.control_id!r} v{self.version}>"
        )


def parse(data: bytes | bytearray | memoryview | str) -> Message:
    """Parse one ER7 message.

    Bytes are decoded by MSH-18 (falling back to UTF-8, then ISO-8859-1, never failing);
    CR, LF and CRLF terminators, a UTF-8 BOM and stray MLLP framing bytes are accepted.
    Only the header is checked here; the rest is split when it is read.

    >>> parse("MSH|^~\\\\&|RIS|H|||20250101||ORM^O01|42|P|2.5\\rPID|1||P001").control_id
    '42'

    Raises:
        ParseError: the data does not start with a usable MSH segment.
    """
    fallback = False
    charset: str | None = None
    if isinstance(data, str):
        text = data
    else:
        decoded = decode_message_bytes(bytes(data))
        text, charset, fallback = decoded.text, decoded.codec, decoded.fallback
    text = _normalise(text)
    if not text.startswith("MSH"):
        if text.startswith(("FHS", "BHS")):
            raise ParseError("this is a batch; use parse_batch()", location="segment 1")
        preview = text[:20].rstrip("\r")
        raise ParseError(f"a message starts with MSH, found {preview!r}", location="segment 1")
    if len(text) < 9:
        raise ParseError("the MSH segment is too short", location="MSH")
    field_sep = text[3]
    end = text.find(field_sep, 4)
    line_end = text.find("\r")
    if end < 0 or end > line_end:
        raise ParseError("MSH-2 (encoding characters) is not terminated", location="MSH-2")
    try:
        encoding = encoding_for(field_sep, text[4:end])
    except ValueError as exc:
        raise ParseError(str(exc), location="MSH-2") from exc
    return Message(text, encoding, charset=charset, charset_fallback=fallback)
