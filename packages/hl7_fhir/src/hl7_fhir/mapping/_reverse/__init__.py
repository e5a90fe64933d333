"""FHIR R4 -> HL7 v2: one builder per message type, chosen by ``TYPE^TRIGGER``.

Importing the builder modules registers them; see docs/mapping.md (FHIR R4 -> HL7 v2) for the
FHIR path -> v2 field tables and what each message cannot carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import MappingError
from ...v2 import Message
from .._profile import MappingProfile
from . import adt, orders, results, schedule  # noqa: F401  (register the builders)
from ._common import ResourceList
from ._registry import find_builder, register_builder, supported_messages

__all__ = ["from_fhir", "register_builder", "supported_messages"]

Json = dict[str, Any]


def _resources(data: Json | Sequence[Json]) -> ResourceList:
    """The resources of a Bundle (remembering their fullUrls), a list, or one resource."""
    if isinstance(data, dict) and data.get("resourceType") == "Bundle":
        found = ResourceList()
        for entry in data.get("entry", []):
            resource = entry.get("resource")
            if isinstance(resource, dict):
                found.append(resource)
                if entry.get("fullUrl"):
                    found.full_urls[str(entry["fullUrl"])] = resource
        return found
    if isinstance(data, dict):
        return ResourceList([data])
    return ResourceList(r for r in data if isinstance(r, dict))


def from_fhir(
    data: Json | Sequence[Json],
    message_type: str,
    profile: MappingProfile | None = None,
    **options: Any,
) -> Message:
    """Build an HL7 v2 message of ``message_type`` (``ADT^A08``, ``ORU^R01``...) from FHIR.

    ``data`` is a resource, a list of resources or a Bundle; the builder picks what it
    needs (e.g. a DiagnosticReport and the Observations it references, found by
    ``fullUrl`` or ``Type/id``). ``options`` go to the builder: ``version`` (``"2.5.1"``
    by default; 2.3 to 2.6), ``sending_application``, ``sending_facility``,
    ``receiving_application``, ``receiving_facility``, ``control_id``, ``timestamp``
    (a datetime, for reproducible output), ``processing_id``, and per message type
    ``order_control``/``update`` (ORM^O01).

    >>> patient = {"resourceType": "Patient", "identifier": [
    ...     {"system": "urn:hl7v2:authority:AXIS", "value": "P001"}], "gender": "male"}
    >>> msg = from_fhir(patient, "ADT^A08", control_id="1")
    >>> msg["PID-3"], msg["PID-8"], msg["PV1-2"]
    ('P001^^^AXIS', 'M', 'N')

    Raises:
        MappingError: the message type is not supported, an option is unknown or bad,
            a required resource is missing, or a value cannot be expressed in v2;
            ``location`` names the FHIR element (``Observation[2].valueQuantity``).
    """
    builder = find_builder(message_type)
    if builder is None:
        raise MappingError(
            f"cannot build {message_type}; supported: {', '.join(supported_messages())}"
        )
    return builder(_resources(data), message_type.upper(), profile or MappingProfile(), options)
