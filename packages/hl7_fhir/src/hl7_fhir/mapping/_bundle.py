"""Assembling the output Bundle: conditional operations on business identifiers.

Replaying a message must converge on the same resources, so every resource that has a
business identifier is written conditionally on it:

- ``upsert``: ``PUT Type?identifier=system|value`` (conditional update) — for the
  message that is the source of truth for that resource (Patient in ADT, ServiceRequest
  in ORM, DiagnosticReport in ORU, Appointment in SIU);
- ``ensure``: ``POST`` with ``ifNoneExist`` (conditional create) — for resources a
  message only refers to (the Patient of an ORU must not overwrite ADT demographics);
- ``create``: plain ``POST`` for resources without any identifier.

References between entries use ``urn:uuid:`` fullUrls derived (uuid5) from organisation,
type and identifier, so the same resource gets the same fullUrl in every message. With
``deterministic_ids`` (for stores without conditional operations) resources get that
uuid as their id and are written with ``PUT Type/id``; batch bundles always do that.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from ..errors import MappingError
from ..fhir import validate_resource

__all__ = ["BundleBuilder", "BundleType", "Mode", "conditional_url"]

Json = dict[str, Any]
Mode = Literal["upsert", "ensure", "create"]
BundleType = Literal["transaction", "batch", "message", "collection"]
_NAMESPACE = uuid.UUID("6f0b7a57-3c55-4c6e-9b1c-5d7f0f7b2a11")


def conditional_url(resource_type: str, system: str | None, value: str) -> str:
    """``Patient?identifier=system|value`` with both parts URL-encoded."""
    token = (
        f"{quote(system, safe=':/')}|{quote(value, safe='')}" if system else quote(value, safe="")
    )
    return f"{resource_type}?identifier={token}"


@dataclass
class _Entry:
    resource: Json
    full_url: str
    request: Json | None
    source: str


@dataclass
class BundleBuilder:
    """Collects entries in order, de-duplicates by identity, validates on :meth:`build`."""

    bundle_type: BundleType = "transaction"
    organization: str = ""
    deterministic_ids: bool = False
    entries: list[_Entry] = field(default_factory=list)
    _by_key: dict[str, _Entry] = field(default_factory=dict)

    def _uuid(self, resource_type: str, key: str) -> str:
        return str(uuid.uuid5(_NAMESPACE, f"{self.organization}|{resource_type}|{key}"))

    def add(
        self,
        resource: Json,
        *,
        key: Json | None = None,
        mode: Mode = "upsert",
        source: str = "",
    ) -> str:
        """Add ``resource`` and return the reference other entries should use.

        ``key`` is the business Identifier (system + value) the resource is matched on.
        Adding the same type and key twice keeps the first entry (and returns its
        reference). ``source`` names the v2 segment it came from, for error messages.
        """
        resource_type = resource["resourceType"]
        if key is not None and key.get("value"):
            identity = f"{key.get('system', '')}|{key['value']}"
        else:
            identity = f"anonymous:{len(self.entries)}:{source}"
            mode = "create"
        dedupe = f"{resource_type}|{identity}"
        existing = self._by_key.get(dedupe)
        if existing is not None:
            return self._reference(existing)
        uid = self._uuid(resource_type, identity)
        request: Json | None = None
        if self.deterministic_ids or self.bundle_type == "batch":
            resource["id"] = uid
            request = {"method": "PUT", "url": f"{resource_type}/{uid}"}
        elif mode == "upsert" and key is not None:
            request = {
                "method": "PUT",
                "url": conditional_url(resource_type, key.get("system"), key["value"]),
            }
        elif mode == "ensure" and key is not None:
            request = {
                "method": "POST",
                "url": resource_type,
                "ifNoneExist": conditional_url(
                    resource_type, key.get("system"), key["value"]
                ).split("?", 1)[1],
            }
        else:
            request = {"method": "POST", "url": resource_type}
        if self.bundle_type in ("message", "collection"):
            request = None
        entry = _Entry(resource, f"urn:uuid:{uid}", request, source)
        self.entries.append(entry)
        self._by_key[dedupe] = entry
        return self._reference(entry)

    def _reference(self, entry: _Entry) -> str:
        if self.deterministic_ids or self.bundle_type == "batch":
            return f"{entry.resource['resourceType']}/{entry.resource['id']}"
        return entry.full_url

    def resources(self, resource_type: str | None = None) -> list[Json]:
        """The resources added so far (of one type, when given)."""
        return [
            e.resource
            for e in self.entries
            if resource_type is None or e.resource["resourceType"] == resource_type
        ]

    def build(self, *, validate: bool = True) -> Json:
        """The Bundle as JSON; with ``validate`` every resource is checked first.

        Raises:
            MappingError: a resource fails validation; ``location`` names the source
                segment and the FHIR element, and nothing is returned (never half a bundle).
        """
        if validate:
            for entry in self.entries:
                issues = validate_resource(entry.resource)
                if issues:
                    first = issues[0]
                    where = (
                        f"{entry.source} -> {first.expression}"
                        if entry.source
                        else first.expression
                    )
                    more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
                    raise MappingError(f"{first.diagnostics}{more}", location=where)
        entries = []
        for entry in self.entries:
            item: Json = {"fullUrl": entry.full_url, "resource": entry.resource}
            if entry.request is not None:
                item["request"] = entry.request
            entries.append(item)
        return {"resourceType": "Bundle", "type": self.bundle_type, "entry": entries}
