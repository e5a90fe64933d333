"""Readable text from reports: RTF -> plain text, TX/FT assembly, ED payloads.

Radiology systems send the signed report as RTF inside an OBX of type ED (base64), or
as TX/FT lines. A clinician must be able to read it in any FHIR viewer, so next to the
original document we keep a plain-text rendering. The RTF reader below is deliberately
small: it walks the token stream, skips destinations that are not body text (font and
colour tables, style sheets, document info, pictures, ``\\*`` destinations, field
instructions), turns paragraph and line breaks into newlines, and decodes ``\\'hh``
bytes in the document's code page and ``\\uN`` characters. It never raises on
malformed input; whatever cannot be understood is left out.

>>> rtf_to_text(rb"{\\rtf1\\ansi{\\fonttbl{\\f0 Arial;}}{\\b FINDINGS:} Clear.\\par Caf\\'e9}")
'FINDINGS: Clear.\\nCafé'
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from ..errors import MappingError
from ..v2 import Encoding, Repetition, unescape

__all__ = [
    "EncodedData",
    "content_type",
    "decode_ed",
    "is_rtf",
    "normalise_text",
    "rtf_to_text",
    "text_value",
]

# Destinations whose content is not body text.
_SKIP_DESTINATIONS = frozenset(
    {
        "fonttbl", "colortbl", "stylesheet", "info", "pict", "object", "header", "headerl",
        "headerr", "headerf", "footer", "footerl", "footerr", "footerf", "fldinst",
        "listtable", "listoverridetable", "rsidtbl", "generator", "xmlnstbl", "themedata",
        "colorschememapping", "latentstyles", "datastore", "pgdsctbl", "revtbl", "filetbl",
        "private", "mmathPr", "shppict", "nonshppict", "bkmkstart", "bkmkend",
        "xe", "tc", "template", "docvar", "userprops", "operator", "author", "title",
        "subject", "keywords", "comment", "doccomm", "company", "category", "falt",
    }
)  # fmt: skip
# A field keeps its \fldrslt (the displayed result); its \fldinst (the code) is skipped.
_SPECIAL = {
    "par": "\n",
    "line": "\n",
    "sect": "\n\n",
    "page": "\n",
    "row": "\n",
    "tab": "\t",
    "cell": "\t",
    "emdash": "\u2014",
    "endash": "\u2013",
    "bullet": "\u2022",
    "lquote": "\u2018",
    "rquote": "\u2019",
    "ldblquote": "\u201c",
    "rdblquote": "\u201d",
    "emspace": " ",
    "enspace": " ",
    "qmspace": " ",
}
_CODEPAGES = {"ansi": "cp1252", "mac": "mac_roman", "pc": "cp437", "pca": "cp850"}
_TOKEN = re.compile(
    rb"\\([a-zA-Z]{1,32})(-?\d{1,10})? ?|\\'([0-9a-fA-F]{2})|\\(.)|([{}])|([\r\n]+)|([^\\{}\r\n]+)",
    re.DOTALL,
)


@dataclass
class _State:
    skip: bool = False
    uc: int = 1  # characters to drop after a \uN (its fallback rendering)


class _RtfReader:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.pending: bytearray = bytearray()
        self.codepage = "cp1252"
        self.stack: list[_State] = []
        self.state = _State()
        self.drop = 0  # fallback characters still to drop after \uN
        self.group_start = False  # the previous token opened a group
        self.high_surrogate = 0  # the first half of a \uN pair (characters beyond U+FFFF)

    def flush(self) -> None:
        if self.pending:
            try:
                self.out.append(self.pending.decode(self.codepage))
            except (UnicodeDecodeError, LookupError):
                self.out.append(self.pending.decode("cp1252", errors="replace"))
            self.pending.clear()

    def emit(self, text: str) -> None:
        if self.state.skip:
            return
        self.flush()
        self.out.append(text)

    def emit_unicode(self, code: int) -> None:
        """One \\uN character; UTF-16 surrogate pairs are joined, lone halves dropped."""
        if 0xD800 <= code <= 0xDBFF:
            self.high_surrogate = code
            return
        if 0xDC00 <= code <= 0xDFFF:
            if self.high_surrogate:
                self.emit(chr(0x10000 + ((self.high_surrogate - 0xD800) << 10) + code - 0xDC00))
            self.high_surrogate = 0
            return
        self.high_surrogate = 0
        if code <= 0x10FFFF:
            self.emit(chr(code))

    def emit_byte(self, value: int) -> None:
        if self.state.skip:
            return
        if self.drop:
            self.drop -= 1
            return
        self.pending.append(value)

    def emit_chars(self, text: str) -> None:
        if self.state.skip:
            return
        if self.drop:
            cut = min(self.drop, len(text))
            self.drop -= cut
            text = text[cut:]
        if text:
            self.emit(text)

    def control(self, word: str, param: int | None) -> None:
        state = self.state
        if word in _SKIP_DESTINATIONS and self.group_start:
            state.skip = True
            return
        if state.skip:
            return
        if word in _CODEPAGES:
            self.flush()
            self.codepage = _CODEPAGES[word]
        elif word == "ansicpg" and param is not None:
            self.flush()
            self.codepage = f"cp{param}"
        elif word == "uc" and param is not None:
            state.uc = max(param, 0)
        elif word == "u" and param is not None:
            self.emit_unicode(param + 65536 if param < 0 else param)
            self.drop = state.uc
        elif word in _SPECIAL:
            self.emit(_SPECIAL[word])
        elif word == "bin":
            pass  # binary data is handled by the caller

    def read(self, data: bytes) -> str:
        position = 0
        length = len(data)
        while position < length:
            match = _TOKEN.match(data, position)
            if match is None:  # a lone trailing backslash
                break
            position = match.end()
            word, param, hexbyte, symbol, brace, _newline, text = match.groups()
            opened = False
            if word is not None:
                number = int(param) if param is not None else None
                if word == b"bin" and number:
                    position += number
                    continue
                self.control(word.decode("ascii"), number)
            elif hexbyte is not None:
                self.emit_byte(int(hexbyte, 16))
            elif symbol is not None:
                self._symbol(symbol)
            elif brace == b"{":
                self.stack.append(self.state)
                self.state = _State(self.state.skip, self.state.uc)
                opened = True
            elif brace == b"}":
                self.flush()
                if self.stack:
                    self.state = self.stack.pop()
            elif text is not None:
                self._text(text)
            # newlines in the RTF source are not content
            self.group_start = opened
        self.flush()
        return "".join(self.out)

    def _symbol(self, symbol: bytes) -> None:
        if symbol == b"*":
            if self.group_start:
                self.state.skip = True
            return
        if symbol in (b"\\", b"{", b"}"):
            self.emit_chars(symbol.decode("ascii"))
        elif symbol == b"~":
            self.emit_chars("\u00a0")
        elif symbol == b"_":
            self.emit_chars("-")
        elif symbol in (b"\n", b"\r"):
            self.emit("\n")
        # \- (optional hyphen), \: (index subentry) and unknown symbols: nothing

    def _text(self, text: bytes) -> None:
        if self.state.skip:
            return
        if text.isascii():
            self.emit_chars(text.decode("ascii"))
            return
        # Raw 8-bit bytes (not allowed by the spec, sent anyway): the document's code page.
        for value in text:
            if value < 0x80 and not self.drop:
                self.flush()
                self.out.append(chr(value))
            else:
                self.emit_byte(value)


def is_rtf(data: bytes) -> bool:
    """Whether ``data`` is an RTF document (``{\\rtf`` after optional whitespace/BOM)."""
    return data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{\\rtf")


def normalise_text(text: str) -> str:
    """Newlines as ``\\n``, no trailing blanks, at most one empty line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    joined = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", joined).strip("\n")


def rtf_to_text(data: bytes | str) -> str:
    """The readable text of an RTF document (never raises; junk is left out)."""
    raw = data.encode("latin-1", errors="replace") if isinstance(data, str) else data
    return normalise_text(_RtfReader().read(raw)).strip()


def text_value(reps: list[Repetition], encoding: Encoding, charset: str) -> str:
    """ST/TX/FT repetitions as one text: repetitions are lines, escapes decoded.

    A component separator inside text (a sender that did not escape ``^``) is kept as
    text rather than cutting the value short.
    """
    lines = []
    for rep in reps:
        parts = [unescape(part, encoding, charset) for part in rep.components]
        lines.append(encoding.component.join(parts))
    return normalise_text("\n".join(lines))


# -- ED payloads ---------------------------------------------------------------------

_SUBTYPES = {
    "RTF": "application/rtf",
    "PDF": "application/pdf",
    "HTML": "text/html",
    "XML": "application/xml",
    "SGML": "text/sgml",
    "PLAIN": "text/plain",
    "TEXT": "text/plain",
    "JPEG": "image/jpeg",
    "JPG": "image/jpeg",
    "GIF": "image/gif",
    "PNG": "image/png",
    "TIFF": "image/tiff",
    "TIF": "image/tiff",
    "BMP": "image/bmp",
    "DICOM": "application/dicom",
    "OCTET-STREAM": "application/octet-stream",
    "POSTSCRIPT": "application/postscript",
    "MSWORD": "application/msword",
    "DOC": "application/msword",
    "DOCX": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "X-HL7-CDA-LEVEL-ONE": "application/x-hl7-cda-level-one+xml",
    "WAV": "audio/wav",
    "BASIC": "audio/basic",
}
_MIME_TOPS = frozenset({"application", "audio", "image", "text", "video", "multipart"})
_TYPE_DEFAULTS = {"TEXT": "text/plain", "TX": "text/plain", "FT": "text/plain", "IM": "image"}


def content_type(kind: str, subtype: str) -> str:
    """A MIME type from ED.2 (type of data, table 0191) and ED.3 (subtype, table 0291).

    >>> content_type("TEXT", "RTF"), content_type("application", "pdf"), content_type("IM", "JPEG")
    ('application/rtf', 'application/pdf', 'image/jpeg')
    """
    sub = subtype.strip().upper()
    if sub in _SUBTYPES:
        return _SUBTYPES[sub]
    if "/" in subtype and re.fullmatch(r"[\w.+-]+/[\w.+-]+", subtype.strip()):
        return subtype.strip().lower()  # a MIME type sent as is
    top = kind.strip().lower()
    if top in _MIME_TOPS and re.fullmatch(r"[\w.+-]+", subtype.strip()):
        return f"{top}/{subtype.strip().lower()}"
    default = _TYPE_DEFAULTS.get(kind.strip().upper())
    if default == "image" and re.fullmatch(r"[\w.+-]+", subtype.strip()):
        return f"image/{subtype.strip().lower()}"
    if default and default != "image":
        return default
    return "application/octet-stream"


@dataclass(frozen=True, slots=True)
class EncodedData:
    """An ED payload: MIME type and the raw bytes (``base64`` gives them for FHIR)."""

    content_type: str
    data: bytes

    @property
    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")


def decode_ed(rep: Repetition, charset: str, *, location: str) -> EncodedData | None:
    """ED (source^type^subtype^encoding^data) -> bytes, or None when there is no data.

    ED.4 ``Base64`` is checked to be base64, ``Hex`` converted, ``A`` (or empty) taken
    as text in the message's character set.

    Raises:
        MappingError: the data is not what ED.4 says it is (``location`` + ``.5``).
    """
    payload = rep[5]
    if not payload:
        return None
    encoding = rep[4].strip().upper()
    if encoding in ("BASE64", "B64"):
        compact = re.sub(r"\s+", "", payload)
        try:
            data = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MappingError("ED data is not valid base64", location=f"{location}.5") from exc
    elif encoding == "HEX":
        try:
            data = bytes.fromhex(re.sub(r"\s+", "", payload))
        except ValueError as exc:
            raise MappingError("ED data is not valid hex", location=f"{location}.5") from exc
    elif encoding in ("", "A", "ASCII", "NONE"):
        data = payload.encode(charset, errors="replace")
    else:
        raise MappingError(f"unknown ED encoding {rep[4]!r}", location=f"{location}.4")
    return EncodedData(content_type(rep[2], rep[3]), data)
