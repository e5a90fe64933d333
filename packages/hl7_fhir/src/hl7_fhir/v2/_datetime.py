"""HL7 v2 dates and times (DT, TM, DTM/TS) as Python values that remember precision.

``19900101`` is a day, not midnight; ``202508190930`` has no seconds and no offset, and
pretending otherwise corrupts clinical data. So the parsed value carries its precision
and only carries a ``tzinfo`` when the sender wrote an offset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import IntEnum

from ..errors import ParseError

__all__ = ["HL7DateTime", "Precision", "format_datetime", "parse_datetime"]

_DTM = re.compile(
    r"^(?P<year>\d{4})(?P<month>\d{2})?(?P<day>\d{2})?(?P<hour>\d{2})?(?P<minute>\d{2})?"
    r"(?P<second>\d{2})?(?:\.(?P<fraction>\d{1,6}))?(?P<offset>[+-]\d{4})?$"
)


class Precision(IntEnum):
    """How much of a date/time the sender actually wrote."""

    YEAR = 1
    MONTH = 2
    DAY = 3
    HOUR = 4
    MINUTE = 5
    SECOND = 6
    FRACTION = 7


@dataclass(frozen=True, slots=True)
class HL7DateTime:
    """A parsed HL7 date/time.

    ``value`` is naive unless the sender wrote an offset; ``precision`` tells which
    parts of it are real (the rest are filled with their minimum).
    ``fraction_digits`` keeps how many decimals of seconds were sent.
    """

    value: datetime
    precision: Precision
    fraction_digits: int = 0

    @property
    def has_offset(self) -> bool:
        """True when the sender wrote a UTC offset."""
        return self.value.tzinfo is not None

    @property
    def date(self) -> date:
        """The calendar date part."""
        return self.value.date()

    def isoformat(self) -> str:
        """ISO 8601 / FHIR text cut to the precision that was sent.

        >>> parse_datetime("199001").isoformat()
        '1990-01'
        >>> parse_datetime("20250819093000+1000").isoformat()
        '2025-08-19T09:30:00+10:00'
        """
        v = self.value
        p = self.precision
        if p == Precision.YEAR:
            return f"{v.year:04d}"
        if p == Precision.MONTH:
            return f"{v.year:04d}-{v.month:02d}"
        if p == Precision.DAY:
            return f"{v.year:04d}-{v.month:02d}-{v.day:02d}"
        text = f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}"
        if p >= Precision.SECOND:
            text += f":{v.second:02d}"
        if p == Precision.FRACTION and self.fraction_digits:
            text += "." + f"{v.microsecond:06d}"[: self.fraction_digits]
        if v.tzinfo is not None:
            text += _iso_offset(v.utcoffset())
        return text


def _iso_offset(delta: timedelta | None) -> str:
    if delta is None:
        return ""
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def parse_datetime(text: str) -> HL7DateTime | None:
    """Parse a DT or DTM/TS value; ``None`` for an empty value.

    A TS composite (``20250101^S``, pre-2.6 degree of precision) uses its first component.

    Raises:
        ParseError: the text is not an HL7 date/time.
    """
    text = text.strip()
    if "^" in text:
        text = text.split("^", 1)[0]
    if not text or text == '""':
        return None
    match = _DTM.match(text)
    if match is None:
        raise ParseError(f"not an HL7 date/time: {text!r}")
    parts = match.groupdict()
    precision = Precision.YEAR
    for name, level in (
        ("month", Precision.MONTH),
        ("day", Precision.DAY),
        ("hour", Precision.HOUR),
        ("minute", Precision.MINUTE),
        ("second", Precision.SECOND),
    ):
        if parts[name] is None:
            break
        precision = level
    fraction = parts["fraction"] or ""
    if fraction:
        if precision < Precision.SECOND:
            raise ParseError(f"fraction of a second without seconds: {text!r}")
        precision = Precision.FRACTION
    tz = None
    if parts["offset"]:
        off = parts["offset"]
        hours, minutes = int(off[1:3]), int(off[3:5])
        if hours > 14 or minutes > 59:
            raise ParseError(f"offset out of range: {text!r}")
        delta = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-delta if off[0] == "-" else delta)
    try:
        value = datetime(
            int(parts["year"]),
            int(parts["month"] or 1),
            int(parts["day"] or 1),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            int(fraction.ljust(6, "0")) if fraction else 0,
            tzinfo=tz,
        )
    except ValueError as exc:
        raise ParseError(f"not a valid date/time: {text!r} ({exc})") from exc
    return HL7DateTime(value, precision, len(fraction))


def format_datetime(value: datetime | date | time, precision: Precision | None = None) -> str:
    """Write a Python date/time as HL7 DTM text, with the offset when it has one.

    >>> format_datetime(datetime(2025, 8, 19, 9, 30))
    '20250819093000'
    """
    if isinstance(value, datetime):
        text = value.strftime("%Y%m%d%H%M%S")
        if precision is not None:
            text = text[: _WIDTHS[min(precision, Precision.SECOND)]]
        elif value.microsecond:
            text += f".{value.microsecond // 1000:03d}"
        if precision == Precision.FRACTION:
            text += f".{value.microsecond // 1000:03d}"
        offset = value.utcoffset()
        if offset is not None:
            text += _iso_offset(offset).replace(":", "")
        return text
    if isinstance(value, date):
        text = value.strftime("%Y%m%d")
        return text[: _WIDTHS[min(precision or Precision.DAY, Precision.DAY)]]
    return value.strftime("%H%M%S")


_WIDTHS = {
    Precision.YEAR: 4,
    Precision.MONTH: 6,
    Precision.DAY: 8,
    Precision.HOUR: 10,
    Precision.MINUTE: 12,
    Precision.SECOND: 14,
}
