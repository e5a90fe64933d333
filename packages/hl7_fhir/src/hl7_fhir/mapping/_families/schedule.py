"""SIU: scheduling -> Appointment (+ Patient, Practitioners, Locations, Encounter).

After the IG's SIU_S12 message map and its SCH, AIS, AIG, AIL, AIP and NTE
[Appointment] segment maps. Every event about one appointment converges on the same
Appointment (conditional update on the filler appointment id, else the placer's): S12
books, S13 moves, S14 modifies, S15 cancels, S16 discontinues, S17 deletes, S26 records
a no-show. docs/mapping.md (SIU scheduling) has the field table and the deliberate differences.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ...errors import MappingError
from ...v2 import Field, Message, Repetition, Segment
from .._codes import v2_table_uri
from .._context import MappingContext, location
from .._datatypes import (
    codeable_concept,
    entity_identifier,
    identifier_type,
    person_name,
    system_for_hd,
)
from .._encounter import map_encounter
from .._patient import map_patient, patient_key, patient_resource
from .._practitioner import practitioner_reference
from .._registry import register
from ._schedule_time import (
    AI_FIELDS,
    Groups,
    Resource,
    appointment_minutes,
    appointment_times,
    instant,
    moment,
    resource_timing,
    segment_groups,
)

__all__ = ["EVENT_STATUS", "FILLER_STATUS", "PARTICIPANT_STATUS", "map_schedule"]

Json = dict[str, Any]
_V3_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

# Appointment.status the trigger event itself implies.
EVENT_STATUS = {
    **dict.fromkeys(("S12", "S13", "S14"), "booked"),
    **dict.fromkeys(("S15", "S16"), "cancelled"),
    **{"S17": "entered-in-error", "S26": "noshow"},
}
# Book/move/modify carry the appointment's state in the filler status code (it may be
# pending, waitlisted, started or complete); cancel/delete/no-show *are* the state.
_FILLER_DECIDES = frozenset({"S12", "S13", "S14"})
# IG ConceptMap FillerStatusCodes[Appointment] (table 0278), filled in where it is silent.
FILLER_STATUS = {
    **{"PENDING": "pending", "WAITLIST": "waitlist", "STARTED": "checked-in"},
    **dict.fromkeys(("BOOKED", "OVERBOOK", "BLOCKED"), "booked"),
    **dict.fromkeys(("CANCELLED", "DC", "DISCONTINUED"), "cancelled"),
    **{"COMPLETE": "fulfilled", "DELETED": "entered-in-error", "NOSHOW": "noshow"},
}
# Table 0278 on one resource (AIG-14, AIL-12, AIP-12) -> participant.status.
PARTICIPANT_STATUS = {
    **dict.fromkeys(("BOOKED", "OVERBOOK", "BLOCKED", "STARTED", "COMPLETE", "NOSHOW"), "accepted"),
    **dict.fromkeys(("PENDING", "WAITLIST"), "tentative"),
    **dict.fromkeys(("CANCELLED", "DC", "DISCONTINUED", "DELETED"), "declined"),
}
# The Encounter a new appointment implies, while the PV1 does not say it has begun.
_ENCOUNTER_STATUS = {
    **dict.fromkeys(("proposed", "pending", "waitlist", "booked"), "planned"),
    **dict.fromkeys(("arrived", "checked-in"), "arrived"),
    **dict.fromkeys(("cancelled", "noshow"), "cancelled"),
    **{"fulfilled": "finished", "entered-in-error": "entered-in-error"},
}
# Tables 0276 (SCH-7) and 0277 (SCH-8): codes sent without a coding system get the table's.
_TABLES = {
    "0276": {
        "ROUTINE": ("ROUTINE", "Routine appointment - default if not valued"),
        "WALKIN": ("WALKIN", "A previously unscheduled walk-in visit"),
        "CHECKUP": ("CHECKUP", "A routine check-up, such as an annual physical"),
        "FOLLOWUP": ("FOLLOWUP", "A follow up visit from a previous appointment"),
        "EMERGENCY": ("EMERGENCY", "Emergency appointment"),
    },
    "0277": {
        "NORMAL": ("Normal", "Routine schedule request type - default if not valued"),
        "TENTATIVE": ("Tentative", "A request for a tentative (penciled in) appointment"),
        "COMPLETE": ("Complete", "A request to add a completed appointment"),
    },
}
# AIP-4 roles with a clear v3 ParticipationType (table 0443 codes and their names).
_ROLES = {
    **dict.fromkeys(("AT", "ATND", "ATTENDING"), ("ATND", "attender")),
    **dict.fromkeys(("AD", "ADM", "ADMITTING"), ("ADM", "admitter")),
    **dict.fromkeys(("CP", "CON", "CONSULTING", "CONSULTANT"), ("CON", "consultant")),
    **dict.fromkeys(("RP", "REF", "REFERRING", "REFERRER"), ("REF", "referrer")),
    **{"PRF": ("PRF", "performer"), "PPRF": ("PPRF", "primary performer")},
}


@register("SIU^S12", "SIU^S13", "SIU^S14", "SIU^S15", "SIU^S16", "SIU^S17", "SIU^S26")
def map_schedule(context: MappingContext) -> None:
    """One SIU message -> its Appointment, upserted on the appointment id.

    Raises:
        MappingError: no SCH, no appointment id, an unknown filler status, a bad date
            or duration, or a booked appointment without a start and an end.
    """
    message = context.message
    sch = message.segment("SCH")
    if sch is None:
        raise MappingError("the message has no SCH segment", location="SCH")
    identifiers, key = _appointment_ids(context, sch)
    status = _status(context, message.trigger_event.upper(), *_filler_status(message, sch))
    appointment: Json = {"resourceType": "Appointment", "identifier": identifiers, "status": status}
    groups = segment_groups(message)
    if status == "cancelled" and (reason := _concept(context, sch.field(6))):
        appointment["cancelationReason"] = reason
    if reason_code := _concept(context, sch.field(7), table="0276"):
        appointment["reasonCode"] = [reason_code]
    if appointment_type := _concept(context, sch.field(8), table="0277"):
        appointment["appointmentType"] = appointment_type
    services = [c for r in groups.of("AIS") if (c := _concept(context, r.segment.field(3)))]
    if services:
        appointment["serviceType"] = services
    if description := "; ".join(_text(c) for c in services) or sch.get(7, 1, 2):
        appointment["description"] = description
    if minutes := appointment_minutes(context, sch):
        appointment["minutesDuration"] = minutes
    start, end = appointment_times(context, sch, groups, minutes, status)
    if start and end:
        appointment["start"], appointment["end"] = instant(start), instant(end)
    participants = [
        *_patients(context),
        *_resources(context, groups, start),
        *_contacts(context, sch),
    ]
    if not participants:
        raise MappingError(
            "no patient or resource (PID, AIP, AIL, AIG) to take part", location="SCH"
        )
    appointment["participant"] = participants
    if orders := _orders(context, sch):
        appointment["basedOn"] = orders
    if comment := _comment(groups):
        appointment["comment"] = comment
    reference = context.bundle.add(appointment, key=key, mode="upsert", source="SCH")
    _link_encounter(context, reference, status)


# -- identity and status -------------------------------------------------------------


def _appointment_ids(context: MappingContext, sch: Segment) -> tuple[list[Json], Json]:
    """SCH-1 placer / SCH-2 filler appointment id; the key is the filler's when sent."""
    found: dict[int, Json] = {}
    for field_number, type_code in ((1, "PLAC"), (2, "FILL")):
        reps = sch.field(field_number).repetitions
        element = entity_identifier(reps[0], context.profile, type_code=type_code) if reps else None
        if element:
            element.setdefault("system", context.default_system)
            found[field_number] = element
    if not found:
        raise MappingError("no placer or filler appointment id", location="SCH-2")
    chosen = found.get(2) or found[1]
    return list(found.values()), {"system": chosen["system"], "value": chosen["value"]}


