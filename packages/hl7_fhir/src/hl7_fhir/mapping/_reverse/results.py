"""DiagnosticReport + Observations + presentedForm -> ORU^R01.

Per patient: PID [PV1]; per report: ORC (RE), OBR, NTE (conclusion), then one OBX (+ NTE
for its notes) per result Observation, then one OBX of type ED (or RP) per presentedForm
attachment. The reverse of the IG's OBR[DiagnosticReport] and OBX[Observation] maps.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ...errors import MappingError
from ...v2 import Message
from .._profile import MappingProfile
from .._report_text import is_rtf, normalise_text, rtf_to_text
from ._common import (
    BuildOptions,
    Writer,
    dtm,
    ei,
    identifiers_typed,
    put,
    section_code,
    start_message,
)
from ._observation import attachment_value, write_obx
from ._people import cnn, xcn
from ._registry import register_builder
from .adt import write_pv1
from .orders import (
    OrderNumbers,
    accession_field,
    order_numbers,
    timing_quantity,
    write_notes,
    write_z_segments,
)
from .patient import find_patient, write_pid

__all__ = ["REPORT_STATUS", "build_oru"]

Json = dict[str, Any]
# DiagnosticReport.status -> OBR-25 (table 0123; reverse of the IG ResultStatus map).
REPORT_STATUS = {
    "registered": "I",
    "partial": "A",
    "preliminary": "P",
    "final": "F",
    "amended": "C",
    "corrected": "C",
    "appended": "C",
    "cancelled": "X",
    "entered-in-error": "X",
}
# DiagnosticReport.status -> OBX-11 of the presentedForm OBX and ORC-5 (order status).
_FORM_STATUS = {"registered": "I", "partial": "P", "preliminary": "P", "final": "F"}
_FORM_STATUS |= {"amended": "C", "corrected": "C", "appended": "C"}
_FORM_STATUS |= {"cancelled": "X", "entered-in-error": "W"}
# Notes on the report itself (NTE after OBR): the R5 DiagnosticReport.note, as an extension.
_NOTE = "http://hl7.org/fhir/5.0/StructureDefinition/extension-DiagnosticReport.note"
_ORDER_STATUS = {"final": "CM", "amended": "CM", "corrected": "CM", "appended": "CM"}
_ORDER_STATUS |= {"cancelled": "CA", "entered-in-error": "CA"}


def _numbers(writer: Writer, report: Json, request: Json | None) -> OrderNumbers:
    """Order numbers from the ServiceRequest the report is based on, completed by the
    report's own identifiers (typed PLAC/FILL/ACSN; an untyped one is the filler's)."""
    base = order_numbers(writer, request) if request else OrderNumbers("", "", "", "")
    identifiers = [i for i in report.get("identifier", []) if i.get("value")]
    for reference in report.get("basedOn", []):
        if reference.get("identifier") and writer.resources.resolve(reference) is None:
            identifiers.append(reference["identifier"])
    placer = identifiers_typed(identifiers, "PLAC")
    filler = identifiers_typed(identifiers, "FILL") or [
        i for i in identifiers if not (i.get("type") or {}).get("coding")
    ]
    accession = identifiers_typed(identifiers, "ACSN")
    return OrderNumbers(
        placer=base.placer or (ei(placer[0], writer.profile) if placer else ""),
        filler=base.filler or (ei(filler[0], writer.profile) if filler else ""),
        accession=base.accession or (str(accession[0]["value"]) if accession else ""),
        requisition=base.requisition,
    )


def _results(writer: Writer, report: Json, where: str) -> list[tuple[Json, str]]:
    """The report's Observations in order, panels (hasMember) expanded after the panel.

    Raises:
        MappingError: a result reference that is not among the resources.
    """
    found: list[tuple[Json, str]] = []
    seen: set[int] = set()

    def visit(reference: Json, location: str, container: Json) -> None:
        target = writer.resources.resolve(reference, container)
        if target is None or target.get("resourceType") != "Observation":
            raise MappingError(
                f"{reference.get('reference', 'a result')} is not an Observation among the "
                "resources",
                location=location,
            )
        if id(target) in seen:
            return
        seen.add(id(target))
        found.append((target, location))
        for index, member in enumerate(target.get("hasMember", [])):
            visit(member, f"{location}.hasMember[{index}]", target)

    for index, reference in enumerate(report.get("result", [])):
        visit(reference, f"{where}.result[{index}]", report)
    return found


def _write_observations(writer: Writer, report: Json, where: str) -> int:
    """One OBX per result (and per component, sharing an OBX-4 sub-id with its parent)."""
    set_id = group = 0
    for observation, location in _results(writer, report, where):
        has_value = any(k.startswith("value") for k in observation)
        components = observation.get("component", [])
        sub_id = ""
        if components:
            group += 1
            sub_id = str(group)
        if has_value or not (components or observation.get("hasMember")):
            set_id += 1
            write_obx(writer, observation, set_id, location=location, sub_id=sub_id)
        for index, component in enumerate(components):
            set_id += 1
            where_component = f"{location}.component[{index}]"
            write_obx(
                writer,
                observation,
                set_id,
                location=where_component,
                source=component,
                sub_id=sub_id,
            )
        write_notes(writer, observation.get("note", []))
    return set_id


def _rendering(attachment: Json) -> str:
    """The readable text of an RTF or plain-text attachment, ``""`` for anything else."""
    try:
        data = base64.b64decode(str(attachment.get("data") or ""))
    except (binascii.Error, ValueError):
        return ""
    if is_rtf(data):
        return rtf_to_text(data)
    content_type, _, parameters = str(attachment.get("contentType") or "").partition(";")
    if content_type.strip().lower() != "text/plain":
        return ""
    charset = parameters.partition("charset=")[2].strip() or "utf-8"
    try:
        return normalise_text(data.decode(charset, errors="replace"))
    except LookupError:
        return normalise_text(data.decode("utf-8", errors="replace"))


def own_forms(report: Json) -> list[tuple[int, Json]]:
    """presentedForm without the plain-text renderings of its RTF documents: a
    ``text/plain`` attachment that only repeats an RTF one's text (as v2 -> FHIR adds for
    readability) is not sent again. Each with its index in presentedForm."""
    forms = list(enumerate(report.get("presentedForm", [])))
    rtf_texts = set()
    for _, form in forms:
        try:
            if is_rtf(base64.b64decode(str(form.get("data") or ""))):
                rtf_texts.add(_rendering(form))
        except (binascii.Error, ValueError):
            continue
    return [
        (index, form)
        for index, form in forms
        if not (
            str(form.get("contentType", "")).lower().startswith("text/plain")
            and _rendering(form) in rtf_texts
        )
    ]


def conclusion_is_derived(report: Json, forms: list[Json], observations: list[Json]) -> bool:
    """True when the conclusion only repeats the report's documents or narrative results
    (the readable text v2 -> FHIR writes for RTF/TX reports): it is not sent twice."""
    conclusion = normalise_text(str(report.get("conclusion") or ""))
    renderings = [text for form in forms if (text := _rendering(form))]
    texts = [str(o["valueString"]) for o in observations if "valueString" in o]
    candidates = ("\n\n".join(renderings), "\n\n".join(texts))
    return any(conclusion == normalise_text(c) for c in candidates if c)


def _write_forms(writer: Writer, report: Json, where: str, set_id: int) -> None:
    status = _FORM_STATUS.get(str(report.get("status")), "")
    for index, attachment in own_forms(report):
        location = f"{where}.presentedForm[{index}]"
        value_type, value = attachment_value(attachment, location)
        set_id += 1
        obx = writer.segment("OBX")
        obx.set(1, str(set_id))
        obx.set(2, value_type)
        put(obx, 3, writer.coded(report.get("code")))
        obx.set(5, value)
        put(obx, 11, status)
        put(obx, 14, dtm(attachment.get("creation"), f"{location}.creation"))


def write_report(writer: Writer, report: Json, index: int) -> None:
    """Append ORC, OBR, NTE and the OBX of one DiagnosticReport."""
    where = f"DiagnosticReport[{index}]" if index else "DiagnosticReport"
    status = str(report.get("status", ""))
    if status not in REPORT_STATUS:
        raise MappingError(f"no OBR-25 for status {status!r}", location=f"{where}.status")
    request = None
    for reference in report.get("basedOn", []):
        request = request or writer.resources.resolve(reference, report)
    numbers, obr18 = accession_field(writer, _numbers(writer, report, request))
    requester = xcn(writer, (request or {}).get("requester"), container=request)
    orc = writer.segment("ORC")
    orc.set(1, "RE")
    put(orc, 2, numbers.placer)
    put(orc, 3, numbers.filler)
    put(orc, 4, numbers.requisition)
    put(orc, 5, _ORDER_STATUS.get(status, "IP"))
    put(orc, 12, requester)
    obr = writer.segment("OBR")
    obr.set(1, str(index + 1))
    put(obr, 2, numbers.placer)
    put(obr, 3, numbers.filler)
    put(obr, 4, writer.coded(report.get("code")))
    period = report.get("effectivePeriod") or {}
    effective = report.get("effectiveDateTime") or period.get("start")
    put(obr, 7, dtm(effective, f"{where}.effective"))
    put(obr, 8, dtm(period.get("end"), f"{where}.effectivePeriod.end"))
    put(obr, 16, requester)
    put(obr, 18, obr18)
    put(obr, 22, dtm(report.get("issued"), f"{where}.issued"))
    put(obr, 24, section_code(report.get("category", [])))
    obr.set(25, REPORT_STATUS[status])
    if request is not None:
        try:
            start, end, priority = timing_quantity(request, location="ServiceRequest")
            put(obr, 27, ("", "", "", start, end, priority))
        except MappingError:
            pass  # the order's schedule is context here: a repeating one does not stop a result
    interpreters = report.get("resultsInterpreter", [])
    if interpreters:
        put(obr, 32, cnn(writer, interpreters[0]))
        put(obr, 33, [cnn(writer, i) for i in interpreters[1:]])
    notes = [e["valueAnnotation"] for e in report.get("extension", []) if e.get("url") == _NOTE]
    observations = [o for o, _ in _results(writer, report, where)]
    forms = [form for _, form in own_forms(report)]
    if report.get("conclusion") and not conclusion_is_derived(report, forms, observations):
        notes.append({"text": report["conclusion"]})
    write_notes(writer, notes)
    set_id = _write_observations(writer, report, where)
    _write_forms(writer, report, where, set_id)


@register_builder("ORU", "ORU^R01")
def build_oru(
    resources: list[Json], message_type: str, profile: MappingProfile, options: dict[str, Any]
) -> Message:
    """Every DiagnosticReport among the resources, grouped by patient, as one ORU^R01.

    Raises:
        MappingError: no DiagnosticReport, an unknown patient, a result Observation that
            is not among the resources, a status or value v2 cannot carry.
    """
    opts = BuildOptions.read(options)
    writer = start_message(resources, "ORU", "R01", profile, opts)
    reports = writer.resources.of_type("DiagnosticReport")
    if not reports:
        raise MappingError("no DiagnosticReport among the resources", location="DiagnosticReport")
    groups: list[tuple[Json | None, list[tuple[int, Json]]]] = []
    for index, report in enumerate(reports):
        where = f"DiagnosticReport[{index}]" if index else "DiagnosticReport"
        patient = find_patient(writer, report.get("subject"), location=f"{where}.subject")
        for owner, items in groups:
            if owner is patient or (owner is not None and owner == patient):
                items.append((index, report))
                break
        else:
            groups.append((patient, [(index, report)]))
    for patient, items in groups:
        if patient is not None:
            write_pid(writer, patient)
            encounter = writer.resources.resolve(items[0][1].get("encounter"))
            if encounter is not None:
                write_pv1(writer, encounter)
        for index, report in items:
            write_report(writer, report, index)
    requests = writer.resources.of_type("ServiceRequest")
    if requests:
        write_z_segments(writer, requests[0])
    return writer.finish()
