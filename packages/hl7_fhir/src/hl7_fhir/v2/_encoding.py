"""Delimiters of one message and the escaping rules that follow from them.

HL7 v2 lets every message choose its own delimiters in MSH-1 and MSH-2, so escaping is
always done against an :class:`Encoding`, never against hard-coded characters.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["DEFAULT_ENCODING", "Encoding", "escape", "unescape"]

_FORMATTING_DROPPED = frozenset({"H", "N", ".fi", ".nf", ".ce"})


@dataclass(frozen=True, slots=True)
class Encoding:
    """The delimiters a message declares in MSH-1 and MSH-2.

    ``truncation`` is the v2.7+ fifth encoding character (usually ``#``); empty before.
    """

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = ""
    _escape_table: dict[int, str] = dataclasses.field(init=False, repr=False, compare=False)
    _specials: str = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        e = self.escape
        table = {
            ord(e): f"{e}E{e}",
            ord(self.field): f"{e}F{e}",
            ord(self.component): f"{e}S{e}",
            ord(self.subcomponent): f"{e}T{e}",
            ord(self.repetition): f"{e}R{e}",
            ord("\r"): f"{e}X0D{e}",
            ord("\n"): f"{e}X0A{e}",
        }
        if self.truncation:
            table[ord(self.truncation)] = f"{e}P{e}"
        object.__setattr__(self, "_escape_table", table)
        object.__setattr__(self, "_specials", "".join(chr(c) for c in table))

    @property
    def encoding_characters(self) -> str:
        """MSH-2 as it is written in the header (``^~\\&`` by default)."""
        return self.component + self.repetition + self.escape + self.subcomponent + self.truncation

    @classmethod
    def from_msh2(cls, field_separator: str, msh2: str) -> Encoding:
        """Build from MSH-1 and MSH-2; missing trailing characters take their defaults.

        Raises:
            ValueError: the characters are not distinct or clash with the field separator.
        """
        defaults = "^~\\&"
        chars = msh2[:5]
        component, repetition, escape_char, subcomponent = (
            (chars[i] if i < len(chars) else defaults[i]) for i in range(4)
        )
        truncation = chars[4] if len(chars) > 4 else ""
        used = [field_separator, component, repetition, escape_char, subcomponent]
        if truncation:
            used.append(truncation)
        if len(set(used)) != len(used):
            raise ValueError(f"delimiters are not distinct: {''.join(used)!r}")
        if any(c.isalnum() or c in "\r\n" for c in used):
            raise ValueError(f"delimiters must not be letters, digits or line breaks: {msh2!r}")
        return cls(field_separator, component, repetition, escape_char, subcomponent, truncation)

    def escape_text(self, text: str) -> str:
        """Escape ``text`` so it can stand as one leaf value in this encoding."""
        for char in self._specials:
            if char in text:
                return text.translate(self._escape_table)
        return text


DEFAULT_ENCODING = Encoding()


def escape(text: str, encoding: Encoding = DEFAULT_ENCODING) -> str:
    r"""Escape delimiters and line breaks in ``text``.

    >>> escape("Flat 2|B & C")
    'Flat 2\\F\\B \\T\\ C'
    """
    return encoding.escape_text(text)


def unescape(text: str, encoding: Encoding = DEFAULT_ENCODING, charset: str = "utf-8") -> str:
    r"""Decode escape sequences in a leaf value.

    Handles ``\F\ \S\ \T\ \R\ \E\ \P\``, ``\Xhh..\`` (bytes in ``charset``),
    ``\.br\`` and ``\.sp n\`` (line breaks); drops highlighting and the other
    formatting commands; keeps character-set switches (``\C..\``, ``\M..\``),
    local ``\Z..\`` sequences and anything malformed verbatim rather than guess.

    >>> unescape(r"Normal\X0D\\X0A\Lungs clear")
    'Normal\r\nLungs clear'
    """
    esc = encoding.escape
    start = text.find(esc)
    if start < 0:
        return text
    out: list[str] = []
    pos = 0
    length = len(text)
    while start >= 0:
        end = text.find(esc, start + 1)
        if end < 0:
            break
        out.append(text[pos:start])
        out.append(_decode_sequence(text[start + 1 : end], encoding, charset))
        pos = end + 1
        start = text.find(esc, pos) if pos < length else -1
    out.append(text[pos:])
    return "".join(out)


def _decode_sequence(seq: str, encoding: Encoding, charset: str) -> str:
    """Translate the inside of one escape sequence (between two escape characters)."""
    simple = {
        "F": encoding.field,
        "S": encoding.component,
        "T": encoding.subcomponent,
        "R": encoding.repetition,
        "E": encoding.escape,
        "P": encoding.truncation or "#",
    }
    if seq in simple:
        return simple[seq]
    esc = encoding.escape
    if seq[:1] == "X" and len(seq) > 1 and len(seq) % 2 == 1:
        try:
            raw = bytes.fromhex(seq[1:])
        except ValueError:
            return f"{esc}{seq}{esc}"
        try:
            return raw.decode(charset)
        except (UnicodeDecodeError, LookupError):
            return raw.decode("latin-1")
    if seq == ".br":
        return "\n"
    if seq.startswith(".sp"):
        count = seq[3:].strip().lstrip("+")
        return "\n" * (int(count) if count.isdigit() else 1)
    if seq in _FORMATTING_DROPPED or seq.startswith((".in", ".ti", ".sk")):
        return ""
    return f"{esc}{seq}{esc}"