def _is_status_word(rep: Repetition) -> bool:
    """A bare table 0278 word (``Booked``) where an order number (EI) belongs."""
    return rep[1].upper() in FILLER_STATUS and not rep[2] and not rep[3]


def _filler_status(message: Message, sch: Segment) -> tuple[str, str]:
    """(word, where): SCH-25; else SCH-26 when it holds a bare table 0278 word (a sender
    one field late); else the first AIS-10 (the service's filler status)."""
    if sch.get(25, 1, 1):
        return sch.get(25, 1, 1), "SCH-25"
    late = sch.field(26).repetitions
    if late and _is_status_word(late[0]):
        return late[0][1], "SCH-26"
    for occurrence, ais in enumerate(message.segments("AIS"), start=1):
        if ais.get(10, 1, 1):
            return ais.get(10, 1, 1), location(ais, occurrence, 10)
    return "", "SCH-25"


def _status(context: MappingContext, trigger: str, word: str, where: str) -> str:
    """The event's status; for S12-S14 the filler status code's, when one was sent.

    A code outside table 0278 can be mapped with the profile's ``code_maps["HL70278"]``
    (target code: an Appointment.status); otherwise it is an error, never a guess.
    """
    event_status = EVENT_STATUS.get(trigger, "booked")
    if trigger not in _FILLER_DECIDES or not word:
        return event_status
    mapped = FILLER_STATUS.get(word.upper())
    if mapped is not None:
        return mapped
    translated = context.profile.translate("HL70278", word)
    if translated is None or translated.code not in _ENCOUNTER_STATUS:
        raise MappingError(f"unknown filler status code {word!r} (HL7 table 0278)", location=where)
    return translated.code


