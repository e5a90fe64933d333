"""FHIR R4 data types -> HL7 v2 data types, and what every builder shares.

The reverse of ``_datatypes``: each function takes a FHIR element (JSON) and returns a
v2 value ready to assign to a segment (a string, or a tuple of components whose nested
tuples are subcomponents); assignment escapes it. Empty input gives ``""``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ...errors import MappingError
from ...v2 import Message, Segment, new_message, standard_structure
from ...v2._segment import Value
from .._codes import v2_table_uri
from .._datatypes import v2_system_name
from .._profile import MappingProfile

__all__ = [
    "BuildOptions",
    "ResourceList",
    "Resources",
    "Writer",
    "codeable_concept",
    "cx",
    "dtm",
    "ei",
    "hd",
    "identifier_type_code",
    "put",
    "start_message",
    "text_lines",
]

Json = dict[str, Any]
IDENTIFIER_TYPE_SYSTEM = v2_table_uri("0203")
_SECTION = v2_table_uri("0074")
_DICOM = "http://dicom.nema.org/resources/ontology/DCM"
_FHIR_DATETIME = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
_OID = re.compile(r"\d+(\.\d+)+")
DEFAULT_VERSION = "2.5.1"
_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6")


class ResourceList(list[Json]):
    """A list of resources that also remembers each Bundle entry's ``fullUrl``."""

    def __init__(self, items: Iterable[Json] = ()) -> None:
        super().__init__(items)
        self.full_urls: dict[str, Json] = {}


class Resources:
    """The resources a message is built from, found by type or by reference."""

    def __init__(self, items: Sequence[Json]) -> None:
        self.items = list(items)
        self._index: dict[str, Json] = dict(getattr(items, "full_urls", {}))
        for resource in self.items:
            kind, ident = resource.get("resourceType"), resource.get("id")
            if kind and ident:
                self._index.setdefault(f"{kind}/{ident}", resource)

    def of_type(self, *kinds: str) -> list[Json]:
        """Every resource of the given types, in input order."""
        return [r for r in self.items if r.get("resourceType") in kinds]

    def resolve(self, reference: Any, container: Json | None = None) -> Json | None:
        """The resource a Reference points at (fullUrl, ``Type/id``, absolute URL or
        ``#contained``), ``None`` when it is not among the resources."""
        text = reference.get("reference") if isinstance(reference, dict) else reference
        if not isinstance(text, str) or not text:
            return None
        if text.startswith("#") and container is not None:
            for inner in container.get("contained", []):
                if inner.get("id") == text[1:]:
                    return dict(inner)
            return None
        if text in self._index:
            return self._index[text]
        text = re.sub(r"/_history/[^/]+$", "", text)
        parts = text.rstrip("/").split("/")
        return self._index.get("/".join(parts[-2:])) if len(parts) >= 2 else None


@dataclass(frozen=True, slots=True)
class BuildOptions:
    """The options every builder takes (``from_fhir(..., version="2.3")``)."""

    version: str = DEFAULT_VERSION
    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    control_id: str | None = None
    timestamp: datetime | None = None
    processing_id: str = "P"
    charset: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, options: dict[str, Any], extra: dict[str, Any] | None = None) -> BuildOptions:
        """Check the options: unknown names and bad values raise :class:`MappingError`.

        ``extra`` is the builder's own options with their defaults.
        """
        extra = dict(extra or {})
        known = set(cls.__dataclass_fields__) - {"extra"}
        values: dict[str, Any] = {}
        for name, value in options.items():
            if name in known:
                values[name] = value
            elif name in extra:
                if not isinstance(value, type(extra[name])) and extra[name] is not None:
                    raise MappingError(f"expected {type(extra[name]).__name__}", location=name)
                extra[name] = value
            else:
                allowed = ", ".join(sorted(known | set(extra)))
                raise MappingError(f"unknown option; allowed: {allowed}", location=name)
        version = str(values.get("version", DEFAULT_VERSION))
        if version not in _VERSIONS:
            raise MappingError(
                f"cannot build version {version!r}; supported: {', '.join(_VERSIONS)}",
                location="version",
            )
        timestamp = values.get("timestamp")
        if timestamp is not None and not isinstance(timestamp, datetime):
            raise MappingError("expected a datetime", location="timestamp")
        for name in known - {"timestamp"}:
            if values.get(name) is not None and not isinstance(values[name], str):
                raise MappingError("expected a string", location=name)
        return cls(**{**values, "version": version}, extra=extra)


