"""OBX -> Observation, after the IG's OBX[Observation] segment map.

Values follow OBX-2: NM and SN become quantities (UCUM when the unit is UCUM or reads
as UCUM), ranges or ratios; ST/TX/FT text (continuation lines joined); CE/CWE/CNE
codeable concepts; DT/TS/DTM dateTimes; TM a time. A value that contradicts its type
(``abc`` sent as NM) is a MappingError at ``OBX[n]-5``: the sender must fix it, and
a number silently turned into text would vanish from every trend and query.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..errors import MappingError
from ..v2 import Repetition, Segment
from ._codes import v2_table_uri
from ._context import MappingContext
from ._datatypes import (
    address,
    codeable_concept,
    contact_points,
    entity_identifier,
    fhir_datetime,
    human_name,
    identifier_type,
    person_name,
    system_for_hd,
)
from ._order_codes import INTERPRETATION, OBSERVATION_STATUS
from ._order_common import TEXT_TYPES, ObservationItem, notes, sender_system, synthetic_system
from ._practitioner import practitioner_reference
from ._quantity import hl7_time, quantity, reference_range, structured_number, unit_of
from ._report_text import content_type, decode_ed, text_value

__all__ = [
    "attachment",
    "document",
    "observation_keys",
    "observation_resource",
    "observation_status",
    "organization_reference",
]

Json = dict[str, Any]
_V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
_VALUE_ATTACHMENT = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Observation.value"
_ANALYSIS_TIME = "http://hl7.org/fhir/StructureDefinition/observation-analysis-date-time"


def _text_of(rep: Repetition, context: MappingContext) -> str:
    message = context.message
    return text_value([rep], message.encoding, message.charset)


def _value(context: MappingContext, kind: str, rep: Repetition, unit: Json, where: str) -> Json:
    """One OBX-5 repetition -> ``{"valueX": ...}`` (empty when there is nothing)."""
    profile = context.profile
    if kind == "NM":
        return {"valueQuantity": quantity(rep[1], unit, where)} if rep[1].strip() else {}
    if kind == "SN":
        return structured_number(rep, unit, where)
    if kind in ("CE", "CWE", "CNE", "CF", "CM"):
        concept = codeable_concept(rep, profile)
        return {"valueCodeableConcept": concept} if concept else {}
    if kind in ("IS", "ID"):
        return {"valueCodeableConcept": {"coding": [{"code": rep[1]}]}} if rep[1] else {}
    if kind in ("DT", "DTM", "TS", "DIN"):
        return {"valueDateTime": fhir_datetime(rep[1, 1], profile, where)} if rep[1] else {}
    if kind == "TM":
        return {"valueTime": hl7_time(rep[1], where)} if rep[1] else {}
    if kind == "DR":
        start = fhir_datetime(rep[1, 1], profile, f"{where}.1") if rep[1] else None
        end = fhir_datetime(rep[2, 1], profile, f"{where}.2") if rep[2] else None
        period = {k: v for k, v in (("start", start), ("end", end)) if v}
        return {"valuePeriod": period} if period else {}
    if kind == "NR":
        bounds = {
            name: quantity(rep[index], unit, f"{where}.{index}", simple=True)
            for name, index in (("low", 1), ("high", 2))
            if rep[index].strip()
        }
        return {"valueRange": bounds} if bounds else {}
    text = _readable(kind, rep) or _text_of(rep, context)
    return {"valueString": text} if text else {}


def _readable(kind: str, rep: Repetition) -> str:
    """XAD, XPN/XCN/PN/CN, XTN, CX/EI as one readable string."""
    if kind == "XAD":
        element = address(rep)
        if element:
            place = " ".join(p for p in (element.get("state"), element.get("postalCode")) if p)
            parts = [*element.get("line", []), element.get("city"), place, element.get("country")]
            return ", ".join(p for p in parts if p)
    elif kind in ("XPN", "PN"):
        name = human_name(rep)
        if name:
            return " ".join([*name.get("given", []), name.get("family", "")]).strip()
    elif kind in ("XCN", "CN"):
        name = person_name(rep)
        if name:
            return " ".join([*name.get("given", []), name.get("family", "")]).strip()
    elif kind == "XTN":
        points = contact_points(rep)
        return ", ".join(str(p["value"]) for p in points)
    elif kind in ("CX", "EI", "EIP", "HD"):
        return rep[1]
    return ""


def _values(context: MappingContext, item: ObservationItem, code: Json) -> Json:
    """OBX-5 -> value[x]; several repetitions of a non-text value -> components."""
    obx = item.obx
    kind = obx.get(2, 1, 1).upper()
    where = f"{item.where}-5"
    reps = obx.field(5).repetitions
    for extra in item.continuations:
        reps += extra.field(5).repetitions
    if not reps:
        return {}
    if kind in TEXT_TYPES or (not kind and len(reps) > 1):
        message = context.message
        text = text_value(reps, message.encoding, message.charset)
        return {"valueString": text} if text else {}
    unit_reps = obx.field(6).repetitions
    unit = unit_of(unit_reps[0] if unit_reps else None)
    values = [v for rep in reps if (v := _value(context, kind, rep, unit, where))]
    if len(values) <= 1:
        return values[0] if values else {}
    return {"component": [{"code": code, **value} for value in values]}


def _interpretation(context: MappingContext, rep: Repetition) -> Json | None:
    code = rep[1].strip()
    if code.upper() in INTERPRETATION:
        upper = code.upper()
        coding = {"system": _V3_INTERPRETATION, "code": upper, "display": INTERPRETATION[upper]}
        return {"coding": [coding]}
    if code and not rep[3]:
        return {"coding": [{"system": v2_table_uri("0078"), "code": code}]}
    return codeable_concept(rep, context.profile)


def observation_status(
    code: str, has_value: bool, fallback: str, where: str, *, strict: bool = True
) -> str:
    """OBX-11 -> Observation.status; an empty OBX-11 takes ``fallback`` (the report's).

    Raises:
        MappingError: with ``strict`` (results), a code outside table 0085: whether a
            result is final must never be guessed. Orders take ``unknown`` instead.
    """
    code = code.strip().upper()
    if not code:
        return fallback
    if code not in OBSERVATION_STATUS:
        if not strict:
            return "unknown"
        raise MappingError(f"unknown observation result status {code!r}", location=where)
    if code == "O" and not has_value:
        return "registered"
    return OBSERVATION_STATUS[code]


def organization_reference(
    context: MappingContext, rep: Repetition, address_rep: Repetition | None, source: str
) -> Json | None:
    """XON -> Organization (ensure, keyed on XON.10 or XON.3), or a display-only reference."""
    name = rep[1]
    value = rep[10] or rep[3]
    if not value:
        return {"display": name} if name else None
    system = system_for_hd(rep[6, 1], rep[6, 2], context.profile) or sender_system(context)
    key = {"system": system, "value": value}
    kind = identifier_type(rep[7])
    resource: Json = {
        "resourceType": "Organization",
        "identifier": [{**({"type": kind} if kind else {}), **key}],
    }
    if name:
        resource["name"] = name
    where = address(address_rep) if address_rep is not None else None
    if where:
        resource["address"] = [where]
    reference = context.bundle.add(resource, key=key, mode="ensure", source=source)
    return {"reference": reference, **({"display": name} if name else {})}


def _performers(context: MappingContext, item: ObservationItem) -> list[Json]:
    obx = item.obx
    found: list[Json] = []
    for number in (16, 25):
        for rep in obx.field(number):
            who = practitioner_reference(context, rep, source=f"{item.where}-{number}")
            if who and who not in found:
                found.append(who)
    org = obx.field(23).repetitions
    if org:
        address_reps = obx.field(24).repetitions
        where = organization_reference(
            context, org[0], address_reps[0] if address_reps else None, f"{item.where}-23"
        )
        if where:
            found.append(where)
    return found


def attachment(context: MappingContext, item: ObservationItem) -> Json | None:
    """An ED or RP OBX-5 as an Attachment (title from OBX-3), or None when empty."""
    found = document(context, item)
    return found[0] if found else None


def document(context: MappingContext, item: ObservationItem) -> tuple[Json, bytes] | None:
    """An ED or RP OBX-5 as an Attachment and its decoded bytes (empty for RP).

    Raises:
        MappingError: ED data that is not what ED.4 says (``OBX[n]-5.5``).
    """
    obx = item.obx
    reps = obx.field(5).repetitions
    if not reps:
        return None
    rep = reps[0]
    title = obx.get(3, 1, 2) or obx.get(3, 1, 1)
    raw = b""
    if obx.get(2, 1, 1).upper() == "RP":
        if not rep[1]:
            return None
        element: Json = {"contentType": content_type(rep[3], rep[4]), "url": rep[1]}
    else:
        data = decode_ed(rep, context.message.charset, location=f"{item.where}-5")
        if data is None:
            return None
        element = {"contentType": data.content_type, "data": data.base64}
        raw = data.data
    if title:
        element["title"] = title
    return element, raw


def _instance_identifier(context: MappingContext, obx: Segment) -> Json | None:
    """OBX-21 (observation instance identifier, EI) typed FILL, as the IG maps it."""
    reps = obx.field(21).repetitions
    element = entity_identifier(reps[0], context.profile, type_code="FILL") if reps else None
    if element is not None:
        element.setdefault("system", sender_system(context))
    return element


def observation_keys(
    context: MappingContext, order_value: str, items: list[ObservationItem]
) -> list[Json]:
    """A stable key per OBX, unique within the message: OBX-21 when sent (and not
    repeated), else ``<order>/<OBX-3>[/<OBX-4>]`` (system ``<sender>:observation``),
    with the set id appended only when the same code and sub-id repeat."""
    system = synthetic_system(context, "observation")
    used: set[tuple[str, str]] = context.extras.setdefault("observation_keys", set())
    bases = []
    for item in items:
        obx = item.obx
        code = obx.get(3, 1, 1) or obx.get(3, 1, 4) or obx.get(3, 1, 2) or obx.get(3, 1, 5)
        sub = (
            ".".join(part for part in obx.field(4).repetitions[0].components if part)
            if obx.get(4)
            else ""
        )
        bases.append("/".join(p for p in (order_value, code, sub) if p))
    counts = Counter(bases)
    keys: list[Json] = []
    for index, (item, base) in enumerate(zip(items, bases, strict=True), start=1):
        instance = _instance_identifier(context, item.obx)
        if instance is not None and (instance["system"], instance["value"]) not in used:
            key = {"system": instance["system"], "value": instance["value"]}
        else:
            value = base if counts[base] == 1 else f"{base}#{item.obx.get(1) or index}"
            while (system, value) in used:
                value = f"{value}#{index}"
            key = {"system": system, "value": value}
        used.add((key["system"], key["value"]))
        keys.append(key)
    return keys


def observation_resource(
    context: MappingContext,
    item: ObservationItem,
    key: Json,
    *,
    based_on: str | None,
    effective: str | None,
    status_fallback: str,
    category: Json | None = None,
    strict: bool = True,
) -> Json | None:
    """The Observation of one OBX (None for an OBX with neither identifier nor value).

    Raises:
        MappingError: an OBX with a value but no OBX-3, a value that contradicts OBX-2,
            an unknown OBX-11.
    """
    obx, where, profile = item.obx, item.where, context.profile
    code_reps = obx.field(3).repetitions
    code = codeable_concept(code_reps[0], profile) if code_reps else None
    kind = obx.get(2, 1, 1).upper()
    if kind in ("ED", "RP"):
        found = attachment(context, item)
        value: Json = (
            {"extension": [{"url": _VALUE_ATTACHMENT, "valueAttachment": found}]} if found else {}
        )
    else:
        value = _values(context, item, code or {})
    if code is None:
        if value:
            raise MappingError("an observation value without an identifier", location=f"{where}-3")
        return None
    has_value = (
        any(k.startswith("value") or k == "component" for k in value) or "extension" in value
    )
    instance = _instance_identifier(context, obx)
    identifiers = [instance] if instance is not None else []
    if instance is None or (instance["system"], instance["value"]) != (key["system"], key["value"]):
        identifiers.insert(0, {"use": "secondary", **key})
    resource: Json = {
        "resourceType": "Observation",
        "identifier": identifiers,
        "status": observation_status(
            obx.get(11, 1, 1), has_value, status_fallback, f"{where}-11", strict=strict
        ),
        "code": code,
        "subject": {"reference": context.patient},
    }
    if based_on:
        resource["basedOn"] = [{"reference": based_on}]
    if category:
        resource["category"] = [category]
    if context.encounter:
        resource["encounter"] = {"reference": context.encounter}
    when = fhir_datetime(obx.get(14, 1, 1), profile, f"{where}-14") if obx.get(14) else effective
    if when:
        resource["effectiveDateTime"] = when
    resource.update(value)
    result_status = obx.get(11, 1, 1).strip().upper()
    if not has_value and result_status in ("X", "N"):
        reason = "not-performed" if result_status == "X" else "not-asked"
        resource["dataAbsentReason"] = {"coding": [{"system": _ABSENT, "code": reason}]}
    unit_reps = obx.field(6).repetitions
    ranges = [
        r
        for rep in obx.field(7)
        if (r := reference_range(rep.value, unit_of(unit_reps[0] if unit_reps else None)))
    ]
    if ranges:
        resource["referenceRange"] = ranges
    interpretations = [i for rep in obx.field(8) if (i := _interpretation(context, rep))]
    if interpretations:
        resource["interpretation"] = interpretations
    performers = _performers(context, item)
    if performers:
        resource["performer"] = performers
    method = obx.field(17).repetitions
    if method and (concept := codeable_concept(method[0], profile)):
        resource["method"] = concept
    site = obx.field(20).repetitions
    if site and (concept := codeable_concept(site[0], profile)):
        resource["bodySite"] = concept
    if obx.get(19, 1, 1):
        analysed = fhir_datetime(obx.get(19, 1, 1), profile, f"{where}-19")
        resource.setdefault("extension", []).append(
            {"url": _ANALYSIS_TIME, "valueDateTime": analysed}
        )
    annotations = notes(context, item.notes)
    if annotations:
        resource["note"] = annotations
    return resource