# -- participants --------------------------------------------------------------------


def _participant(
    actor: Json | None, kind: Json | None, status: str, *, required: str = "required"
) -> Json:
    participant: Json = {"type": [kind]} if kind else {}
    if actor:
        participant["actor"] = actor
    return {**participant, "required": required, "status": status}


def _patients(context: MappingContext) -> list[Json]:
    """Every PID's Patient (conditional create: ADT owns demographics), status accepted."""
    pids = context.message.segments("PID")
    if not pids:
        return []
    references = [map_patient(context, mode="ensure")]
    for occurrence, pid in enumerate(pids[1:], start=2):
        resource = patient_resource(context, pid)
        key = patient_key(resource.get("identifier", []))
        if key is None:
            raise MappingError("no patient identifier to match on", location=f"PID[{occurrence}]-3")
        source = f"PID[{occurrence}]"
        references.append(context.bundle.add(resource, key=key, mode="ensure", source=source))
    return [_participant({"reference": r}, None, "accepted") for r in references]


def _resources(context: MappingContext, groups: Groups, anchor: datetime | None) -> list[Json]:
    """AIG (equipment...), AIL (places) and AIP (people) participants, in message order;
    participant.status from their filler status (AIG-14, AIL-12, AIP-12)."""
    found: list[Json] = []
    for resource in groups.of("AIG", "AIL", "AIP"):
        seg = resource.segment
        word = seg.get(AI_FIELDS[seg.name][3], 1, 1).upper()
        status = PARTICIPANT_STATUS.get(word, "needs-action" if word else "accepted")
        actors, kind = _actors_and_type(context, resource)
        start, end = resource_timing(context, resource, anchor)
        for actor in actors or [{}]:
            participant = _participant(actor, kind, status)
            if start:
                period = {"start": instant(start), **({"end": instant(end)} if end else {})}
                participant["period"] = period
            if (actor or kind) and participant not in found:
                found.append(participant)
    return found


