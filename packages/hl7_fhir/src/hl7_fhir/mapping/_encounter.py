"""PV1/PV2 -> Encounter, after the IG's PV1[Encounter] segment map."""

from __future__ import annotations

from typing import Any

from ..v2 import Segment
from ._bundle import Mode
from ._codes import v2_table_uri
from ._context import MappingContext
from ._datatypes import codeable_concept, identifier
from ._practitioner import practitioner_reference

__all__ = ["map_encounter"]

Json = dict[str, Any]
_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
# IG ConceptMap "PatientClass" (table 0004 -> Encounter.class).
PATIENT_CLASS = {
    "E": ("EMER", "emergency"),
    "I": ("IMP", "inpatient encounter"),
    "O": ("AMB", "ambulatory"),
    "P": ("PRENC", "pre-admission"),
    "R": ("AMB", "ambulatory"),
    "B": ("IMP", "inpatient encounter"),
    "C": ("AMB", "ambulatory"),
}
_PARTICIPANTS = (
    (7, "ATND", "attender"),
    (8, "REF", "referrer"),
    (9, "CON", "consultant"),
    (17, "ADM", "admitter"),
)


def _location_display(pv1: Segment) -> str:
    """PV1-3 (PL: point of care^room^bed^facility...) as a readable place."""
    parts = [pv1.get(3, 1, n) for n in (1, 2, 3)]
    place = " / ".join(p for p in parts if p)
    facility = pv1.get(3, 1, 4, 1)
    return f"{place} ({facility})" if place and facility else place or facility


def map_encounter(
    context: MappingContext, *, anchor: str | None = None, mode: Mode = "upsert"
) -> str | None:
    """Add the Encounter of the message's PV1 (if any) and remember its reference.

    An Encounter must be recognisable when the next message about it arrives, so it is
    only written when something identifies it: the visit number (PV1-19), else the
    admit time (PV1-44) of this patient, else an ``anchor`` the caller vouches for (an
    order's accession number: "the encounter of this order"). Otherwise it is skipped
    rather than duplicated on every replay. ``mode="ensure"`` only creates it when new
    (for messages that merely refer to a visit ADT owns, such as SIU).
    """
    pv1 = context.message.segment("PV1")
    if pv1 is None or len(pv1) < 2:
        return None
    visit_number = pv1.get(19, 1, 1)
    admitted = pv1.get(44, 1, 1)
    if not visit_number and not (admitted and context.patient) and not anchor:
        return None
    profile = context.profile
    patient_class = pv1.get(2, 1, 1).upper()
    class_code, class_display = PATIENT_CLASS.get(patient_class, ("AMB", "ambulatory"))
    resource: Json = {
        "resourceType": "Encounter",
        "status": "finished" if pv1.get(45) else "in-progress",
        "class": {"system": _ACT_CODE, "code": class_code, "display": class_display},
    }
    key: Json | None = None
    visit = pv1.field(19)
    if visit_number:
        element = identifier(visit.repetitions[0], profile, location="PV1-19", type_code="VN")
        if element:
            element.setdefault("system", context.default_system)
            resource["identifier"] = [element]
            key = {"system": element["system"], "value": element["value"]}
    else:
        # A synthetic identifier, visibly so (its own system), to converge on replays.
        basis = f"order:{anchor}" if anchor else f"patient:{context.patient}|admitted:{admitted}"
        key = {"system": f"{context.default_system}:encounter", "value": basis}
        resource["identifier"] = [{"use": "secondary", **key}]
    if context.patient:
        resource["subject"] = {"reference": context.patient}
    start = context.segment_datetime(pv1, 1, 44)
    end = context.segment_datetime(pv1, 1, 45)
    if start or end:
        resource["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    place = _location_display(pv1)
    if place:
        resource["location"] = [{"location": {"display": place}}]
    service = pv1.get(10)
    if service:
        resource["serviceType"] = {"coding": [{"system": v2_table_uri("0069"), "code": service}]}
    participants = []
    for field_number, code, display in _PARTICIPANTS:
        for rep in pv1.field(field_number):
            who = practitioner_reference(context, rep, source=f"PV1-{field_number}")
            if who:
                participants.append(
                    {
                        "type": [
                            {
                                "coding": [
                                    {"system": _PARTICIPATION, "code": code, "display": display}
                                ]
                            }
                        ],
                        "individual": who,
                    }
                )
    if participants:
        resource["participant"] = participants
    hospitalization: Json = {}
    if pv1.get(14):
        hospitalization["admitSource"] = {
            "coding": [{"system": v2_table_uri("0023"), "code": pv1.get(14)}]
        }
    if pv1.get(36):
        hospitalization["dischargeDisposition"] = {
            "coding": [{"system": v2_table_uri("0112"), "code": pv1.get(36)}]
        }
    if hospitalization:
        resource["hospitalization"] = hospitalization
    pv2 = context.message.segment("PV2")
    if pv2 is not None and pv2.field(3):
        reason = codeable_concept(pv2.field(3).repetitions[0], profile)
        if reason:
            resource["reasonCode"] = [reason]
    context.encounter = context.bundle.add(resource, key=key, mode=mode, source="PV1")
    return context.encounter
