"""ORU^R01: results -> DiagnosticReport per OBR, Observation per OBX, the order stub.

After the IG's ORU_R01 message map and its OBR[DiagnosticReport] and OBX[Observation]
segment maps. The report is upserted on its order's key (the same key ORM gives the
ServiceRequest), the ServiceRequest is only *ensured* (a minimal stub when the ORU comes
first), so the report lands on its order whichever message arrives first. Reports sent
as documents (OBX of type ED/RP) become ``presentedForm``; RTF and TX/FT reports also
get a plain-text ``conclusion`` a clinician can read in any viewer.
"""

from __future__ import annotations

import base64
from typing import Any

from ...errors import MappingError
from ...v2 import Repetition
from .._context import MappingContext
from .._datatypes import codeable_concept, fhir_datetime, fhir_instant
from .._encounter import map_encounter
from .._observation import document, observation_keys, observation_resource
from .._order_codes import REPORT_STATUS, observation_category, section_code, service_category
from .._order_common import (
    OrderGroup,
    assign_keys,
    notes,
    order_groups,
    service_request,
)
from .._patient import map_patient
from .._practitioner import practitioner_reference
from .._registry import register
from .._report_text import is_rtf, normalise_text, rtf_to_text
from .._zsegments import apply_z_segments

__all__ = ["REPORT_STATUS", "map_results"]

Json = dict[str, Any]
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_PERFORMER_FUNCTION = "http://hl7.org/fhir/StructureDefinition/event-performerFunction"
_REPORT_NOTE = "http://hl7.org/fhir/5.0/StructureDefinition/extension-DiagnosticReport.note"

# A report's status read as the default for observations without an OBX-11.
_OBSERVATION_DEFAULT = {
    "final": "final",
    "preliminary": "preliminary",
    "partial": "preliminary",
    "corrected": "corrected",
    "amended": "amended",
    "registered": "registered",
    "cancelled": "cancelled",
}


@register("ORU^R01")
def map_results(context: MappingContext) -> None:
    """Patient (ensure), Encounter, and per order: ServiceRequest stub (ensure),
    Observations (upsert) and the DiagnosticReport (upsert).

    Raises:
        MappingError: no OBR, an OBR without OBR-4, an unknown status code, a value
            that contradicts its type; ``location`` names the field.
    """
    map_patient(context, mode="ensure")
    groups, loose, _ = order_groups(context.message)
    if not any(g.obr is not None for g in groups):
        raise MappingError("an ORU^R01 without any OBR", location="OBR")
    assign_keys(context, groups)
    map_encounter(context, anchor=groups[0].key["value"], mode="ensure")
    mapped: list[tuple[OrderGroup, str]] = []
    for group in groups:
        request = service_request(context, group)
        reference = context.bundle.add(request, key=group.key, mode="ensure", source=group.where)
        mapped.append((group, reference))
        _report(context, group, reference)
    if loose:
        order = f"{context.message.control_id or 'message'}/patient"
        keys = observation_keys(context, order, loose)
        for item, key in zip(loose, keys, strict=True):
            resource = observation_resource(
                context, item, key, based_on=None, effective=None, status_fallback="unknown"
            )
            if resource is not None:
                context.bundle.add(resource, key=key, mode="upsert", source=item.where)
    apply_z_segments(context, mapped, results=True)


def _report_status(group: OrderGroup) -> str | None:
    obr = group.obr
    if obr is None:
        return None
    code = obr.get(25, 1, 1).strip().upper()
    shifted = obr.get(24, 1, 1).strip().upper()
    if not code and shifted in REPORT_STATUS and section_code(obr) != shifted:
        return REPORT_STATUS[shifted]  # a sender that shifted OBR-24/25 one to the left
    if not code:
        return None
    if code not in REPORT_STATUS:
        raise MappingError(f"unknown result status {code!r}", location=group.at("OBR", 25))
    return REPORT_STATUS[code]


def _derived_status(statuses: list[str]) -> str:
    """A report status from its observations' statuses (when OBR-25 is empty)."""
    found = set(statuses)
    if not found:
        return "unknown"
    for allowed, status in (
        ({"final"}, "final"),
        ({"final", "corrected", "amended"}, "corrected"),
        ({"cancelled"}, "cancelled"),
        ({"registered"}, "registered"),
        ({"preliminary", "registered"}, "preliminary"),
    ):
        if found <= allowed:
            return status
    return "partial" if found & {"final", "corrected", "amended"} else "unknown"


def _person(context: MappingContext, rep: Repetition) -> Repetition:
    """NDL.1 (a CNN: id&family&given&middle&suffix&prefix&degree&table&authority...) as
    an XCN, so the Practitioner rules apply. A sender that wrote an XCN is read as such."""
    encoding = context.message.encoding
    components = rep.components
    first = components[0] if components else ""
    if encoding.subcomponent in first:
        parts = first.split(encoding.subcomponent)
        parts += [""] * (11 - len(parts))
        xcn = [*parts[:8], encoding.subcomponent.join(parts[8:11])]
        return Repetition(encoding.component.join(xcn), encoding, context.message.charset)
    if len(components) > 1 and components[1] and not components[1][:1].isdigit():
        return rep
    return Repetition(first, encoding, context.message.charset)