def _actors_and_type(context: MappingContext, resource: Resource) -> tuple[list[Json], Json | None]:
    seg = resource.segment
    if seg.name == "AIP":
        where = location(seg, resource.occurrence, 3)
        people = [practitioner_reference(context, rep, source=where) for rep in seg.field(3)]
        role = seg.field(4).repetitions
        return [p for p in people if p], _role(context, role[0]) if role else None
    if seg.name == "AIL":
        place = _place(context, resource)
        kind = {"coding": [{"system": _V3_PARTICIPATION, "code": "LOC", "display": "location"}]}
        return [place] if place else [], kind
    name = seg.get(3, 1, 2) or seg.get(3, 1, 1)
    return [{"display": name}] if name else [], _concept(context, seg.field(4))


def _role(context: MappingContext, rep: Repetition) -> Json | None:
    """AIP-4 -> participant.type, led by a v3 ParticipationType when the role is clearly one."""
    concept = _concept(context, rep)
    mapped = _ROLES.get(rep[1].upper()) or _ROLES.get(rep[2].upper())
    if mapped is None or concept is None:
        return concept
    standard = {"system": _V3_PARTICIPATION, "code": mapped[0], "display": mapped[1]}
    return {**concept, "coding": [standard, *concept.get("coding", [])]}


def _hd_text(rep: Repetition, component: int) -> str:
    """A PL component (IS, or HD from v2.7) as text: namespace, plus a name if not an OID."""
    namespace, universal = rep[component, 1], rep[component, 2]
    if universal and not re.fullmatch(r"[\d.]+", universal):
        return f"{namespace} {universal}".strip()
    return namespace or universal


def _place_display(rep: Repetition) -> str:
    """PL as text: ``description (point of care / room / bed, facility)``."""
    place = " / ".join(p for p in (_hd_text(rep, n) for n in (1, 2, 3)) if p)
    facility = _hd_text(rep, 4)
    place = f"{place}, {facility}" if place and facility else place or facility
    description = rep[9]
    return f"{description} ({place})" if description and place else description or place


def _place(context: MappingContext, resource: Resource) -> Json | None:
    """AIL-3 (PL) -> a Location reference: a Location entry when PL.10 identifies it,
    else a display only (a room name is nothing to match a Location on later)."""
    seg = resource.segment
    reps = seg.field(3).repetitions
    if not reps:
        return None
    display = _place_display(reps[0])
    value = reps[0][10, 1]
    if not value:
        return {"display": display} if display else None
    profile = context.profile
    system = system_for_hd(reps[0][10, 2], reps[0][10, 3], profile) or context.default_system
    key = {"system": system, "value": value}
    place: Json = {"resourceType": "Location", "identifier": [key], "mode": "instance"}
    if display:
        place["name"] = display
    if kind := _concept(context, seg.field(4)):
        place["type"] = [kind]
    source = location(seg, resource.occurrence, 3)
    reference = context.bundle.add(place, key=key, mode="ensure", source=source)
    return {"reference": reference, **({"display": display} if display else {})}


def _contacts(context: MappingContext, sch: Segment) -> list[Json]:
    """SCH-12 placer and SCH-16 filler contact persons, for information only."""
    found = []
    for field_number, label in ((12, "placer contact person"), (16, "filler contact person")):
        for rep in sch.field(field_number):
            actor = practitioner_reference(context, rep, source=f"SCH-{field_number}")
            if actor:
                kind = {"text": label}
                found.append(_participant(actor, kind, "accepted", required="information-only"))
    return found


# -- codes, orders, notes, encounter -------------------------------------------------


def _concept(context: MappingContext, value: Field | Repetition, *, table: str = "") -> Json | None:
    """CWE -> CodeableConcept (first repetition). Codes sent without a coding system keep
    their code and give the text; those of ``table`` (``ROUTINE`` in SCH-7 is table
    0276's) get the table's system and spelling."""
    if isinstance(value, Field):
        if not value.repetitions:
            return None
        value = value.repetitions[0]
    concept = codeable_concept(value, context.profile)
    if concept is None:
        return None
    system, known = (v2_table_uri(table) if table else None), _TABLES.get(table, {})
    codings: list[Json] = []
    for coding in concept.get("coding", []):
        entry = known.get(str(coding.get("code", "")).upper())
        if entry and coding.get("system") in (None, system):
            display = coding.get("display") or entry[1]
            coding = {"system": system, "code": entry[0], "display": display}
        codings.append(coding)
    if codings:
        concept["coding"] = codings
        if not any("system" in c for c in codings):
            concept.setdefault("text", codings[0].get("display") or codings[0]["code"])
    return concept


