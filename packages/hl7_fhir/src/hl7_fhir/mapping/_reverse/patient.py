"""Patient -> PID (every message type uses it), the reverse of the IG's PID[Patient] map."""

from __future__ import annotations

from typing import Any

from ...errors import MappingError
from ...v2._segment import Value
from .._codes import GENDER, V3_MARITAL, v2_table_uri
from ._common import Writer, coding_code, cx, dt, dtm, hd, identifier_type_code, put
from ._people import preferred_name, xad, xpn, xtn

__all__ = ["find_patient", "patient_of", "write_pid"]

Json = dict[str, Any]
_BIRTH_TIME = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"
_MOTHERS_MAIDEN = "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName"
_SSN = "http://hl7.org/fhir/sid/us-ssn"
# AdministrativeGender -> table 0001 (reverse of the IG AdministrativeSex map).
GENDER_CODE = {"male": "M", "female": "F", "other": "O", "unknown": "U"}
# v3 MaritalStatus -> table 0002, for a maritalStatus without a v2-0002 coding.
_V3_TO_0002 = {"L": "A", "T": "P", "UNK": "U", "A": "N"}
_V2_MARITAL = v2_table_uri("0002")


def find_patient(writer: Writer, reference: Json | None, *, location: str) -> Json | None:
    """The Patient a Reference points at.

    A Reference that is not among the resources but carries an ``identifier`` gives a
    Patient with just that identifier. ``None`` when there is no Reference at all.

    Raises:
        MappingError: the Reference cannot be resolved and has no identifier (a message
            about an unidentifiable patient must not be sent).
    """
    if not reference:
        return None
    target = writer.resources.resolve(reference)
    if target is not None:
        if target.get("resourceType") != "Patient":
            raise MappingError(
                f"expected a Patient, found a {target.get('resourceType')}", location=location
            )
        return target
    if reference.get("identifier"):
        return {"resourceType": "Patient", "identifier": [reference["identifier"]]}
    raise MappingError(
        f"{reference.get('reference', 'the patient')} is not among the resources "
        "and the reference has no identifier",
        location=location,
    )


def patient_of(writer: Writer) -> Json:
    """The one Patient an ADT message is about (inactive, merged-away ones ignored).

    Raises:
        MappingError: no Patient, or several active ones.
    """
    patients = writer.resources.of_type("Patient")
    active = [p for p in patients if p.get("active") is not False] or patients
    if not active:
        raise MappingError("no Patient among the resources", location="Patient")
    if len(active) > 1:
        raise MappingError(
            f"{len(active)} Patients among the resources; pass the one to send",
            location="Patient",
        )
    return active[0]


def _identifiers(writer: Writer, patient: Json) -> tuple[list[Value], str, Value]:
    """PID-3 repetitions, PID-19 (SSN) and PID-20 (driver's licence)."""
    pid3: list[Value] = []
    ssn = ""
    licence: Value = ""
    for index, identifier in enumerate(patient.get("identifier", [])):
        where = f"Patient.identifier[{index}]"
        if not identifier.get("value"):
            continue
        if identifier.get("system") == _SSN and not ssn:
            ssn = str(identifier["value"])
            continue
        if identifier_type_code(identifier) == "DL" and not licence:
            state = hd(identifier.get("system"), writer.profile)
            if not isinstance(state, str) or state == "driver-license":
                state = ""
            expiry = dt((identifier.get("period") or {}).get("end"), f"{where}.period.end")
            licence = (str(identifier["value"]), state, expiry)
            continue
        pid3.append(cx(identifier, writer, location=where))
    return pid3, ssn, licence


def _marital(writer: Writer, concept: Json | None) -> Value:
    code = coding_code(concept, _V2_MARITAL)
    if not code:
        v3 = coding_code(concept, V3_MARITAL)
        code = _V3_TO_0002.get(v3, v3)
    if not code:
        return ""
    if not writer.since(2, 3, 1):
        return code  # IS in v2.3
    return (code, "", "HL70002")


def _extension(resource: Json, url: str) -> Json:
    return next((e for e in resource.get("extension", []) if e.get("url") == url), {})


def write_pid(writer: Writer, patient: Json, *, location: str = "Patient") -> None:
    """Append a PID for ``patient``.

    Raises:
        MappingError: the Patient has no identifier (PID-3 is required) or a bad date.
    """
    pid3, ssn, licence = _identifiers(writer, patient)
    if not pid3 and not ssn:
        raise MappingError("the Patient has no identifier for PID-3", location=location)
    pid = writer.segment("PID")
    pid.set(1, "1")
    put(pid, 3, pid3)
    names = patient.get("name", [])
    official = preferred_name(names)
    ordered = [official, *[n for n in names if n is not official]] if official else []
    put(pid, 5, [xpn(n) for n in ordered])
    maiden = _extension(patient, _MOTHERS_MAIDEN).get("valueString")
    if maiden:
        put(pid, 6, str(maiden))
    birth = _extension(patient.get("_birthDate") or {}, _BIRTH_TIME).get("valueDateTime")
    put(pid, 7, dtm(birth or patient.get("birthDate"), f"{location}.birthDate"))
    gender = patient.get("gender")
    if gender:
        if gender not in GENDER.values():
            raise MappingError(f"unknown gender {gender!r}", location=f"{location}.gender")
        pid.set(8, GENDER_CODE[gender])
    put(pid, 11, [xad(a) for a in patient.get("address", [])])
    home: list[Value] = []
    work: list[Value] = []
    for point in sorted(patient.get("telecom", []), key=lambda p: p.get("rank", 1 << 30)):
        use, value = xtn(point)
        if value:
            (work if use == "work" else home).append(value)
    put(pid, 13, home)
    put(pid, 14, work)
    communications = patient.get("communication", [])
    preferred = next((c for c in communications if c.get("preferred")), None)
    language = (preferred or (communications[0] if communications else {})).get("language")
    put(pid, 15, writer.coded(language))
    put(pid, 16, _marital(writer, patient.get("maritalStatus")))
    put(pid, 19, ssn)
    put(pid, 20, licence)
    if "multipleBirthBoolean" in patient:
        pid.set(24, "Y" if patient["multipleBirthBoolean"] else "N")
    elif "multipleBirthInteger" in patient:
        pid.set(24, "Y")
        pid.set(25, str(patient["multipleBirthInteger"]))
    if patient.get("deceasedDateTime"):
        pid.set(29, dtm(patient["deceasedDateTime"], f"{location}.deceasedDateTime"))
        pid.set(30, "Y")
    elif "deceasedBoolean" in patient:
        pid.set(30, "Y" if patient["deceasedBoolean"] else "N")
