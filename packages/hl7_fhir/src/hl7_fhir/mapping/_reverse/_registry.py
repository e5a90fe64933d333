"""Which builder makes which v2 message: a registry keyed by ``TYPE^TRIGGER``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...v2 import Message
from .._profile import MappingProfile

__all__ = ["Builder", "find_builder", "register_builder", "supported_messages"]

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


def find_builder(message_type: str) -> Builder | None:
    """The builder for ``TYPE^TRIGGER`` (or a bare ``TYPE`` where one is registered)."""
    return _BUILDERS.get(message_type.upper())


def supported_messages() -> list[str]:
    """Every message type :func:`from_fhir` can build, sorted."""
    return sorted(_BUILDERS)