@dataclass
class Writer:
    """State of one message being built: options, profile, resources, the message."""

    options: BuildOptions
    profile: MappingProfile
    resources: Resources
    message: Message

    @property
    def version(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.options.version.split("."))

    def since(self, *version: int) -> bool:
        """True when the message's version is ``version`` or later."""
        return self.version >= version

    def segment(self, name: str) -> Segment:
        """Append a new segment."""
        return self.message.add_segment(name)

    def finish(self) -> Message:
        """The message, with MSH-18 saying ``UNICODE UTF-8`` when its text is not plain
        ASCII and no ``charset`` option was given (an empty MSH-18 means ASCII)."""
        if self.options.charset is None and not self.message.to_er7().isascii():
            self.message["MSH-18"] = "UNICODE UTF-8"
        return self.message

    def coded(self, concept: Json | None) -> Value:
        """A CodeableConcept for a coded field: CE up to v2.5.1, CWE from v2.6."""
        return codeable_concept(concept, cwe=self.since(2, 6))


def start_message(
    resources: Sequence[Json],
    message_type: str,
    trigger: str,
    profile: MappingProfile,
    options: BuildOptions,
) -> Writer:
    """A :class:`Writer` holding a new message with only its MSH.

    MSH-9 carries the message structure (``ADT_A01``) from v2.3.1 on.
    """
    parts = [message_type, trigger]
    structure = standard_structure(message_type, trigger)
    if structure and options.version != "2.3":
        parts.append(structure)
    message = new_message(
        "^".join(parts),
        version=options.version,
        sending_application=options.sending_application,
        sending_facility=options.sending_facility,
        receiving_application=options.receiving_application,
        receiving_facility=options.receiving_facility,
        control_id=options.control_id,
        timestamp=options.timestamp,
        processing_id=options.processing_id,
        charset=options.charset,
    )
    return Writer(options, profile, Resources(resources), message)


# -- writing ---------------------------------------------------------------------


def trim(value: Value) -> Value:
    """Drop trailing empty components so ``("P001", "", "")`` is written ``P001``."""
    if isinstance(value, tuple):
        parts = [trim(v) for v in value]
        while parts and parts[-1] in ("", None, ()):
            parts.pop()
        if not parts:
            return ""
        return tuple(parts) if len(parts) > 1 or isinstance(parts[0], tuple) else parts[0]
    if isinstance(value, list):
        reps = [trim(v) for v in value]
        while reps and reps[-1] in ("", None, ()):
            reps.pop()
        return reps if reps else ""
    return "" if value is None else value


def put(segment: Segment, number: int, value: Value) -> None:
    """Set field ``number`` unless ``value`` is empty (so nothing empty is written)."""
    value = trim(value)
    if value not in ("", None, (), []):
        segment.set(number, value)


def text_lines(text: str) -> list[str]:
    """Text split into lines (for TX/FT repetitions), ``[]`` for blank text."""
    if not text or not text.strip():
        return []
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


# -- dates ---------------------------------------------------------------------------


def dtm(value: Any, location: str) -> str:
    """A FHIR date/dateTime/instant as HL7 DTM, keeping its precision and offset.

    ``2025-08-18T09:00:00+10:00`` -> ``20250818090000+1000``; ``Z`` becomes ``+0000``;
    fractions of a second keep up to four digits (the DTM limit).

    Raises:
        MappingError: the value is not a FHIR date/time.
    """
    if value in (None, ""):
        return ""
    match = _FHIR_DATETIME.match(value) if isinstance(value, str) else None
    if match is None:
        raise MappingError(f"not a FHIR date/time: {value!r}", location=location)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    text = "".join(p for p in (year, month, day, hour, minute, second) if p)
    if fraction:
        text += "." + fraction[:4]
    if zone:
        text += "+0000" if zone == "Z" else zone.replace(":", "")
    return text


def dt(value: Any, location: str) -> str:
    """A FHIR date/dateTime as HL7 DT (the date part, at its precision)."""
    return dtm(value, location)[:8]


# -- identifiers ---------------------------------------------------------------------


