"""FHIR R4 -> HL7 v2: one builder per message type, chosen by ``TYPE^TRIGGER``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ...errors import MappingError
from ...v2 import Message
from .._profile import MappingProfile

__all__ = ["from_fhir", "register_builder", "supported_messages"]

Json = dict[str, Any]
Builder = Callable[[list[Json], str, MappingProfile, dict[str, Any]], Message]
_BUILDERS: dict[str, Builder] = {}


def register_builder(*message_types: str) -> Callable[[Builder], Builder]:
    """Decorator: ``@register_builder("ADT^A08", "ADT^A04")``."""

    def decorate(function: Builder) -> Builder:
        for message_type in message_types:
            _BUILDERS[message_type.upper()] = function
        return function

    return decorate


def supported_messages() -> list[str]:
    """Every message type :func:`from_fhir` can build, sorted."""
    return sorted(_BUILDERS)


def _resources(data: Json | Sequence[Json]) -> list[Json]:
    if isinstance(data, dict) and data.get("resourceType") == "Bundle":
        return [e["resource"] for e in data.get("entry", []) if isinstance(e.get("resource"), dict)]
    if isinstance(data, dict):
        return [data]
    return list(data)


def from_fhir(
    data: Json | Sequence[Json],
    message_type: str,
    profile: MappingProfile | None = None,
    **options: Any,
) -> Message:
    """Build an HL7 v2 message of ``message_type`` (``ADT^A08``, ``ORU^R01``...) from FHIR.

    ``data`` is a resource, a list of resources or a Bundle; the builder picks what it
    needs (e.g. a DiagnosticReport and the Observations it references). ``options``
    go to the builder (``version``, ``sending_application``, ...).

    Raises:
        MappingError: the message type is not supported or a required resource is missing.
    """
    builder = _BUILDERS.get(message_type.upper())
    if builder is None:
        raise MappingError(
            f"cannot build {message_type}; supported: {', '.join(supported_messages())}"
        )
    return builder(_resources(data), message_type.upper(), profile or MappingProfile(), options)
