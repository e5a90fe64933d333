"""PID (and PD1) -> Patient, after the IG's PID[Patient] segment map."""

from __future__ import annotations

from typing import Any

from ..errors import MappingError
from ..v2 import Segment
from ._bundle import Mode
from ._codes import GENDER, MARITAL_STATUS, V3_MARITAL, v2_table_uri
from ._context import MappingContext
from ._datatypes import (
    address,
    codeable_concept,
    contact_points,
    fhir_date,
    fhir_datetime,
    human_name,
    identifier,
)

__all__ = ["map_patient", "patient_key", "patient_resource"]

Json = dict[str, Any]
_BIRTH_TIME = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"
_MOTHERS_MAIDEN = "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName"


def patient_identifiers(context: MappingContext, pid: Segment) -> list[Json]:
    """PID-3 (all repetitions), PID-2 and PID-4 (pre-2.5 external/alternate ids), PID-19
    (SSN) and PID-20 (driver's licence, system from the issuing state)."""
    found: list[Json] = []
    for field_number in (3, 2, 4):
        for index, rep in enumerate(pid.field(field_number), start=1):
            where = f"PID-{field_number}[{index}]" if index > 1 else f"PID-{field_number}"
            element = identifier(rep, context.profile, location=where)
            if element and "system" not in element:
                element = {**element, "system": context.default_system}
            if element and element not in found:
                found.append(element)
    ssn = pid.get(19)
    if ssn:
        found.append(
            {
                "type": {"coding": [{"system": v2_table_uri("0203"), "code": "SS"}]},
                "system": "http://hl7.org/fhir/sid/us-ssn",
                "value": ssn,
            }
        )
    licence = pid.field(20)
    if licence and licence[1]:
        issuer = licence[2] or "driver-license"
        found.append(
            {
                "type": {"coding": [{"system": v2_table_uri("0203"), "code": "DL"}]},
                "system": context.profile.system_for(issuer),
                "value": licence[1],
            }
        )
    return found


def patient_key(identifiers: list[Json]) -> Json | None:
    """The identifier a Patient is matched on: the first MR, else the first with a system."""

    def type_code(element: Json) -> str:
        codings = element.get("type", {}).get("coding", [{}])
        return str(codings[0].get("code", ""))

    for element in identifiers:
        if type_code(element) == "MR" and element.get("system"):
            return {"system": element["system"], "value": element["value"]}
    for element in identifiers:
        if element.get("system") and type_code(element) != "SS":
            return {"system": element["system"], "value": element["value"]}
    return None


def patient_resource(context: MappingContext, pid: Segment) -> Json:
    """The Patient resource for a PID segment (no bundle side effects)."""
    profile = context.profile
    resource: Json = {"resourceType": "Patient"}
    identifiers = patient_identifiers(context, pid)
    if identifiers:
        resource["identifier"] = identifiers
    names = [n for rep in pid.field(5) if (n := human_name(rep))]
    names += [{**n, "use": "nickname"} for rep in pid.field(9) if (n := human_name(rep))]
    if names:
        resource["name"] = names
    maiden = pid.get(6, 1, 1, 1)
    if maiden:
        resource.setdefault("extension", []).append({"url": _MOTHERS_MAIDEN, "valueString": maiden})
    birth = pid.get(7, 1, 1)
    if birth:
        resource["birthDate"] = fhir_date(birth, "PID-7")
        when = fhir_datetime(birth, profile, "PID-7")
        if when and "T" in when:  # a birth time was sent, not just a date
            resource["_birthDate"] = {"extension": [{"url": _BIRTH_TIME, "valueDateTime": when}]}
    sex = pid.get(8)
    if sex:
        resource["gender"] = GENDER.get(sex.upper(), "unknown")
    addresses = [a for rep in pid.field(11) if (a := address(rep))]
    if addresses:
        resource["address"] = addresses
    telecom: list[Json] = []
    for field_number, default_use in ((13, "home"), (14, "work")):
        for rep in pid.field(field_number):
            for point in contact_points(rep, default_use=default_use):
                if point not in telecom:
                    telecom.append(point)
    if telecom:
        resource["telecom"] = telecom
    language = pid.field(15)
    if language:
        concept = codeable_concept(language.repetitions[0], profile)
        if concept:
            resource["communication"] = [{"language": _language(concept)}]
    marital = pid.get(16, 1, 1)
    if marital:
        mapped = MARITAL_STATUS.get(marital.upper())
        codings = [{"system": v2_table_uri("0002"), "code": marital}]
        if mapped:
            codings.insert(0, {"system": V3_MARITAL, "code": mapped[0], "display": mapped[1]})
        resource["maritalStatus"] = {"coding": codings}
    _multiple_birth(resource, pid)
    death = pid.get(29, 1, 1)
    if death:
        resource["deceasedDateTime"] = fhir_datetime(death, profile, "PID-29")
    elif pid.get(30).upper() in ("Y", "N"):
        resource["deceasedBoolean"] = pid.get(30).upper() == "Y"
    return resource


def _language(concept: Json) -> Json:
    """Communication.language wants BCP-47: a bare ``EN``/``en-US`` code is lower-cased."""
    codings = []
    for item in concept.get("coding", []):
        code = str(item.get("code", ""))
        if len(code) in (2, 5) and code[:2].isalpha():
            codings.append({"system": "urn:ietf:bcp:47", "code": code[:2].lower() + code[2:]})
        else:
            codings.append(item)
    return {**concept, "coding": codings}


def _multiple_birth(resource: Json, pid: Segment) -> None:
    order = pid.get(25)
    if order.isdigit():
        resource["multipleBirthInteger"] = int(order)
    elif pid.get(24).upper() in ("Y", "N"):
        resource["multipleBirthBoolean"] = pid.get(24).upper() == "Y"


def map_patient(context: MappingContext, *, mode: Mode = "ensure") -> str:
    """Add the message's Patient (from its PID) and remember its reference.

    Raises:
        MappingError: there is no PID segment, or the patient has no usable identifier.
    """
    pid = context.message.segment("PID")
    if pid is None:
        raise MappingError("the message has no PID segment", location="PID")
    resource = patient_resource(context, pid)
    key = patient_key(resource.get("identifier", []))
    if key is None:
        raise MappingError(
            "no patient identifier with an assigning authority to match the patient on",
            location="PID-3",
        )
    context.patient = context.bundle.add(resource, key=key, mode=mode, source="PID")
    return context.patient
