"""Segments, fields and repetitions: thin views that split text only when touched.

A segment keeps its original text until something reads a field; a field is split into
repetitions and components only when those are asked for. Values come back unescaped
when they are leaves, and as ER7 text (escapes kept) when they still hold delimiters,
so a composite can always be split again without ambiguity.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime, time
from typing import TypeAlias

from ..errors import PathError
from ._datetime import format_datetime
from ._encoding import Encoding, unescape

__all__ = ["Field", "Repetition", "Segment", "Value"]

Scalar: TypeAlias = str | int | float | datetime | date | time | None
Value: TypeAlias = Scalar | Sequence["Value"]


def _leaf(text: str, encoding: Encoding, separators: str, charset: str) -> str:
    """Unescape ``text`` unless it still contains one of ``separators``."""
    if encoding.escape not in text:
        return text
    for sep in separators:
        if sep in text:
            return text
    return unescape(text, encoding, charset)


def _pick(parts: list[str], index: int) -> str:
    return parts[index - 1] if index <= len(parts) else ""


def _scalar_text(value: Scalar, encoding: Encoding) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return encoding.escape_text(value)
    if isinstance(value, datetime | date | time):
        return format_datetime(value)
    return str(value)


def compose(value: Value, level: int, encoding: Encoding) -> str:
    """ER7 text for ``value`` written at ``level`` (0 field, 1 repetition, 2 component, 3 sub).

    Strings are escaped. A list at field level is repetitions; a tuple (or list) below
    that is the parts of the next level down: ``("Doe", "John")`` is two components.
    """
    if isinstance(value, Sequence) and not isinstance(value, str):
        if level == 0 and isinstance(value, list):
            return encoding.repetition.join(compose(v, 1, encoding) for v in value)
        if level == 0:
            level = 1
        if level >= 3:
            raise PathError("a subcomponent cannot hold further parts")
        sep = encoding.component if level == 1 else encoding.subcomponent
        return sep.join(compose(v, level + 1, encoding) for v in value)
    return _scalar_text(value, encoding)


class Repetition:
    """One repetition of a field: components by 1-based index, subcomponents by tuple.

    >>> rep = Segment("PID|1||P001^^^AXIS&1.2.3&ISO^MR").field(3).repetitions[0]
    >>> rep[1], rep[4], rep[4, 2]
    ('P001', 'AXIS&1.2.3&ISO', '1.2.3')
    """

    __slots__ = ("_charset", "_encoding", "raw")

    def __init__(self, raw: str, encoding: Encoding, charset: str = "utf-8") -> None:
        self.raw = raw
        self._encoding = encoding
        self._charset = charset

    def __getitem__(self, key: int | tuple[int, int]) -> str:
        enc = self._encoding
        if isinstance(key, tuple):
            component, sub = key
            return unescape(
                _pick(_pick(self.raw.split(enc.component), component).split(enc.subcomponent), sub),
                enc,
                self._charset,
            )
        text = _pick(self.raw.split(enc.component), key)
        return _leaf(text, enc, enc.subcomponent, self._charset)

    @property
    def components(self) -> list[str]:
        """The components as ER7 text (escapes kept)."""
        return self.raw.split(self._encoding.component)

    @property
    def value(self) -> str:
        """The repetition unescaped when it is a leaf, else as ER7 text."""
        enc = self._encoding
        return _leaf(self.raw, enc, enc.component + enc.subcomponent, self._charset)

    def __str__(self) -> str:
        return self.raw

    def __repr__(self) -> str:
        return f"Repetition({self.raw!r})"

    def __bool__(self) -> bool:
        return bool(self.raw)


class Field:
    """A field with all its repetitions; indexing reads the first repetition."""

    __slots__ = ("_charset", "_encoding", "raw")

    def __init__(self, raw: str, encoding: Encoding, charset: str = "utf-8") -> None:
        self.raw = raw
        self._encoding = encoding
        self._charset = charset

    @property
    def repetitions(self) -> list[Repetition]:
        """Every repetition, empty list for an empty field."""
        if not self.raw:
            return []
        enc = self._encoding
        return [Repetition(r, enc, self._charset) for r in self.raw.split(enc.repetition)]

    def __iter__(self) -> Iterator[Repetition]:
        return iter(self.repetitions)

    def __getitem__(self, key: int | tuple[int, int]) -> str:
        first = self.raw.split(self._encoding.repetition, 1)[0]
        return Repetition(first, self._encoding, self._charset)[key]

    @property
    def value(self) -> str:
        """The field unescaped when it is a leaf, else as ER7 text."""
        enc = self._encoding
        return _leaf(
            self.raw, enc, enc.repetition + enc.component + enc.subcomponent, self._charset
        )

    def __str__(self) -> str:
        return self.raw

    def __repr__(self) -> str:
        return f"Field({self.raw!r})"

    def __bool__(self) -> bool:
        return bool(self.raw)


class Segment:
    """One segment. Fields are numbered as the standard numbers them (MSH-1 is the
    field separator itself, so MSH-9 is the message type).
    """

    __slots__ = ("_charset", "_encoding", "_fields", "_text")

    def __init__(self, text: str, encoding: Encoding | None = None, charset: str = "utf-8") -> None:
        if encoding is None:
            encoding = Encoding() if not text.startswith("MSH") else _header_encoding(text)
        self._text: str | None = text
        self._fields: list[str] | None = None
        self._encoding = encoding
        self._charset = charset

    @classmethod
    def new(cls, name: str, encoding: Encoding, charset: str = "utf-8") -> Segment:
        """An empty segment called ``name`` (an MSH gets its MSH-2 filled in)."""
        if name == "MSH":
            return cls(f"MSH{encoding.field}{encoding.encoding_characters}", encoding, charset)
        return cls(name, encoding, charset)

    def _split(self) -> list[str]:
        fields = self._fields
        if fields is None:
            assert self._text is not None
            fields = self._fields = self._text.split(self._encoding.field)
        return fields

    @property
    def name(self) -> str:
        """The three-character segment id, e.g. ``PID``."""
        if self._text is not None:
            return self._text[:3]
        return self._split()[0]

    def _index(self, field: int) -> int:
        if self.name == "MSH":
            return field - 1
        return field

    def __len__(self) -> int:
        """The highest field number present."""
        count = len(self._split()) - 1
        return count + 1 if self.name == "MSH" else count

    def field_text(self, field: int) -> str:
        """Field ``field`` as ER7 text, all repetitions, escapes kept."""
        if field == 1 and self.name == "MSH":
            return self._encoding.field
        fields = self._split()
        index = self._index(field)
        return fields[index] if 0 < index < len(fields) else ""

    def field(self, field: int) -> Field:
        """Field ``field`` as a :class:`Field` view."""
        return Field(self.field_text(field), self._encoding, self._charset)

    def get(
        self,
        field: int,
        repetition: int | None = None,
        component: int | None = None,
        subcomponent: int | None = None,
    ) -> str:
        """The value at a position; ``""`` when absent. Leaves come back unescaped."""
        raw = self.field_text(field)
        if not raw:
            return ""
        enc = self._encoding
        if field <= 2 and self.name == "MSH":
            return raw
        if repetition is None and component is None:
            return _leaf(raw, enc, enc.repetition + enc.component + enc.subcomponent, self._charset)
        rep = _pick(raw.split(enc.repetition), repetition or 1)
        if component is None:
            return _leaf(rep, enc, enc.component + enc.subcomponent, self._charset)
        comp = _pick(rep.split(enc.component), component)
        if subcomponent is None:
            return _leaf(comp, enc, enc.subcomponent, self._charset)
        return unescape(_pick(comp.split(enc.subcomponent), subcomponent), enc, self._charset)

    def __getitem__(self, field: int) -> str:
        return self.get(field)

    def set(
        self,
        field: int,
        value: Value,
        repetition: int | None = None,
        component: int | None = None,
        subcomponent: int | None = None,
    ) -> None:
        """Write ``value`` (escaped) at a position, growing the segment as needed.

        Raises:
            PathError: MSH-1/MSH-2 (they define the delimiters) or a malformed value.
        """
        if field <= 2 and self.name == "MSH":
            raise PathError("MSH-1 and MSH-2 hold the delimiters; build a new message instead")
        enc = self._encoding
        fields = self._split()
        index = self._index(field)
        if index < 1:
            raise PathError(f"field numbers start at 1, got {field}")
        if len(fields) <= index:
            fields.extend([""] * (index + 1 - len(fields)))
        if repetition is None and component is None:
            fields[index] = compose(value, 0, enc)
        else:
            reps = fields[index].split(enc.repetition)
            r = (repetition or 1) - 1
            if len(reps) <= r:
                reps.extend([""] * (r + 1 - len(reps)))
            if component is None:
                reps[r] = compose(value, 1, enc)
            else:
                comps = reps[r].split(enc.component)
                c = component - 1
                if len(comps) <= c:
                    comps.extend([""] * (c + 1 - len(comps)))
                if subcomponent is None:
                    comps[c] = compose(value, 2, enc)
                else:
                    subs = comps[c].split(enc.subcomponent)
                    s = subcomponent - 1
                    if len(subs) <= s:
                        subs.extend([""] * (s + 1 - len(subs)))
                    subs[s] = compose(value, 3, enc)
                    comps[c] = enc.subcomponent.join(subs)
                reps[r] = enc.component.join(comps)
            fields[index] = enc.repetition.join(reps)
        self._text = None

    def __setitem__(self, field: int, value: Value) -> None:
        self.set(field, value)

    def to_er7(self) -> str:
        """The segment as ER7 text (no terminator)."""
        if self._text is None:
            fields = self._split()
            while (
                len(fields) > 1
                and fields[-1] == ""
                and not (self.name == "MSH" and len(fields) <= 2)
            ):
                fields.pop()
            self._text = self._encoding.field.join(fields)
        return self._text

    def __str__(self) -> str:
        return self.to_er7()

    def __repr__(self) -> str:
        text = self.to_er7()
        return f"Segment({text[:60] + '...' if len(text) > 60 else text!r})"


def _header_encoding(text: str) -> Encoding:
    if len(text) < 4:
        return Encoding()
    end = text.find(text[3], 4)
    return Encoding.from_msh2(text[3], text[4:end] if end > 0 else text[4:])
