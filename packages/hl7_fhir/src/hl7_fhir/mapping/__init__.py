"""HL7 v2 <-> FHIR R4 mapping, after the HL7 V2-to-FHIR implementation guide.

>>> from hl7_fhir import mapping, v2
>>> bundle = mapping.to_fhir(v2.generate("adt_a08", seed=1))
>>> bundle["type"], bundle["entry"][0]["resource"]["resourceType"]
('transaction', 'Patient')

``to_fhir`` returns a transaction Bundle (JSON) whose entries are conditional on
business identifiers, so replaying a message converges on the same resources;
``from_fhir`` builds an ER7 message from FHIR resources. A :class:`MappingProfile`
carries what differs between senders.
"""

from __future__ import annotations

from typing import Any

from ..errors import HL7FhirError, MappingError
from ..v2 import Message, parse
from . import _families  # noqa: F401  (registers the message-family mappers)
from ._bundle import BundleBuilder, BundleType, conditional_url
from ._context import MappingContext
from ._header import add_message_header, add_provenance
from ._profile import ACCESSION_LOCATIONS, CodeMapping, MappingProfile, ZSegmentRule
from ._registry import find_mapper, supported_events
from ._reverse import from_fhir, supported_messages

__all__ = [
    "ACCESSION_LOCATIONS",
    "BundleBuilder",
    "CodeMapping",
    "MappingContext",
    "MappingProfile",
    "ZSegmentRule",
    "conditional_url",
    "from_fhir",
    "supported_events",
    "supported_messages",
    "to_fhir",
]

_DEFAULT_PROFILE = MappingProfile()


def to_fhir(
    message: Message | bytes | str,
    profile: MappingProfile | None = None,
    *,
    bundle_type: BundleType = "transaction",
    validate: bool = True,
) -> dict[str, Any]:
    """Map one HL7 v2 message to a FHIR R4 Bundle (JSON).

    ``bundle_type``: ``transaction`` (conditional create/update on business
    identifiers), ``batch`` (deterministic ids, ``PUT Type/id``), ``message``
    (MessageHeader first) or ``collection``. With ``validate`` (the default) every
    resource is checked with fhir.resources and the required bindings first.

    Raises:
        MappingError: the event is not supported, or a value cannot be mapped or does
            not validate; ``location`` names the segment/field. Nothing is returned
            then: never half a bundle.
        ParseError: ``message`` is bytes/text that does not parse.
    """
    if not isinstance(message, Message):
        message = parse(message)
    profile = profile or _DEFAULT_PROFILE
    mapper = find_mapper(message.message_type, message.trigger_event)
    if mapper is None:
        event = f"{message.message_type}^{message.trigger_event}"
        raise MappingError(f"no mapping for {event}", location="MSH-9")
    bundle = BundleBuilder(
        bundle_type=bundle_type,
        organization=profile.organization,
        deterministic_ids=profile.deterministic_ids,
    )
    context = MappingContext(message, profile, bundle)
    try:
        mapper(context)
        if profile.include_provenance:
            add_provenance(context)
        if bundle_type == "message" or profile.include_message_header:
            add_message_header(context)
    except HL7FhirError:
        raise
    except Exception as exc:  # a mapper bug must still surface as a mapping failure
        raise MappingError(f"internal mapping error: {exc!r}") from exc
    return bundle.build(validate=validate)
