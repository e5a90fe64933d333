"""The CapabilityStatement, generated from what the service actually supports.

Generated rather than hand-written so that it cannot claim an interaction or a search
parameter the store does not implement: `searchParam` is the search parameter table.
"""

from __future__ import annotations

from typing import Any

from ehr_api.fhir_store.search_params import definition_url, params_for
from ehr_api.fhir_store.service import supported_types

__all__ = ["INTERACTIONS", "OPERATIONS", "capability_statement", "search_params"]

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


def capability_statement(base_url: str) -> dict[str, Any]:
    """What this server does, at `base_url` (JSON only, every supported R4 type)."""
    resources = [
        {
            "type": name,
            "interaction": [{"code": code} for code in INTERACTIONS],
            "versioning": "versioned",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalUpdate": True,
            "conditionalDelete": "not-supported",
            "searchParam": search_params(name),
            "operation": [{"name": op, "definition": url} for op, url in OPERATIONS],
        }
        for name in sorted(supported_types())
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "kind": "instance",
        "software": {"name": "ehr_api", "version": "0.1.0"},
        "implementation": {"description": "EHR integration platform FHIR store", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [{"mode": "server", "resource": resources}],
    }
