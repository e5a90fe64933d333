"""Appointment -> SIU^S12/S13/S14/S15/S16/S17/S26: SCH [TQ1] [NTE] [PID [PV1]] RGS AIS AIG AIL AIP.

The reverse of the IG's SCH/AIS/AIG/AIL/AIP[Appointment] maps. ``SIU`` alone picks the
trigger from Appointment.status (:data:`TRIGGER_FOR_STATUS`); an explicit trigger must
agree with the status, so a booking is never sent for a cancelled appointment.
"""

from __future__ import annotations

import re
from typing import Any

from ...errors import MappingError
from ...v2 import Message, Segment
from ...v2._segment import Value
from .._codes import v2_table_uri
from .._profile import MappingProfile
from ._common import (
    BuildOptions,
    Writer,
    dtm,
    ei,
    identifier_type_codes,
    identifiers_typed,
    put,
    start_message,
)
from ._people import xcn
from ._registry import register_builder
from .adt import encounter_for, write_pv1
from .orders import order_numbers, write_notes
from .patient import find_patient, write_pid

__all__ = ["APPOINTMENT_STATUS", "TRIGGER_FOR_STATUS", "build_siu"]

Json = dict[str, Any]
# Appointment.status -> SCH-25 filler status (table 0278; reverse of the IG map).
APPOINTMENT_STATUS = {
    "proposed": "Pending",
    "pending": "Pending",
    "booked": "Booked",
    "arrived": "Started",
    "checked-in": "Started",
    "fulfilled": "Complete",
    "cancelled": "Cancelled",
    "noshow": "Noshow",
    "entered-in-error": "Deleted",
    "waitlist": "Waitlist",
}
# Appointment.status -> the trigger ``SIU`` (no trigger given) sends.
TRIGGER_FOR_STATUS = {"cancelled": "S15", "noshow": "S26", "entered-in-error": "S17"}
# Trigger -> the statuses it may carry (``None``: any status but the ones of S15/S17/S26).
_ALLOWED = {
    "S15": {"cancelled"},
    "S16": {"cancelled"},
    "S17": {"cancelled", "entered-in-error"},
    "S26": {"noshow"},
}
# Trigger -> RGS-2/AIx-2 segment action code (table 0206) and SCH-6 event reason.
_ACTION = {"S12": "A", "S13": "U", "S14": "U", "S15": "D", "S16": "D", "S17": "D", "S26": "U"}
_EVENT_REASON = {
    "S12": ("NEW", "New appointment booked"),
    "S13": ("RESCHED", "Appointment rescheduled"),
    "S14": ("MODIFY", "Appointment modified"),
    "S15": ("CANCEL", "Appointment cancelled"),
    "S16": ("DISCONTINUE", "Appointment discontinued"),
    "S17": ("DELETE", "Appointment deleted"),
    "S26": ("NOSHOW", "Patient did not show up"),
}
_UNITS: Value = ("min", "minutes", "UCUM")
_TYPE_0276 = v2_table_uri("0276")
_TYPE_0277 = v2_table_uri("0277")


def _trigger(appointment: Json, requested: str) -> str:
    status = str(appointment.get("status", ""))
    if status not in APPOINTMENT_STATUS:
        raise MappingError(f"unknown status {status!r}", location="Appointment.status")
    if not requested:
        return TRIGGER_FOR_STATUS.get(status, "S12")
    allowed = _ALLOWED.get(requested)
    ok = status in allowed if allowed else status not in TRIGGER_FOR_STATUS
    if not ok:
        raise MappingError(
            f"SIU^{requested} does not fit an appointment that is {status}",
            location="Appointment.status",
        )
    return requested


def _appointment_ids(writer: Writer, appointment: Json) -> tuple[Value, Value]:
    """(SCH-1 placer, SCH-2 filler): typed PLAC/FILL; an untyped id is the filler's
    (the scheduling system's own) unless a FILL is present, then the placer's."""
    identifiers = [i for i in appointment.get("identifier", []) if i.get("value")]
    placer = identifiers_typed(identifiers, "PLAC")
    filler = identifiers_typed(identifiers, "FILL")
    untyped = [i for i in identifiers if not identifier_type_codes(i)]
    if not filler and untyped:
        filler = [untyped.pop(0)]
    if not placer and untyped:
        placer = [untyped.pop(0)]
    profile = writer.profile
    return ei(placer[0] if placer else None, profile), ei(filler[0] if filler else None, profile)


def _coded_in(concepts: list[Json], system: str) -> Json | None:
    for concept in concepts:
        if any(c.get("system") == system for c in concept.get("coding", [])):
            return concept
    return None


