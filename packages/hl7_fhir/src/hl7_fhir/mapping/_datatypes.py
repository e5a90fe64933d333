"""HL7 v2 data types -> FHIR R4 data types (JSON), after the V2-to-FHIR IG datatype maps.

Every function takes a v2 :class:`~hl7_fhir.v2.Repetition` (one repetition of a field)
and returns a FHIR element as a dict, or ``None``/``[]`` when the v2 value is empty.
Dates raise :class:`MappingError` naming the path, so a bad value is reported where it
is, never silently dropped.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ..errors import MappingError, ParseError
from ..v2 import HL7DateTime, Precision, Repetition, parse_datetime
from ._codes import (
    ADDRESS_USE,
    IDENTIFIER_TYPES,
    NAME_USE,
    TELECOM_EQUIPMENT,
    TELECOM_USE,
    code_system_uri,
    v2_table_uri,
)
from ._profile import MappingProfile

__all__ = [
    "LOCAL_CODE_SYSTEM",
    "address",
    "codeable_concept",
    "coding",
    "contact_points",
    "fhir_date",
    "fhir_datetime",
    "fhir_instant",
    "human_name",
    "identifier",
    "identifier_type",
    "person_name",
    "system_for_hd",
    "v2_system_name",
]

Json = dict[str, Any]
LOCAL_CODE_SYSTEM = "urn:hl7v2:codesystem:{name}"
_LOCAL_PREFIX = LOCAL_CODE_SYSTEM.split("{", 1)[0]
_REVERSE_SYSTEMS: dict[str, str] = {}


def _clean(element: Json) -> Json:
    """Drop empty values so the JSON carries only what the message said."""
    return {k: v for k, v in element.items() if v not in (None, "", [], {})}


# -- dates ---------------------------------------------------------------------------


def _parsed(text: str, location: str) -> HL7DateTime | None:
    try:
        return parse_datetime(text)
    except ParseError as exc:
        raise MappingError(f"not an HL7 date/time: {text!r}", location=location) from exc


def _with_zone(value: HL7DateTime, profile: MappingProfile) -> datetime:
    if value.has_offset:
        return value.value
    return value.value.replace(tzinfo=profile.timezone)


def _iso_offset(moment: datetime) -> str:
    text = moment.isoformat()
    if text.endswith("+00:00"):
        return "Z"
    return text[-6:]


def fhir_datetime(text: str, profile: MappingProfile, location: str) -> str | None:
    """A FHIR ``dateTime`` keeping the sent precision; a time always gets an offset.

    FHIR requires seconds and an offset once a time is given: minutes-only values get
    ``:00``, and values sent without an offset get the profile's default time zone.
    """
    value = _parsed(text, location)
    if value is None:
        return None
    if value.precision <= Precision.DAY:
        return value.isoformat()
    moment = _with_zone(value, profile)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if value.precision == Precision.FRACTION and value.fraction_digits:
        stamp += "." + f"{moment.microsecond:06d}"[: value.fraction_digits]
    return stamp + _iso_offset(moment)


def fhir_instant(text: str, profile: MappingProfile, location: str) -> str | None:
    """A FHIR ``instant`` (needs at least seconds): lower precisions are padded."""
    value = _parsed(text, location)
    if value is None:
        return None
    moment = _with_zone(value, profile)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + _iso_offset(moment)


def fhir_date(text: str, location: str) -> str | None:
    """A FHIR ``date`` at the sent precision (a time part, if any, is dropped)."""
    value = _parsed(text, location)
    if value is None:
        return None
    precision = min(value.precision, Precision.DAY)
    return HL7DateTime(value.value.replace(tzinfo=None), Precision(precision)).isoformat()


# -- identifiers and codes -----------------------------------------------------------


def system_for_hd(namespace: str, universal_id: str, profile: MappingProfile) -> str | None:
    """The identifier system for an assigning authority (HD): profile map, OID, or template."""
    for key in (namespace, universal_id):
        if key and key in profile.identifier_systems:
            return profile.identifier_systems[key]
    if universal_id:
        return profile.system_for(universal_id)
    if namespace:
        return profile.system_for(namespace)
    return None


def identifier_type(code: str) -> Json | None:
    """Identifier.type from a table 0203 code (``MR``, ``ACSN``, ...)."""
    if not code:
        return None
    display = IDENTIFIER_TYPES.get(code)
    return {"coding": [_clean({"system": v2_table_uri("0203"), "code": code, "display": display})]}


def identifier(
    rep: Repetition, profile: MappingProfile, *, location: str, type_code: str | None = None
) -> Json | None:
    """CX (or EI: value, namespace, universal id, type) -> Identifier.

    CX.1 value, CX.4 assigning authority -> system, CX.5 type, CX.7/CX.8 period.
    """
    value = rep[1]
    if not value:
        return None
    system = system_for_hd(rep[4, 1], rep[4, 2], profile)
    element: Json = {
        "type": identifier_type(type_code or rep[5]),
        "system": system,
        "value": value,
    }
    start = fhir_date(rep[7], f"{location}.7") if rep[7] else None
    end = fhir_date(rep[8], f"{location}.8") if rep[8] else None
    if start or end:
        element["period"] = _clean({"start": start, "end": end})
    return _clean(element)


def entity_identifier(
    rep: Repetition, profile: MappingProfile, *, type_code: str | None = None
) -> Json | None:
    """EI (entity id^namespace^universal id^type) -> Identifier, as for order numbers."""
    value = rep[1]
    if not value:
        return None
    system = system_for_hd(rep[2], rep[3], profile)
    return _clean({"type": identifier_type(type_code or ""), "system": system, "value": value})


def v2_system_name(system: str) -> str:
    """The v2 coding system name for a FHIR system URI (reverse of :func:`coding`)."""
    if not _REVERSE_SYSTEMS:
        from ._codes import CODE_SYSTEMS

        for name, uri in CODE_SYSTEMS.items():
            _REVERSE_SYSTEMS.setdefault(uri, name)
    if system in _REVERSE_SYSTEMS:
        return _REVERSE_SYSTEMS[system]
    if system.startswith(_LOCAL_PREFIX):
        return system[len(_LOCAL_PREFIX) :]
    match = re.fullmatch(r"http://terminology\.hl7\.org/CodeSystem/v2-(\d{4})", system)
    if match:
        return f"HL7{match.group(1)}"
    if system.startswith("urn:oid:"):
        return system[len("urn:oid:") :]
    return system


def coding(code: str, display: str, system_name: str, profile: MappingProfile) -> list[Json]:
    """One v2 code as FHIR codings: the profile's standard code first, then the original."""
    if not code:
        return []
    system = code_system_uri(system_name)
    if system is None and system_name:
        system = LOCAL_CODE_SYSTEM.format(name=re.sub(r"[^A-Za-z0-9._-]", "-", system_name))
    original = _clean({"system": system, "code": code, "display": display})
    translated = profile.translate(system_name, code)
    if translated is None:
        return [original]
    standard = _clean(
        {"system": translated.system, "code": translated.code, "display": translated.display}
    )
    return [standard, original]


