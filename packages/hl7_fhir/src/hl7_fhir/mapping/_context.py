"""What every message-family mapper works with: the message, the profile, the bundle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..v2 import Message, Segment
from ._bundle import BundleBuilder
from ._datatypes import fhir_date, fhir_datetime, fhir_instant, system_for_hd
from ._profile import MappingProfile

__all__ = ["MappingContext", "location"]

Json = dict[str, Any]


def location(segment: Segment, occurrence: int, field_number: int) -> str:
    """A path for error messages: ``OBX[2]-5`` (``PID-3`` for a first occurrence)."""
    name = segment.name
    return f"{name}-{field_number}" if occurrence == 1 else f"{name}[{occurrence}]-{field_number}"


@dataclass
class MappingContext:
    """State shared by the mappers of one message.

    ``patient`` is the reference of the message's Patient once mapped; ``encounter``
    likewise; mappers of later segments use them for ``subject`` and ``encounter``.
    """

    message: Message
    profile: MappingProfile
    bundle: BundleBuilder
    patient: str | None = None
    encounter: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def default_system(self) -> str:
        """The identifier system for ids sent without an assigning authority.

        Such ids are only unique within the sender, so they are scoped by the sending
        facility (MSH-4), or the sending application (MSH-3) when there is no facility.
        """
        header = self.message.header
        namespace = header.get(4, 1, 1) or header.get(3, 1, 1) or "unknown-sender"
        return system_for_hd(namespace, header.get(4, 1, 2), self.profile) or ""

    def datetime(self, path: str) -> str | None:
        """The FHIR dateTime at a message path (``OBR-7``), or None when empty."""
        return fhir_datetime(self.message[path], self.profile, path)

    def instant(self, path: str) -> str | None:
        """The FHIR instant at a message path."""
        return fhir_instant(self.message[path], self.profile, path)

    def date(self, path: str) -> str | None:
        """The FHIR date at a message path."""
        return fhir_date(self.message[path], path)

    def segment_datetime(self, segment: Segment, occurrence: int, field_number: int) -> str | None:
        """The FHIR dateTime in one segment's field (first component)."""
        where = location(segment, occurrence, field_number)
        return fhir_datetime(segment.get(field_number, 1, 1), self.profile, where)