def _write_sch(writer: Writer, appointment: Json, trigger: str) -> tuple[str, str, str]:
    """SCH, TQ1 and NTE; returns (start, minutes, status word) for the resource segments."""
    placer, filler = _appointment_ids(writer, appointment)
    start = dtm(appointment.get("start"), "Appointment.start")
    end = dtm(appointment.get("end"), "Appointment.end")
    minutes = str(appointment.get("minutesDuration") or "")
    status = APPOINTMENT_STATUS[str(appointment["status"])]
    sch = writer.segment("SCH")
    put(sch, 1, placer)
    put(sch, 2, filler)
    reason = appointment.get("cancelationReason") if trigger in ("S15", "S16", "S17") else None
    put(sch, 6, writer.coded(reason) if reason else _EVENT_REASON[trigger])
    kind = appointment.get("appointmentType")
    kinds = [kind] if kind else []
    reason_for = _coded_in(kinds, _TYPE_0276) or next(iter(appointment.get("reasonCode", [])), None)
    put(sch, 7, writer.coded(reason_for))
    put(sch, 8, writer.coded(_coded_in(kinds, _TYPE_0277)))
    if minutes:
        sch.set(9, minutes)
        sch.set(10, _UNITS)
    put(sch, 11, ("", "", f"M{minutes}" if minutes else "", start, end))
    sch.set(25, (status, status, "HL70278"))
    if writer.since(2, 4):
        placers, fillers = [], []
        for reference in appointment.get("basedOn", []):
            request = writer.resources.resolve(reference, appointment)
            if request is None and reference.get("identifier"):
                request = {"identifier": [reference["identifier"]]}
            if request is not None:
                numbers = order_numbers(writer, request)
                placers.append(numbers.placer)
                fillers.append(numbers.filler)
        put(sch, 26, placers)
        put(sch, 27, fillers)
    if writer.since(2, 5) and (start or end or minutes):
        tq1 = writer.segment("TQ1")
        tq1.set(1, "1")
        put(tq1, 7, start)
        put(tq1, 8, end)
        if minutes:
            tq1.set(13, (minutes, _UNITS))
    notes = [appointment.get("comment")]
    if not _derived_description(appointment):
        notes.append(appointment.get("description"))
    write_notes(writer, [{"text": str(n)} for n in notes if n])
    _write_contacts(writer, appointment, sch)
    return start, minutes, status


def _derived_description(appointment: Json) -> bool:
    """True when ``description`` only repeats the service or reason names (as the v2 ->
    FHIR mapping writes it), so it need not travel as a note of its own."""
    description = str(appointment.get("description") or "")
    names: list[str] = []
    for concept in [*appointment.get("serviceType", []), *appointment.get("reasonCode", [])]:
        names += [str(concept.get("text") or "")]
        names += [str(c.get("display") or "") for c in concept.get("coding", [])]
    names = [n for n in names if n]
    return not description or description in names or description == "; ".join(names)


def _contact_field(participant: Json) -> int:
    """SCH-12/16/20 for a placer contact, filler contact or enterer participant, else 0."""
    words = []
    for concept in participant.get("type", []):
        words.append(str(concept.get("text") or "").lower())
        words += [str(c.get("code") or "").lower() for c in concept.get("coding", [])]
    for word in words:
        for key, number in (("placer contact", 12), ("filler contact", 16), ("enterer", 20)):
            if key in word:
                return number
    return 0


def _write_contacts(writer: Writer, appointment: Json, sch: Segment) -> None:
    found: dict[int, list[Value]] = {}
    for participant in appointment.get("participant", []):
        number = _contact_field(participant)
        if number:
            person = xcn(writer, participant.get("actor"), container=appointment)
            found.setdefault(number, []).append(person)
    for number, people in found.items():
        put(sch, number, people)


def _actor_kind(writer: Writer, participant: Json, appointment: Json) -> tuple[str, Json | None]:
    """(resource type, resolved actor) of a participant: from the resource, the Reference's
    type or ``Type/id``; a display-only actor is a location when the participant type
    says ``LOC``, otherwise a person (as v2 -> FHIR writes name-only AIP people)."""
    actor = participant.get("actor") or {}
    target = writer.resources.resolve(actor, appointment)
    kind = (target or {}).get("resourceType") or actor.get("type") or ""
    reference = actor.get("reference")
    if not kind and isinstance(reference, str) and re.match(r"^[A-Z][A-Za-z]+/[^/]+$", reference):
        kind = reference.split("/", 1)[0]
    if not kind and actor.get("display"):
        codes = {c.get("code") for t in participant.get("type", []) for c in t.get("coding", [])}
        kind = "Location" if "LOC" in codes else "Practitioner"
    return str(kind), target


def _service_concepts(writer: Writer, appointment: Json) -> list[Json]:
    """AIS-3 services: serviceType, else the code of the ServiceRequests it is based on."""
    services = [c for c in appointment.get("serviceType", []) if c]
    if services:
        return services
    for reference in appointment.get("basedOn", []):
        request = writer.resources.resolve(reference, appointment)
        if request is not None and request.get("code"):
            services.append(request["code"])
    return services


