"""Facts (not ids) of a FHIR Bundle, to compare our mapping with Microsoft's converter.

Their bundles use their own ids, PUT-by-id batches and placeholder identifier systems,
so only what a clinician would check is compared: who the patient is, what was
measured, which order, which appointment, when.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

Json = dict[str, Any]
CATEGORIES = ("patient", "observation", "report", "order", "appointment")


def _resources(bundle: Json, kind: str) -> Iterable[Json]:
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        if resource.get("resourceType") == kind:
            yield resource


def _moment(text: str) -> str:
    """Instants compare in UTC; dates and partial dates compare as written."""
    if "T" not in text:
        return text
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if value.tzinfo is None:
        return value.isoformat()
    return value.astimezone(UTC).isoformat()


def _number(value: Any) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return str(value).strip()


def _codes(concept: Json | None) -> set[str]:
    return {str(c["code"]) for c in (concept or {}).get("coding", []) if c.get("code")}


def facts(bundle: Json) -> dict[str, set[tuple[str, str]]]:
    """Category -> set of (fact, value) pairs."""
    out: dict[str, set[tuple[str, str]]] = {c: set() for c in CATEGORIES}
    for patient in _resources(bundle, "Patient"):
        if patient.get("active") is False:
            continue
        got = out["patient"]
        got.update(
            ("identifier", i["value"]) for i in patient.get("identifier", []) if "value" in i
        )
        for name in patient.get("name", []):
            if name.get("family"):
                got.add(("family", name["family"]))
            got.update(("given", g) for g in name.get("given", []))
        if patient.get("birthDate"):
            got.add(("birthDate", patient["birthDate"]))
        if patient.get("gender"):
            got.add(("gender", patient["gender"]))
    for observation in _resources(bundle, "Observation"):
        got = out["observation"]
        got.update(("code", c) for c in _codes(observation.get("code")))
        if "valueQuantity" in observation:
            quantity = observation["valueQuantity"]
            if "value" in quantity:
                got.add(("value", _number(quantity["value"])))
            unit = quantity.get("unit") or quantity.get("code")
            if unit:
                got.add(("unit", str(unit)))
        elif "valueString" in observation:
            got.add(("value", observation["valueString"].strip()))
        elif "valueCodeableConcept" in observation:
            got.update(("value", c) for c in _codes(observation["valueCodeableConcept"]))
    for report in _resources(bundle, "DiagnosticReport"):
        got = out["report"]
        if report.get("status"):
            got.add(("status", report["status"]))
        got.update(("code", c) for c in _codes(report.get("code")))
    for order in _resources(bundle, "ServiceRequest"):
        got = out["order"]
        got.update(("identifier", i["value"]) for i in order.get("identifier", []) if "value" in i)
    for appointment in _resources(bundle, "Appointment"):
        got = out["appointment"]
        if appointment.get("status"):
            got.add(("status", appointment["status"]))
        for moment in ("start", "end"):
            if appointment.get(moment):
                got.add((moment, _moment(appointment[moment])))
    return out