def _people(context: MappingContext, group: OrderGroup, number: int) -> list[Json]:
    assert group.obr is not None
    found = []
    for rep in group.obr.field(number):
        who = practitioner_reference(context, _person(context, rep), source=group.at("OBR", number))
        if who and who not in found:
            found.append(who)
    return found


def _performers(context: MappingContext, group: OrderGroup) -> list[Json]:
    """OBR-34 technician (SPRF), OBR-35 transcriptionist (TRANS); else the people who
    observed the results (OBX-16)."""
    found: list[Json] = []
    for number, function in ((34, "SPRF"), (35, "TRANS")):
        for who in _people(context, group, number):
            role = {"coding": [{"system": _PARTICIPATION, "code": function}]}
            found.append(
                {**who, "extension": [{"url": _PERFORMER_FUNCTION, "valueCodeableConcept": role}]}
            )
    if found:
        return found
    for item in group.observations:
        for rep in item.obx.field(16):
            observer = practitioner_reference(context, rep, source=f"{item.where}-16")
            if observer and observer not in found:
                found.append(observer)
    return found


def _document_text(context: MappingContext, content_type: str, data: bytes) -> str:
    """Readable text of an RTF or plain-text document (else empty)."""
    if is_rtf(data):
        return rtf_to_text(data)
    if content_type == "text/plain":
        return normalise_text(data.decode(context.message.charset, errors="replace"))
    return ""


def _report(context: MappingContext, group: OrderGroup, request: str) -> None:
    """The DiagnosticReport of one OBR group and its Observations (an ORC without an
    OBR has no report: its OBXs, if any, are still mapped, based on the order)."""
    obr = group.obr
    profile = context.profile
    code_reps = obr.field(4).repetitions if obr is not None else []
    code = codeable_concept(code_reps[0], profile) if code_reps else None
    if obr is not None and code is None:
        raise MappingError(
            "a report needs OBR-4 (universal service identifier)", location=group.at("OBR", 4)
        )
    status = _report_status(group)
    start = end = None
    if obr is not None and obr.get(7):
        start = fhir_datetime(obr.get(7, 1, 1), profile, group.at("OBR", 7))
    if obr is not None and obr.get(8):
        end = fhir_datetime(obr.get(8, 1, 1), profile, group.at("OBR", 8))
    section = section_code(obr)
    fallback = _OBSERVATION_DEFAULT.get(status or "", "unknown")
    items = [i for i in group.observations if i.obx.get(2, 1, 1).upper() not in ("ED", "RP")]
    keys = observation_keys(context, group.key["value"], items)
    observations: list[Json] = []
    results: list[Json] = []
    texts: list[str] = []
    for item, key in zip(items, keys, strict=True):
        resource = observation_resource(
            context,
            item,
            key,
            based_on=request,
            effective=start,
            status_fallback=fallback,
            category=observation_category(section),
        )
        if resource is None:
            continue
        if item.obx.get(2, 1, 1).upper() in ("TX", "FT") and resource.get("valueString"):
            texts.append(resource["valueString"])
        observations.append(resource)
        reference = context.bundle.add(resource, key=key, mode="upsert", source=item.where)
        results.append({"reference": reference})
    if obr is None or code is None:
        return
    forms: list[Json] = []
    rendered: list[str] = []
    for item in group.observations:
        if item.obx.get(2, 1, 1).upper() not in ("ED", "RP"):
            continue
        found = document(context, item)
        if found is None:
            continue
        form, data = found
        forms.append(form)
        text = _document_text(context, form["contentType"], data)
        if text and form["contentType"] != "text/plain":
            rendered.append(text)
            title = f"{form.get('title', 'Report')} (plain text)"
            plain = base64_text(text)
            forms.append(
                {"contentType": "text/plain; charset=utf-8", "data": plain, "title": title}
            )
        elif text:
            rendered.append(text)
    report: Json = {
        "resourceType": "DiagnosticReport",
        "identifier": [dict(i) for i in group.identifiers],
        "basedOn": [{"reference": request}],
        "status": status or _derived_status([o["status"] for o in observations]),
        "code": code,
        "subject": {"reference": context.patient},
    }
    category = service_category(section)
    if category:
        report["category"] = [category]
    if context.encounter:
        report["encounter"] = {"reference": context.encounter}
    if end:
        report["effectivePeriod"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    elif start:
        report["effectiveDateTime"] = start
    if obr.get(22):
        report["issued"] = fhir_instant(obr.get(22, 1, 1), profile, group.at("OBR", 22))
    performers = _performers(context, group)
    if performers:
        report["performer"] = performers
    interpreters = _people(context, group, 32) or _people(context, group, 33)
    if interpreters:
        report["resultsInterpreter"] = interpreters
    if results:
        report["result"] = results
    conclusion = "\n\n".join(rendered or texts)
    if conclusion:
        report["conclusion"] = conclusion
    if forms:
        report["presentedForm"] = forms
    annotations = notes(context, group.notes)
    if annotations:
        report["extension"] = [{"url": _REPORT_NOTE, "valueAnnotation": a} for a in annotations]
    context.bundle.add(report, key=group.key, mode="upsert", source=group.where)


def base64_text(text: str) -> str:
    """UTF-8 text as base64 (an Attachment's data)."""
    return base64.b64encode(text.encode("utf-8")).decode("ascii")