def _write_resources(
    writer: Writer, appointment: Json, trigger: str, start: str, minutes: str, status: str
) -> None:
    action = _ACTION[trigger]
    rgs = writer.segment("RGS")
    rgs.set(1, "1")
    rgs.set(2, action)
    word: Value = (status, status, "HL70278")
    units: Value = _UNITS if minutes else ""
    for number, concept in enumerate(_service_concepts(writer, appointment), 1):
        ais = writer.segment("AIS")
        ais.set(1, str(number))
        ais.set(2, action)
        put(ais, 3, writer.coded(concept))
        put(ais, 4, start)
        put(ais, 7, minutes)
        put(ais, 8, units)
        ais.set(10, word)
    groups: dict[str, list[tuple[Json, Json | None]]] = {"AIG": [], "AIL": [], "AIP": []}
    for participant in appointment.get("participant", []):
        if _contact_field(participant):
            continue
        kind, target = _actor_kind(writer, participant, appointment)
        if kind in ("Practitioner", "PractitionerRole"):
            groups["AIP"].append((participant, target))
        elif kind == "Location":
            groups["AIL"].append((participant, target))
        elif kind in ("Device", "HealthcareService"):
            groups["AIG"].append((participant, target))
    for name, members in groups.items():
        for number, (participant, target) in enumerate(members, 1):
            segment = writer.segment(name)
            segment.set(1, str(number))
            segment.set(2, action)
            role = next(iter(participant.get("type", [])), None)
            actor = participant.get("actor")
            if name == "AIP":
                put(segment, 3, xcn(writer, actor, container=appointment))
                codes = (target or {}).get("code", []) if role is None else []
                put(segment, 4, writer.coded(role or next(iter(codes), None)))
            elif name == "AIL":
                ident: Json = next(iter((target or {}).get("identifier", [])), {})
                text = (target or {}).get("name") or (actor or {}).get("display", "")
                location: Value = (
                    str(ident.get("value") or ""),
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    str(text),
                )
                put(segment, 3, location)
                kinds = (target or {}).get("type", [])
                put(segment, 4, writer.coded(kinds[0] if kinds else None))
            else:
                text = (target or {}).get("name") or (actor or {}).get("display", "")
                ident = next(iter((target or {}).get("identifier", [])), {})
                put(segment, 3, (str(ident.get("value") or ""), str(text)))
                put(segment, 4, writer.coded(role) or (target or {}).get("resourceType", ""))
            own = (participant.get("period") or {}).get("start")
            put(segment, 6, dtm(own, "Appointment.participant.period.start") if own else start)
            put(segment, 9, minutes)
            put(segment, 10, units)
            segment.set(14 if name == "AIG" else 12, word)


@register_builder("SIU", *(f"SIU^{trigger}" for trigger in _ACTION))
def build_siu(
    resources: list[Json], message_type: str, profile: MappingProfile, options: dict[str, Any]
) -> Message:
    """The Appointment among the resources as an SIU message.

    ``SIU`` picks the trigger from the status: cancelled -> S15, noshow -> S26,
    entered-in-error -> S17, anything else -> S12 (new booking); ask for ``SIU^S13``
    (rescheduled) or ``SIU^S14`` (modified) explicitly.

    Raises:
        MappingError: no Appointment (or several), a trigger that contradicts the
            status, an unknown patient.
    """
    opts = BuildOptions.read(options)
    appointments = [r for r in resources if r.get("resourceType") == "Appointment"]
    if len(appointments) != 1:
        raise MappingError(
            f"expected one Appointment among the resources, found {len(appointments)}",
            location="Appointment",
        )
    appointment = appointments[0]
    trigger = _trigger(appointment, message_type.partition("^")[2])
    writer = start_message(resources, "SIU", trigger, profile, opts)
    start, minutes, status = _write_sch(writer, appointment, trigger)
    for index, participant in enumerate(appointment.get("participant", [])):
        actor = participant.get("actor") or {}
        reference = str(actor.get("reference") or "")
        target = writer.resources.resolve(actor, appointment)
        is_patient = (target or {}).get("resourceType") == "Patient" or (
            target is None and (actor.get("type") == "Patient" or "Patient/" in reference)
        )
        if is_patient:
            where = f"Appointment.participant[{index}].actor"
            patient = find_patient(writer, actor, location=where)
            write_pid(writer, patient or {}, location=where)
            encounter = encounter_for(writer, patient)
            if encounter is not None:
                write_pv1(writer, encounter)
            break
    _write_resources(writer, appointment, trigger, start, minutes, status)
    return writer.finish()
