"""Per-sender mapping profile: the things that differ from one organisation to the next.

Plain data (JSON in, JSON out) so the platform can store one per organisation and an
admin can edit it; :meth:`MappingProfile.from_dict` validates and names the bad key.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import MappingError

__all__ = ["ACCESSION_LOCATIONS", "CodeMapping", "MappingProfile", "ZSegmentRule"]

# Where senders put the accession number, in the order tried when the profile says "auto".
ACCESSION_LOCATIONS = ("OBR-18", "ORC-4", "OBR-3", "OBR-2", "IPC-1")
_PATH = re.compile(r"^[A-Z][A-Z0-9]{2}-\d+(\.\d+){0,2}$")
_URI = re.compile(r"^(urn:[a-z0-9][a-z0-9-]{0,31}:\S+|https?://\S+)$", re.IGNORECASE)
_Z_TARGETS = frozenset(
    {"ImagingStudy.identifier", "ServiceRequest.identifier", "Patient.identifier"}
)


@dataclass(frozen=True, slots=True)
class CodeMapping:
    """A local code and the standard code it stands for."""

    system: str
    code: str
    display: str = ""


@dataclass(frozen=True, slots=True)
class ZSegmentRule:
    """Take the value at ``path`` (e.g. ``ZDS-1.1``) into ``target`` with ``system``.

    ``target`` is one of ``ImagingStudy.identifier`` (a DICOM study instance UID, which
    also creates an ImagingStudy), ``ServiceRequest.identifier`` or ``Patient.identifier``.
    """

    path: str
    target: str
    system: str = "urn:dicom:uid"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise MappingError(f"unknown time zone {name!r}", location="default_timezone") from exc


@dataclass(frozen=True, slots=True)
class MappingProfile:
    """How one sender's messages are to be read.

    ``accession_number``: a path (``OBR-18``) or ``"auto"`` (first non-empty of
    :data:`ACCESSION_LOCATIONS`). ``identifier_systems``: assigning authority (HD
    namespace or universal id) -> system URI; unknown authorities get
    ``unknown_authority_system`` with ``{authority}`` filled in. ``default_timezone``:
    IANA zone for date-times sent without an offset (FHIR needs one once there is a
    time). ``code_maps``: local coding system -> local code -> standard code.
    """

    accession_number: str = "auto"
    identifier_systems: dict[str, str] = field(default_factory=dict)
    unknown_authority_system: str = "urn:hl7v2:authority:{authority}"
    default_timezone: str = "UTC"
    code_maps: dict[str, dict[str, CodeMapping]] = field(default_factory=dict)
    z_segments: tuple[ZSegmentRule, ...] = ()
    deterministic_ids: bool = False
    organization: str = ""
    include_message_header: bool = False
    include_provenance: bool = False

    def __post_init__(self) -> None:
        if self.accession_number != "auto" and not _PATH.match(self.accession_number):
            raise MappingError(
                f"expected 'auto' or a path like 'OBR-18', got {self.accession_number!r}",
                location="accession_number",
            )
        for authority, system in self.identifier_systems.items():
            if not _URI.match(system):
                raise MappingError(
                    f"not an absolute URI: {system!r}", location=f"identifier_systems.{authority}"
                )
        if "{authority}" not in self.unknown_authority_system:
            raise MappingError("must contain '{authority}'", location="unknown_authority_system")
        _zone(self.default_timezone)
        for index, rule in enumerate(self.z_segments):
            if not rule.path.startswith("Z") or not _PATH.match(rule.path):
                raise MappingError(
                    f"not a Z-segment path: {rule.path!r}", location=f"z_segments[{index}].path"
                )
            if rule.target not in _Z_TARGETS:
                raise MappingError(
                    f"target must be one of {sorted(_Z_TARGETS)}",
                    location=f"z_segments[{index}].target",
                )

    @property
    def timezone(self) -> ZoneInfo:
        """The zone for date-times without an offset."""
        return _zone(self.default_timezone)

    def system_for(self, authority: str) -> str:
        """The identifier system URI for an assigning authority (namespace or OID)."""
        if authority in self.identifier_systems:
            return self.identifier_systems[authority]
        if re.fullmatch(r"\d+(\.\d+)+", authority):
            return f"urn:oid:{authority}"
        if _URI.match(authority):
            return authority
        safe = re.sub(r"[^A-Za-z0-9._~-]", "-", authority) or "unknown"
        return self.unknown_authority_system.format(authority=safe)

    def translate(self, system: str, code: str) -> CodeMapping | None:
        """The standard code for a local ``system``/``code`` pair, when the profile has one."""
        table = self.code_maps.get(system)
        return table.get(code) if table else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; :meth:`from_dict` reads it back."""
        data = asdict(self)
        data["z_segments"] = [asdict(rule) for rule in self.z_segments]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MappingProfile:
        """Build from JSON data.

        Raises:
            MappingError: an unknown key or a bad value; ``location`` names it.
        """
        if not isinstance(data, dict):
            raise MappingError("a mapping profile is a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise MappingError(f"unknown setting(s): {', '.join(unknown)}", location=unknown[0])
        values = dict(data)
        try:
            if "code_maps" in values:
                values["code_maps"] = {
                    system: {local: CodeMapping(**target) for local, target in table.items()}
                    for system, table in values["code_maps"].items()
                }
            if "z_segments" in values:
                values["z_segments"] = tuple(ZSegmentRule(**rule) for rule in values["z_segments"])
            return cls(**values)
        except (TypeError, AttributeError) as exc:
            raise MappingError(f"malformed profile: {exc}") from exc