def _text(concept: Json) -> str:
    """What a person would read: the concept's text, else its first display or code."""
    first = (concept.get("coding") or [{}])[0]
    return str(concept.get("text") or first.get("display") or first.get("code", ""))


def _orders(context: MappingContext, sch: Segment) -> list[Json]:
    """SCH-26 placer / SCH-27 filler order numbers -> logical ServiceRequest references,
    one per order (its placer number when sent: every order message carries that); an
    accession number the profile locates replaces them."""
    numbers: dict[int, list[Json]] = {26: [], 27: []}
    for field_number, type_code in ((26, "PLAC"), (27, "FILL")):
        for rep in sch.field(field_number):
            if _is_status_word(rep):
                continue  # a sender's filler status one field late, not an order number
            element = entity_identifier(rep, context.profile, type_code=type_code)
            if element:
                element.setdefault("system", context.default_system)
                numbers[field_number].append(element)
    placers, fillers = numbers[26], numbers[27]
    count = max(len(placers), len(fillers))
    chosen = [placers[i] if i < len(placers) else fillers[i] for i in range(count)]
    accession = _accession(context)
    if accession is not None:
        chosen = [accession]
    return [{"type": "ServiceRequest", "identifier": element} for element in chosen]


def _accession(context: MappingContext) -> Json | None:
    """The accession number, when the profile names the path this sender puts it at."""
    path = context.profile.accession_number
    if path == "auto":
        return None
    component = "." in path  # a path down to a component is the number itself
    value = context.message[path if component else f"{path}.1"]
    if not value:
        return None
    namespace = "" if component else context.message[f"{path}.2"]
    system = system_for_hd(namespace, "", context.profile) or context.default_system
    return {"type": identifier_type("ACSN"), "system": system, "value": value}


def _comment(groups: Groups) -> str:
    """Every NTE-3, in order; a note about one resource starts with the resource's name."""
    lines = []
    for nte, owner in groups.notes:
        text = "\n".join(r.value for r in nte.field(3) if r.value.strip()).strip()
        if text:
            label = _label(owner.segment) if owner else ""
            lines.append(f"{label}: {text}" if label else text)
    return "\n".join(lines)


def _label(seg: Segment) -> str:
    """The resource a note is about, named as its participant's display names it."""
    reps = seg.field(3).repetitions
    if not reps:
        return seg.name
    if seg.name == "AIL":
        return _place_display(reps[0])
    if seg.name == "AIP":
        name = person_name(reps[0]) or {}
        parts = [*name.get("prefix", []), *name.get("given", []), name.get("family", "")]
        return " ".join(p for p in parts if p) or reps[0][1]
    return reps[0][2] or reps[0][1]


def _link_encounter(context: MappingContext, appointment: str, status: str) -> None:
    """The PV1's Encounter when the PV1 identifies one, created only if new (ADT owns
    it), pointing at the appointment; until the PV1 says it began (PV1-44 before MSH-7),
    its status follows the appointment's (planned, cancelled...)."""
    pv1 = context.message.segment("PV1")
    if pv1 is None or map_encounter(context, mode="ensure") is None:
        return
    encounter = context.bundle.resources("Encounter")[-1]
    encounter["appointment"] = [{"reference": appointment}]
    admitted = moment(context, pv1.get(44, 1, 1), "PV1-44")
    sent = moment(context, context.message.header.get(7, 1, 1), "MSH-7")
    began = admitted is not None and sent is not None and admitted <= sent
    if encounter["status"] == "in-progress" and not began:
        encounter["status"] = _ENCOUNTER_STATUS[status]
