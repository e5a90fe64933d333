"""The CapabilityStatement, generated from what the service actually supports.

Generated rather than hand-written so that it cannot claim an interaction or a search
parameter the store does not implement: `searchParam` is the search parameter table.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ehr_api.fhir_store.search_params import definition_url, params_for
from ehr_api.fhir_store.service import supported_types

__all__ = [
    "AUDIT_EVENT",
    "INTERACTIONS",
    "OPERATIONS",
    "TYPE_OPERATIONS",
    "capability_statement",
    "search_params",
]

INTERACTIONS: tuple[str, ...] = (
    "read",
    "vread",
    "create",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "search-type",
)
#: Operations on every type (type and instance level).
OPERATIONS: tuple[tuple[str, str], ...] = (
    ("validate", "http://hl7.org/fhir/OperationDefinition/Resource-validate"),
)
#: Operations of one type only.
TYPE_OPERATIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "Patient": (("everything", "http://hl7.org/fhir/OperationDefinition/Patient-everything"),),
}
#: The read-only AuditEvent view of the audit log (`audit_events`): its own short list.
AUDIT_EVENT: dict[str, Any] = {
    "type": "AuditEvent",
    "interaction": [{"code": "read"}, {"code": "vread"}, {"code": "search-type"}],
    "versioning": "versioned",
    "readHistory": False,
    "updateCreate": False,
    "conditionalCreate": False,
    "conditionalUpdate": False,
    "conditionalDelete": "not-supported",
    "searchParam": [
        {"name": "_id", "type": "token"},
        {"name": "date", "type": "date"},
        {"name": "agent", "type": "reference", "documentation": "subject or apikey:<prefix>"},
        {"name": "entity", "type": "reference"},
        {"name": "action", "type": "token"},
        {"name": "outcome", "type": "token"},
    ],
}


def search_params(resource_type: str) -> list[dict[str, str]]:
    """The `searchParam` entries of one type: exactly the parameter table's rows."""
    return [
        {
            "name": param.name,
            "definition": definition_url(resource_type, param.name),
            "type": param.type,
        }
        for param in sorted(params_for(resource_type).values(), key=lambda param: param.name)
    ]


@cache
def _includes() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(`_include` values per type, `_revinclude` values per target type), from the table."""
    types = sorted(supported_types())
    include: dict[str, list[str]] = {name: [] for name in types}
    revinclude: dict[str, list[str]] = {name: [] for name in types}
    for source in types:
        for param in params_for(source).values():
            if param.type != "reference":
                continue
            include[source].append(f"{source}:{param.name}")
            for target in param.targets or types:
                if target in revinclude:
                    revinclude[target].append(f"{source}:{param.name}")
    return include, revinclude


def _resource(name: str, *, update_create: bool) -> dict[str, Any]:
    include, revinclude = _includes()
    operations = OPERATIONS + TYPE_OPERATIONS.get(name, ())
    return {
        "type": name,
        "interaction": [{"code": code} for code in INTERACTIONS],
        "versioning": "versioned",
        "readHistory": True,
        "updateCreate": update_create,
        "conditionalCreate": True,
        "conditionalRead": "full-support",
        "conditionalUpdate": True,
        "conditionalDelete": "single",
        "searchInclude": ["*", *include[name]],
        "searchRevInclude": revinclude[name],
        "searchParam": search_params(name),
        "operation": [{"name": op, "definition": url} for op, url in operations],
    }


def capability_statement(base_url: str, *, update_create: bool = True) -> dict[str, Any]:
    """What this server does, at `base_url` (JSON only, every supported R4 type)."""
    resources = [_resource(name, update_create=update_create) for name in supported_types()]
    resources.append(AUDIT_EVENT)
    resources.sort(key=lambda resource: str(resource["type"]))
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "kind": "instance",
        "software": {"name": "ehr_api", "version": "0.1.0"},
        "implementation": {"description": "EHR integration platform FHIR store", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "resource": resources,
                "interaction": [
                    {"code": "transaction"},
                    {"code": "batch"},
                    {"code": "history-system"},
                    {"code": "search-system"},
                ],
            }
        ],
    }
