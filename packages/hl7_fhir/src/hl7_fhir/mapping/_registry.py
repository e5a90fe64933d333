"""Which mapper handles which message: a registry keyed by ``TYPE^TRIGGER``."""

from __future__ import annotations

from collections.abc import Callable

from ._context import MappingContext

__all__ = ["Mapper", "find_mapper", "register", "supported_events"]

Mapper = Callable[[MappingContext], None]
_MAPPERS: dict[str, Mapper] = {}


def register(*events: str) -> Callable[[Mapper], Mapper]:
    """Decorator: ``@register("ADT^A01", "ADT^A04")`` makes the function their mapper."""

    def decorate(function: Mapper) -> Mapper:
        for event in events:
            _MAPPERS[event.upper()] = function
        return function

    return decorate


def find_mapper(message_type: str, trigger_event: str) -> Mapper | None:
    """The mapper for an event, or ``None`` when the event is not supported."""
    return _MAPPERS.get(f"{message_type}^{trigger_event}".upper())


def supported_events() -> list[str]:
    """Every ``TYPE^TRIGGER`` with a mapper, sorted."""
    return sorted(_MAPPERS)
