"""When an SIU appointment is: start, end and duration from TQ1, SCH-11, SCH-9/10 and
the resource segments (AIS, AIG, AIL, AIP), in FHIR ``instant`` form."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ...errors import MappingError, ParseError
from ...v2 import Message, Segment, parse_datetime
from .._context import MappingContext, location

__all__ = [
    "AI_FIELDS",
    "Groups",
    "Resource",
    "appointment_minutes",
    "appointment_times",
    "instant",
    "moment",
    "resource_timing",
    "segment_groups",
]

# Where each resource segment keeps: start, start offset, duration, filler status.
AI_FIELDS = {
    "AIS": (4, 5, 7, 10),
    "AIG": (8, 9, 11, 14),
    "AIL": (6, 7, 9, 12),
    "AIP": (6, 7, 9, 12),
}
# Statuses that may leave start/end out (FHIR invariant app-3).
_TIMELESS = frozenset({"proposed", "cancelled", "waitlist"})
# Duration units (ISO+/ANSI, UCUM and their names, compared upper-case) -> minutes.
_UNIT_MINUTES = {
    **dict.fromkeys(("S", "SEC", "SECS", "SECOND", "SECONDS"), 1 / 60),
    **dict.fromkeys(("MIN", "MINS", "MINUTE", "MINUTES"), 1.0),
    **dict.fromkeys(("H", "HR", "HRS", "HOUR", "HOURS"), 60.0),
    **dict.fromkeys(("D", "DAY", "DAYS"), 1440.0),
    **dict.fromkeys(("W", "WK", "WEEK", "WEEKS"), 10080.0),
}
# TQ.3 duration: ``M30`` (unit letter + number) or ``30``, ``2 hours``.
_TQ_LETTER = {"S": 1 / 60, "M": 1.0, "H": 60.0, "D": 1440.0, "W": 10080.0}
_TQ_DURATION = re.compile(r"^([SMHDW])(\d+)$|^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$")


@dataclass(frozen=True, slots=True)
class Resource:
    """An AIS/AIG/AIL/AIP segment, its occurrence (for locations) and message position."""

    segment: Segment
    occurrence: int
    position: int


@dataclass
class Groups:
    """The message's resource segments by name, and each NTE with the resource it follows."""

    resources: dict[str, list[Resource]] = field(default_factory=dict)
    notes: list[tuple[Segment, Resource | None]] = field(default_factory=list)

    def of(self, *names: str) -> list[Resource]:
        """The resource segments of these names, in message order."""
        found = [r for name in names for r in self.resources.get(name, [])]
        return sorted(found, key=lambda r: r.position)


def segment_groups(message: Message) -> Groups:
    """Resource segments in order, and each NTE with the resource it follows (if any)."""
    groups = Groups()
    counts: dict[str, int] = {}
    owner: Resource | None = None
    for position, seg in enumerate(message):
        counts[seg.name] = counts.get(seg.name, 0) + 1
        if seg.name in AI_FIELDS:
            owner = Resource(seg, counts[seg.name], position)
            groups.resources.setdefault(seg.name, []).append(owner)
        elif seg.name == "NTE":
            groups.notes.append((seg, owner))
        else:
            owner = None
    return groups


def moment(context: MappingContext, text: str, where: str) -> datetime | None:
    """An HL7 date/time as an aware datetime (the profile's zone when sent without one).

    Raises:
        MappingError: not a date/time; ``location`` is ``where``.
    """
    try:
        value = parse_datetime(text)
    except ParseError as exc:
        raise MappingError(f"not an HL7 date/time: {text!r}", location=where) from exc
    if value is None:
        return None
    found = value.value
    return found if value.has_offset else found.replace(tzinfo=context.profile.timezone)


def instant(value: datetime) -> str:
    """A FHIR ``instant`` (Appointment.start/end are instants: seconds and a zone)."""
    text = value.isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _minutes(amount: str, units: tuple[str, str], where: str, units_at: str) -> float | None:
    """A duration in minutes; no units means minutes (HL7 v2 chapter 10's default).

    ``units`` are the unit's code and its text (``min``, ``Minutes``): either may match.
    """
    if not amount:
        return None
    try:
        value = float(amount)
    except ValueError:
        raise MappingError(f"not a number: {amount!r}", location=where) from None
    names = [n.strip().upper() for n in units if n.strip()]
    for name in names:
        if name in _UNIT_MINUTES:
            return value * _UNIT_MINUTES[name]
    if names:
        raise MappingError(f"unknown duration unit {units[0] or units[1]!r}", location=units_at)
    return value