def codeable_concept(rep: Repetition, profile: MappingProfile) -> Json | None:
    """CE/CWE/CNE -> CodeableConcept: both triplets as codings, CWE.9 (or a lone CE.2) as text."""
    codings = coding(rep[1], rep[2], rep[3], profile) + coding(rep[4], rep[5], rep[6], profile)
    text = rep[9] or (rep[2] if not rep[1] else "")
    if not codings and not text:
        return None
    return _clean({"coding": codings, "text": text})


# -- people, places, contacts --------------------------------------------------------


def human_name(rep: Repetition) -> Json | None:
    """XPN -> HumanName: family (XPN.1.1), given (XPN.2, XPN.3), suffix, prefix, use."""
    family = rep[1, 1]
    given = [g for g in (rep[2], rep[3]) if g]
    if not family and not given:
        return None
    use = NAME_USE.get(rep[7])
    suffix = [s for s in (rep[4], rep[6]) if s]
    return _clean(
        {
            "use": use,
            "family": family,
            "given": given,
            "prefix": [rep[5]] if rep[5] else [],
            "suffix": suffix,
        }
    )


def person_name(rep: Repetition) -> Json | None:
    """XCN (id^family^given^middle^suffix^prefix^degree) -> HumanName."""
    family = rep[2, 1]
    given = [g for g in (rep[3], rep[4]) if g]
    if not family and not given:
        return None
    return _clean(
        {
            "use": NAME_USE.get(rep[10]),
            "family": family,
            "given": given,
            "prefix": [rep[6]] if rep[6] else [],
            "suffix": [s for s in (rep[5], rep[7]) if s],
        }
    )


def address(rep: Repetition) -> Json | None:
    """XAD -> Address: lines (XAD.1.1, XAD.2), city, state, postal code, country, use/type."""
    lines = [line for line in (rep[1, 1], rep[2]) if line]
    city, state, postal, country = rep[3], rep[4], rep[5], rep[6]
    district = rep[9]
    if not (lines or city or state or postal or country):
        return None
    use, kind = ADDRESS_USE.get(rep[7], (None, None))
    return _clean(
        {
            "use": use,
            "type": kind,
            "line": lines,
            "city": city,
            "district": district,
            "state": state,
            "postalCode": postal,
            "country": country,
        }
    )


def _phone_number(rep: Repetition) -> str:
    if rep[1]:
        return rep[1]
    if rep[12]:
        return rep[12]
    parts = []
    if rep[5]:
        parts.append(f"+{rep[5].lstrip('+')}")
    if rep[6]:
        parts.append(f"({rep[6]})")
    if rep[7]:
        parts.append(rep[7])
    number = " ".join(parts)
    if number and rep[8]:
        number += f" ext. {rep[8]}"
    return number


def contact_points(rep: Repetition, *, default_use: str | None = None) -> list[Json]:
    """XTN -> ContactPoint(s): phone from XTN.1 or XTN.5-8, email from XTN.4.

    Use from XTN.2 (table 0201), system from XTN.3 (table 0202); ``CP`` marks a mobile.
    """
    use_code, equipment = rep[2].upper(), rep[3].upper()
    use = TELECOM_USE.get(use_code, default_use)
    if equipment == "CP":
        use = "mobile"
    points: list[Json] = []
    email = rep[4] or (rep[1] if use_code == "NET" or equipment in ("INTERNET", "X.400") else "")
    if email:
        points.append(
            _clean({"system": "email", "value": email, "use": use if use != "mobile" else None})
        )
    if use_code == "NET" or equipment in ("INTERNET", "X.400"):
        return points
    number = _phone_number(rep)
    if number:
        system = TELECOM_EQUIPMENT.get(equipment, "phone")
        if use_code == "BPN":
            system = "pager"
        points.append(_clean({"system": system, "value": number, "use": use}))
    return points