def hd(system: str | None, profile: MappingProfile) -> Value:
    """The assigning authority (HD) for an Identifier.system: the reverse of the forward
    mapping's profile ``identifier_systems``, ``unknown_authority_system`` template and
    ``urn:oid:``; any other URI becomes a universal id of type ``URI``."""
    if not system:
        return ""
    names = [name for name, uri in profile.identifier_systems.items() if uri == system]
    if names:
        oid = next((n for n in names if _OID.fullmatch(n)), "")
        namespace = next((n for n in names if not _OID.fullmatch(n)), "")
        return (namespace, oid, "ISO") if oid else namespace
    prefix, _, suffix = profile.unknown_authority_system.partition("{authority}")
    if (
        system.startswith(prefix)
        and system.endswith(suffix)
        and len(system) > len(prefix) + len(suffix)
    ):
        return system[len(prefix) : len(system) - len(suffix)]
    if system.startswith("urn:oid:"):
        return ("", system[len("urn:oid:") :], "ISO")
    return ("", system, "URI")


def identifier_type_code(identifier: Json) -> str:
    """The table 0203 code of Identifier.type (``MR``, ``PLAC``...), ``""`` if none."""
    codes = identifier_type_codes(identifier)
    return codes[0] if codes else ""


def identifier_type_codes(identifier: Json) -> list[str]:
    """Every table 0203 code of Identifier.type (an id can be both FILL and ACSN)."""
    codings = (identifier.get("type") or {}).get("coding", [])
    return [
        str(c["code"])
        for c in codings
        if c.get("code") and c.get("system", IDENTIFIER_TYPE_SYSTEM) == IDENTIFIER_TYPE_SYSTEM
    ]


def cx(identifier: Json, writer: Writer, *, location: str) -> Value:
    """Identifier -> CX: value^^^authority^type (and ^^start^end from v2.5)."""
    value = identifier.get("value")
    if not value:
        return ""
    parts: list[Value] = [
        str(value),
        "",
        "",
        hd(identifier.get("system"), writer.profile),
        identifier_type_code(identifier),
    ]
    period = identifier.get("period") or {}
    if period and writer.since(2, 5):
        parts += [
            "",
            dt(period.get("start"), f"{location}.period.start"),
            dt(period.get("end"), f"{location}.period.end"),
        ]
    return tuple(parts)


def ei(identifier: Json | None, profile: MappingProfile) -> Value:
    """Identifier -> EI: value^namespace^universal id^universal id type."""
    if not identifier or not identifier.get("value"):
        return ""
    authority = hd(identifier.get("system"), profile)
    if isinstance(authority, tuple):
        return (str(identifier["value"]), *authority)
    return (str(identifier["value"]), authority)


def identifiers_typed(identifiers: Iterable[Json], code: str) -> list[Json]:
    """The identifiers whose type carries table 0203 ``code``."""
    return [i for i in identifiers if code in identifier_type_codes(i) and i.get("value")]


# -- codes ---------------------------------------------------------------------------


def _triplet(coding: Json) -> tuple[str, str, str]:
    system = coding.get("system") or ""
    return (
        str(coding.get("code") or ""),
        str(coding.get("display") or ""),
        v2_system_name(system) if system else "",
    )


def codeable_concept(concept: Json | None, *, cwe: bool = True) -> Value:
    """CodeableConcept -> CWE (or CE): the first two codings as the two triplets, text
    as CWE.9 (original text); a CE without a display carries the text in CE.2."""
    if not concept:
        return ""
    codings = [c for c in concept.get("coding", []) if c.get("code")]
    text = str(concept.get("text") or "")
    first = _triplet(codings[0]) if codings else ("", "", "")
    second = _triplet(codings[1]) if len(codings) > 1 else ("", "", "")
    if not first[1] and text and (not cwe or not codings):
        first = (first[0], text, first[2])
    parts: list[Value] = [*first, *second]
    if cwe and text and text != first[1]:
        parts += ["", "", text]
    return tuple(parts)


def section_code(categories: Sequence[Json]) -> str:
    """OBR-24 (diagnostic service section, table 0074) from a category: a DICOM modality
    when there is one (what radiology receivers route on: ``CT``, ``MR``, ``US``), else
    the table 0074 code, else the first code."""
    for system in (_DICOM, _SECTION):
        for concept in categories:
            code = coding_code(concept, system)
            if code:
                return code
    return coding_code(categories[0]) if categories else ""


def coding_code(concept: Json | None, system: str | None = None) -> str:
    """The first code of a CodeableConcept (of ``system`` when given)."""
    for coding in (concept or {}).get("coding", []):
        if coding.get("code") and (system is None or coding.get("system") == system):
            return str(coding["code"])
    return ""