def _field_minutes(seg: Segment, occurrence: int, field_number: int) -> float | None:
    """A duration field and its units field after it (``AIS-7``/``AIS-8``, ``SCH-9``/``-10``)."""
    return _minutes(
        seg.get(field_number, 1, 1),
        (seg.get(field_number + 1, 1, 1), seg.get(field_number + 1, 1, 2)),
        location(seg, occurrence, field_number),
        location(seg, occurrence, field_number + 1),
    )


def appointment_minutes(context: MappingContext, sch: Segment) -> int | None:
    """minutesDuration: SCH-9 with SCH-10 units, else TQ1-13 (CQ), else SCH-11.3 (``M30``)."""
    found = _field_minutes(sch, 1, 9)
    tq1 = context.message.segment("TQ1")
    if found is None and tq1 is not None:
        units = (tq1.get(13, 1, 2, 1), tq1.get(13, 1, 2, 2))
        found = _minutes(tq1.get(13, 1, 1), units, "TQ1-13.1", "TQ1-13.2")
    match = _TQ_DURATION.match(sch.get(11, 1, 3).strip()) if found is None else None
    if match and match.group(1):
        found = float(match.group(2)) * _TQ_LETTER[match.group(1)]
    elif match and (not match.group(4) or match.group(4).upper() in _UNIT_MINUTES):
        found = float(match.group(3)) * _UNIT_MINUTES.get(match.group(4).upper(), 1.0)
    whole = round(found) if found is not None else 0
    return whole if whole >= 1 else None  # a positiveInt


def resource_timing(
    context: MappingContext, resource: Resource, anchor: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """A resource segment's own start (or its offset from ``anchor``) and start + duration."""
    seg, occurrence = resource.segment, resource.occurrence
    start_field, offset_field, duration_field, _ = AI_FIELDS[seg.name]
    start = moment(context, seg.get(start_field, 1, 1), location(seg, occurrence, start_field))
    offset = _field_minutes(seg, occurrence, offset_field) if anchor else None
    if start is None and anchor is not None and offset is not None:
        start = anchor + timedelta(minutes=offset)
    duration = _field_minutes(seg, occurrence, duration_field)
    end = start + timedelta(minutes=duration) if start and duration else None
    return start, end


def appointment_times(
    context: MappingContext, sch: Segment, groups: Groups, minutes: int | None, status: str
) -> tuple[datetime | None, datetime | None]:
    """Start and end from one source: TQ1-7/8, else SCH-11.4/5, else the first resource
    segment with a start (AIS, then AIL, AIP, AIG) and its duration.

    FHIR wants both or neither (app-2), and both unless proposed/cancelled/waitlist
    (app-3): a missing end is start + ``minutes``; failing that, an error.

    Raises:
        MappingError: a bad date anywhere, an end before the start, or a status that
            needs times without them.
    """
    sources: list[tuple[datetime | None, datetime | None, str]] = []
    tq1 = context.message.segment("TQ1")
    if tq1 is not None:
        start = moment(context, tq1.get(7, 1, 1), "TQ1-7")
        sources.append((start, moment(context, tq1.get(8, 1, 1), "TQ1-8"), "TQ1-7"))
    start = moment(context, sch.get(11, 1, 4), "SCH-11.4")
    sources.append((start, moment(context, sch.get(11, 1, 5), "SCH-11.5"), "SCH-11.4"))
    for name in ("AIS", "AIL", "AIP", "AIG"):
        for resource in groups.of(name):
            where = location(resource.segment, resource.occurrence, AI_FIELDS[name][0])
            sources.append((*resource_timing(context, resource, None), where))
    for begin, end, where in sources:
        if begin is None:
            continue
        if end is None and minutes:
            end = begin + timedelta(minutes=minutes)
        if end is not None and end < begin:
            raise MappingError("the appointment ends before it starts", location=where)
        if end is None and status not in _TIMELESS:
            raise MappingError(f"a {status} appointment needs an end or a duration", location=where)
        return (begin, end) if end is not None else (None, None)
    if status not in _TIMELESS:
        raise MappingError(
            f"a {status} appointment needs a start (TQ1-7, SCH-11.4)", location="SCH-11"
        )
    return None, None
