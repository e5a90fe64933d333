"""The CapabilityStatement, generated from what the service actually supports.

Generated rather than hand-written so that it cannot claim an interaction or a search
parameter the store does not implement (a test pins it to this slice).
"""

from __future__ import annotations

from typing import Any

from ehr_api.fhir_store.service import SEARCH_PARAMETERS, supported_types

__all__ = ["INTERACTIONS", "capability_statement"]

INTERACTIONS: tuple[str, ...] = ("read", "vread", "create", "update", "delete", "search-type")


def capability_statement(base_url: str) -> dict[str, Any]:
    """What this server does, at `base_url` (JSON only, every supported R4 type)."""
    resources = [
        {
            "type": name,
            "interaction": [{"code": code} for code in INTERACTIONS],
            "versioning": "versioned",
            "readHistory": False,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalUpdate": False,
            "conditionalDelete": "not-supported",
            "searchParam": [
                {"name": name, "type": kind} for name, kind in SEARCH_PARAMETERS.items()
            ],
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
        "rest": [{"mode": "server", "resource": resources}],
    }
