"""Patient (+ Encounter) -> ADT^A08 (A01/A04/A28/A31 selectable): MSH, EVN, PID, PV1 [PV2]."""

from __future__ import annotations

from typing import Any

from ...errors import MappingError
from ...v2 import Message
from ...v2._segment import Value
from .._codes import v2_table_uri
from .._profile import MappingProfile
from ._common import (
    BuildOptions,
    Writer,
    coding_code,
    cx,
    dtm,
    identifiers_typed,
    put,
    start_message,
)
from ._people import xcn
from ._registry import register_builder
from .patient import patient_of, write_pid

__all__ = ["build_adt", "encounter_for", "write_pv1"]

Json = dict[str, Any]
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
# Encounter.class (v3 ActCode) -> table 0004 (reverse of the IG PatientClass map).
PATIENT_CLASS = {
    "EMER": "E",
    "IMP": "I",
    "ACUTE": "I",
    "NONAC": "I",
    "AMB": "O",
    "OBSENC": "O",
    "SS": "O",
    "HH": "O",
    "VR": "O",
    "PRENC": "P",
}
# Encounter.participant.type (v3 ParticipationType) -> PV1 field.
_PARTICIPANT_FIELDS = {"ATND": 7, "REF": 8, "CON": 9, "ADM": 17}
_TRIGGERS = ("A01", "A04", "A08", "A28", "A31")


@register_builder("ADT", *(f"ADT^{trigger}" for trigger in _TRIGGERS))
def build_adt(
    resources: list[Json], message_type: str, profile: MappingProfile, options: dict[str, Any]
) -> Message:
    """The Patient (one active Patient among the resources) as an ADT message.

    ``ADT`` alone means ADT^A08 (update patient information). The Patient's Encounter,
    if one is among the resources, becomes PV1/PV2; otherwise PV1-2 is ``N`` (not
    applicable), except for A01 (admit), which needs an Encounter.

    Raises:
        MappingError: no Patient (or several), no identifier, A01 without an Encounter.
    """
    opts = BuildOptions.read(options)
    trigger = message_type.partition("^")[2] or "A08"
    writer = start_message(resources, "ADT", trigger, profile, opts)
    patient = patient_of(writer)
    evn = writer.segment("EVN")
    evn.set(1, trigger)
    evn.set(2, writer.message["MSH-7"])
    write_pid(writer, patient)
    encounter = encounter_for(writer, patient)
    if encounter is None and trigger == "A01":
        raise MappingError("ADT^A01 (admit) needs an Encounter", location="Encounter")
    write_pv1(writer, encounter)
    return writer.finish()


def encounter_for(writer: Writer, patient: Json | None) -> Json | None:
    """The first Encounter of ``patient`` among the resources (or without a subject)."""
    for encounter in writer.resources.of_type("Encounter"):
        subject = encounter.get("subject")
        if not subject or writer.resources.resolve(subject) is patient:
            return encounter
    return None


def _visit_number(writer: Writer, encounter: Json) -> Value:
    identifiers = encounter.get("identifier", [])
    chosen = identifiers_typed(identifiers, "VN") or [
        i for i in identifiers if i.get("value") and i.get("use") != "secondary"
    ]
    return cx(chosen[0], writer, location="Encounter.identifier") if chosen else ""


def write_pv1(writer: Writer, encounter: Json | None) -> None:
    """Append PV1 (and PV2 when there is an admit reason) for ``encounter``.

    Without an Encounter the PV1 says only ``PV1|1|N`` (patient class not applicable),
    which is what a message that must carry a PV1 sends when there is no visit.
    """
    pv1 = writer.segment("PV1")
    pv1.set(1, "1")
    if encounter is None:
        pv1.set(2, "N")
        return
    where = "Encounter"
    kind = (encounter.get("class") or {}).get("code", "")
    pv1.set(2, PATIENT_CLASS.get(str(kind), "U"))
    for item in encounter.get("location", []):
        place = writer.resources.resolve(item.get("location"), encounter)
        text = (place or {}).get("name") or (item.get("location") or {}).get("display")
        if text:
            put(pv1, 3, ("", "", "", "", "", "", "", "", str(text)))
            break
    people: dict[int, list[Value]] = {}
    for participant in encounter.get("participant", []):
        code = ""
        for concept in participant.get("type", []):
            code = code or coding_code(concept, _PARTICIPATION)
        number = _PARTICIPANT_FIELDS.get(code, 0)
        if number:
            people.setdefault(number, []).append(
                xcn(writer, participant.get("individual"), container=encounter)
            )
    for number, reps in sorted(people.items()):
        put(pv1, number, reps)
    for concept in [encounter.get("serviceType")]:
        put(pv1, 10, coding_code(concept, v2_table_uri("0069")) or coding_code(concept))
    stay = encounter.get("hospitalization") or {}
    put(pv1, 14, coding_code(stay.get("admitSource")))
    put(pv1, 19, _visit_number(writer, encounter))
    put(pv1, 36, coding_code(stay.get("dischargeDisposition")))
    period = encounter.get("period") or {}
    put(pv1, 44, dtm(period.get("start"), f"{where}.period.start"))
    put(pv1, 45, dtm(period.get("end"), f"{where}.period.end"))
    reasons = encounter.get("reasonCode", [])
    if reasons:
        pv2 = writer.segment("PV2")
        put(pv2, 3, writer.coded(reasons[0]))
