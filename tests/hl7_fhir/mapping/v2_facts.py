"""Facts of an HL7 v2 message, to compare a message with its v2 -> FHIR -> v2 round trip.

Only what the round trip promises to keep is read, and each fact is normalised the way
the standard allows it to vary: date-times compare as instants (a value without an
offset is read in UTC, the default profile's zone), numbers numerically, identifiers
sent without an assigning authority belong to the sending facility (that is the system
v2 -> FHIR gives them), a narrative split over several TX/FT OBX segments compares as
its lines.
"""

from __future__ import annotations

import base64
from datetime import UTC
from typing import Any

from hl7_fhir import v2

Facts = dict[str, Any]
TEXT_TYPES = frozenset({"ST", "TX", "FT"})
ACCESSION_PATHS = ("OBR-18", "ORC-4", "OBR-3", "OBR-2")
CODED_TYPES = frozenset({"CE", "CWE", "CNE"})
# Priority words some senders write instead of table 0027/0485 codes.
PRIORITY_WORDS = {"ROUTINE": "R", "STAT": "S", "ASAP": "A"}


def instant(text: str) -> str:
    """An HL7 date/time as comparable text: an instant in UTC, a date as written."""
    value = v2.parse_datetime(text)
    if value is None:
        return ""
    if value.precision <= v2.Precision.DAY:
        return value.isoformat()
    moment = value.value if value.has_offset else value.value.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def number(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text.strip()


def _scope(msg: v2.Message) -> str:
    return msg["MSH-4.1"] or msg["MSH-3.1"]


def _authority(rep: v2.Repetition, component: int, msg: v2.Message) -> str:
    return rep[component, 1] or rep[component, 2] or _scope(msg)


def patient_facts(msg: v2.Message) -> Facts:
    pid = msg.segment("PID")
    assert pid is not None
    identifiers = set()
    for number_ in (3, 2, 4):
        for rep in pid.field(number_):
            if rep[1]:
                identifiers.add((rep[1], _authority(rep, 4, msg), rep[5]))
    names = set()
    for rep in pid.field(5):
        suffixes = frozenset(s for s in (rep[4], rep[6]) if s)
        names.add((rep[1, 1], rep[2], rep[3], rep[5], suffixes))
    addresses = {tuple(rep[n] for n in (1, 2, 3, 4, 5, 6, 7)) for rep in pid.field(11)}
    phones = set()
    for field_number in (13, 14):
        for rep in pid.field(field_number):
            email = rep[4] or (rep[1] if rep[2] == "NET" else "")
            phones.add((field_number, rep[1] if not email else "", email, rep[3] == "CP"))
    return {
        "identifiers": identifiers,
        "names": names,
        "birth_date": pid.get(7)[:8],
        "gender": pid.get(8),
        "addresses": addresses,
        "phones": phones,
    }


def _ei(msg: v2.Message, segment: v2.Segment | None, field_number: int) -> tuple[str, str]:
    if segment is None or not segment.get(field_number, 1, 1):
        return ("", "")
    rep = segment.field(field_number).repetitions[0]
    return (rep[1], rep[2] or rep[3] or _scope(msg))


def _accession(msg: v2.Message, occurrence: int, where: str) -> str:
    obr, orc = msg.segment("OBR", occurrence), msg.segment("ORC", occurrence)
    for path in ACCESSION_PATHS if where == "auto" else (where,):
        segment = obr if path.startswith("OBR") else orc
        number_ = int(path.split("-")[1])
        if segment is not None and segment.get(number_, 1, 1):
            return segment.get(number_, 1, 1)
    return ""


def _priority(obr: v2.Segment, orc: v2.Segment | None) -> str:
    candidates = [obr.get(5), obr.get(27, 1, 6)]
    if orc is not None:
        candidates.append(orc.get(7, 1, 6))
    found = next((c for c in candidates if c), "")
    return PRIORITY_WORDS.get(found.upper(), found)


def order_facts(msg: v2.Message, accession: str = "auto") -> list[Facts]:
    """Per OBR: placer, filler, accession (at the profile's path), procedure code,
    priority, order control (a result without ORC is a result: RE)."""
    orders = []
    for occurrence, obr in enumerate(msg.segments("OBR"), start=1):
        orc = msg.segment("ORC", occurrence)
        placer = _ei(msg, obr, 2) if obr.get(2) else _ei(msg, orc, 2)
        filler = _ei(msg, obr, 3) if obr.get(3) else _ei(msg, orc, 3)
        orders.append(
            {
                "placer": placer,
                "filler": filler,
                "accession": _accession(msg, occurrence, accession),
                "code": (obr.get(4, 1, 1), obr.get(4, 1, 3).upper()),
                "priority": _priority(obr, orc),
                "order_control": orc.get(1) if orc is not None else _default_control(msg),
            }
        )
    return orders


def _default_control(msg: v2.Message) -> str:
    return "RE" if msg.message_type == "ORU" else ""


def _value(obx: v2.Segment) -> Any:
    kind = obx.get(2)
    if kind == "NM":
        return number(obx.get(5, 1))
    if kind == "SN":
        return (obx.get(5, 1, 1), number(obx.get(5, 1, 2)), obx.get(5, 1, 3), obx.get(5, 1, 4))
    if kind in CODED_TYPES:
        return (obx.get(5, 1, 1), obx.get(5, 1, 3).upper())
    if kind in ("DTM", "TS", "DT"):
        return instant(obx.get(5, 1, 1))
    return obx.get(5)


def _lines(obx: v2.Segment) -> list[str]:
    lines: list[str] = []
    for rep in obx.field(5):
        lines += rep.value.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return lines


def observation_facts(msg: v2.Message) -> list[Facts]:
    """Per OBX (consecutive text OBX of one code merged into one narrative); an OBX
    without OBX-14 was observed at its OBR-7."""
    found: list[Facts] = []
    observed = ""
    for segment in msg.segments():
        if segment.name == "OBR":
            observed = segment.get(7, 1, 1)
        if segment.name != "OBX":
            continue
        obx = segment
        kind = "coded" if obx.get(2) in CODED_TYPES else obx.get(2)
        code = (obx.get(3, 1, 1), obx.get(3, 1, 3).upper())
        common = {
            "status": obx.get(11),
            "units": obx.get(6, 1, 1),
            "range": obx.get(7),
            "flags": frozenset(r.value for r in obx.field(8) if r.value),
            "effective": instant(obx.get(14, 1, 1) or observed),
        }
        if kind == "ED":
            data = base64.b64decode(obx.get(5, 1, 5))
            found.append({"kind": "ED", "subtype": obx.get(5, 1, 3).lower(), "data": data})
            continue
        if kind in TEXT_TYPES:
            previous = found[-1] if found else None
            if previous and previous["kind"] == "text" and previous["code"] == code:
                previous["lines"] += _lines(obx)
                continue
            found.append({"kind": "text", "code": code, "lines": _lines(obx), **common})
            continue
        found.append({"kind": kind, "code": code, "value": _value(obx), **common})
    return found


def report_facts(msg: v2.Message) -> list[Facts]:
    """Per OBR: status, code, effective, issued, interpreter (OBR-32, or OBR-33)."""
    reports = []
    for obr in msg.segments("OBR"):
        interpreter = obr.get(32, 1, 1, 2) or obr.get(33, 1, 1, 2)
        reports.append(
            {
                "status": obr.get(25),
                "code": (obr.get(4, 1, 1), obr.get(4, 1, 3).upper()),
                "effective": instant(obr.get(7, 1, 1)),
                "issued": instant(obr.get(22, 1, 1)),
                "interpreter": interpreter,
            }
        )
    return reports


def appointment_facts(msg: v2.Message) -> Facts:
    sch = msg.segment("SCH")
    assert sch is not None
    tq1 = msg.segment("TQ1")
    start = (tq1.get(7, 1, 1) if tq1 is not None else "") or sch.get(11, 1, 4)
    end = (tq1.get(8, 1, 1) if tq1 is not None else "") or sch.get(11, 1, 5)
    status = sch.get(25, 1, 1) or (sch.get(26, 1, 1) if not sch.get(26, 1, 2) else "")
    return {
        "placer": _ei(msg, sch, 1),
        "filler": _ei(msg, sch, 2),
        "start": instant(start),
        "end": instant(end),
        "status": status.upper(),
        "trigger": msg.trigger_event,
    }
