"""Turning received bytes into text using the charset the sender declared in MSH-18.

Senders routinely declare one charset and send another, so decoding never fails: the
declared codec is tried first, then UTF-8, then ISO-8859-1 (which accepts any byte),
and the result records which one was used.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["DecodedText", "decode_message_bytes", "python_codec"]

BOM = b"\xef\xbb\xbf"

# HL7 table 0211 (alternate character sets) -> Python codec.
_HL7_CHARSETS = {
    "ASCII": "ascii",
    "ISO IR6": "ascii",
    "8859/1": "latin-1",
    "ISO IR100": "latin-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "ISO IR192": "utf-8",
    "UNICODE": "utf-16",
    "UNICODE UTF-16": "utf-16",
    "UNICODE UTF-32": "utf-32",
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc-kr",
    "BIG-5": "big5",
    "ISO IR87": "iso2022_jp",
    "ISO IR159": "iso2022_jp_2",
    "CNS 11643-1992": "big5",
    "WINDOWS-1252": "cp1252",
}


@lru_cache(maxsize=128)
def python_codec(hl7_charset: str) -> str | None:
    """The Python codec for an MSH-18 value, or ``None`` when it is not known.

    >>> python_codec("UNICODE UTF-8")
    'utf-8'
    """
    name = hl7_charset.strip().upper()
    if not name:
        return None
    if name in _HL7_CHARSETS:
        return _HL7_CHARSETS[name]
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


@dataclass(frozen=True, slots=True)
class DecodedText:
    """Decoded message text and how it was decoded.

    ``fallback`` is True when the declared charset was missing, unknown or wrong and
    another codec had to be used: worth a warning, never a rejection.
    """

    text: str
    codec: str
    declared: str
    fallback: bool


def _declared_charset(data: bytes) -> str:
    """MSH-18's first repetition, read from the raw header bytes (ASCII-safe)."""
    if data[:3] != b"MSH" or len(data) < 8:
        return ""
    end = len(data)
    for terminator in (b"\r", b"\n"):
        idx = data.find(terminator)
        if 0 <= idx < end:
            end = idx
    header = data[:end]
    sep = header[3:4]
    fields = header.split(sep)
    if len(fields) <= 17:
        return ""
    repetition = fields[1][1:2] or b"~"
    value = fields[17].split(repetition, 1)[0]
    return value.decode("latin-1")


def decode_message_bytes(data: bytes) -> DecodedText:
    """Decode one message (or a batch) honouring MSH-18, falling back rather than failing."""
    if data.startswith(BOM):
        data = data[3:]
    declared = _declared_charset(data.lstrip(b"\r\n \t"))
    codec = python_codec(declared) if declared else None
    if codec is not None:
        try:
            return DecodedText(data.decode(codec), codec, declared, False)
        except UnicodeDecodeError:
            pass
    try:
        text = data.decode("utf-8")
        # Undeclared UTF-8 is the modern default; only a *wrong* declaration is a fallback.
        return DecodedText(text, "utf-8", declared, bool(declared))
    except UnicodeDecodeError:
        return DecodedText(data.decode("latin-1"), "latin-1", declared, True)
