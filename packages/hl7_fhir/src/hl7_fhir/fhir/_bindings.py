"""Required value-set bindings of FHIR R4 that fhir.resources does not enforce.

fhir.resources checks structure and primitive types, but accepts ``gender: "mal"``;
the specification *requires* codes from fixed value sets for these elements. One
table, element path -> allowed codes, so adding a binding is one line.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["REQUIRED_BINDINGS", "binding_violations"]

_NAME_USE = frozenset({"usual", "official", "temp", "nickname", "anonymous", "old", "maiden"})
_IDENTIFIER_USE = frozenset({"usual", "official", "temp", "secondary", "old"})
_CONTACT_SYSTEM = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})
_CONTACT_USE = frozenset({"home", "work", "temp", "old", "mobile"})
_ADDRESS_USE = frozenset({"home", "work", "temp", "old", "billing"})
_ADDRESS_TYPE = frozenset({"postal", "physical", "both"})
_REQUEST_PRIORITY = frozenset({"routine", "urgent", "asap", "stat"})
_REQUEST_INTENT = frozenset(
    {
        "proposal",
        "plan",
        "directive",
        "order",
        "original-order",
        "reflex-order",
        "filler-order",
        "instance-order",
        "option",
    }
)
_REQUEST_STATUS = frozenset(
    {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
)
_OBSERVATION_STATUS = frozenset(
    {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    }
)

# Data types that appear inside many resources: checked wherever they occur.
_DATATYPE_BINDINGS: dict[str, dict[str, frozenset[str]]] = {
    "name": {"use": _NAME_USE},
    "identifier": {"use": _IDENTIFIER_USE},
    "telecom": {"system": _CONTACT_SYSTEM, "use": _CONTACT_USE},
    "address": {"use": _ADDRESS_USE, "type": _ADDRESS_TYPE},
}

REQUIRED_BINDINGS: dict[str, dict[str, frozenset[str]]] = {
    "Patient": {
        "gender": frozenset({"male", "female", "other", "unknown"}),
        "link.type": frozenset({"replaced-by", "replaces", "refer", "seealso"}),
        "contact.gender": frozenset({"male", "female", "other", "unknown"}),
    },
    "Practitioner": {"gender": frozenset({"male", "female", "other", "unknown"})},
    "RelatedPerson": {"gender": frozenset({"male", "female", "other", "unknown"})},
    "Encounter": {
        "status": frozenset(
            {
                "planned",
                "arrived",
                "triaged",
                "in-progress",
                "onleave",
                "finished",
                "cancelled",
                "entered-in-error",
                "unknown",
            }
        ),
    },
    "ServiceRequest": {
        "status": _REQUEST_STATUS,
        "intent": _REQUEST_INTENT,
        "priority": _REQUEST_PRIORITY,
    },
    "DiagnosticReport": {
        "status": frozenset(
            {
                "registered",
                "partial",
                "preliminary",
                "final",
                "amended",
                "corrected",
                "appended",
                "cancelled",
                "entered-in-error",
                "unknown",
            }
        ),
    },
    "Observation": {"status": _OBSERVATION_STATUS},
    "ImagingStudy": {
        "status": frozenset({"registered", "available", "cancelled", "entered-in-error", "unknown"})
    },
    "Appointment": {
        "status": frozenset(
            {
                "proposed",
                "pending",
                "booked",
                "arrived",
                "fulfilled",
                "cancelled",
                "noshow",
                "entered-in-error",
                "checked-in",
                "waitlist",
            }
        ),
        "participant.required": frozenset({"required", "optional", "information-only"}),
        "participant.status": frozenset({"accepted", "declined", "tentative", "needs-action"}),
    },
    "DocumentReference": {
        "status": frozenset({"current", "superseded", "entered-in-error"}),
    },
    "MessageHeader": {},
    "Provenance": {},
    "Bundle": {
        "type": frozenset(
            {
                "document",
                "message",
                "transaction",
                "transaction-response",
                "batch",
                "batch-response",
                "history",
                "searchset",
                "collection",
            }
        ),
        "entry.request.method": frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"}),
    },
}


def _walk(value: Any, parts: list[str], path: str) -> Iterator[tuple[str, Any]]:
    """Yield (FHIRPath-ish location, value) for every value at ``parts`` below ``value``."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, parts, f"{path}[{index}]")
        return
    if not parts:
        yield path, value
        return
    if isinstance(value, dict) and parts[0] in value:
        yield from _walk(value[parts[0]], parts[1:], f"{path}.{parts[0]}")


def binding_violations(resource: dict[str, Any]) -> Iterator[tuple[str, str, frozenset[str]]]:
    """Yield ``(expression, bad_code, allowed)`` for each required-binding violation.

    Contained resources and Bundle entries are checked too.
    """
    kind = resource.get("resourceType", "")
    rules = dict(REQUIRED_BINDINGS.get(kind, {}))
    for element, bindings in _DATATYPE_BINDINGS.items():
        for attribute, allowed in bindings.items():
            rules.setdefault(f"{element}.{attribute}", allowed)
            rules.setdefault(f"contact.{element}.{attribute}", allowed)
    for element_path, allowed in rules.items():
        for location, code in _walk(resource, element_path.split("."), kind):
            if isinstance(code, str) and code not in allowed:
                yield location, code, allowed
    for index, contained in enumerate(resource.get("contained", ()) or ()):
        if isinstance(contained, dict):
            for location, code, allowed in binding_violations(contained):
                yield f"{kind}.contained[{index}].{location.split('.', 1)[-1]}", code, allowed
    if kind == "Bundle":
        for index, entry in enumerate(resource.get("entry", ()) or ()):
            inner = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(inner, dict):
                for location, code, allowed in binding_violations(inner):
                    tail = location.split(".", 1)[1] if "." in location else ""
                    yield (
                        f"Bundle.entry[{index}].resource" + (f".{tail}" if tail else ""),
                        code,
                        allowed,
                    )
