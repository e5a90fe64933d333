"""What the standard says a segment, field or message structure holds, read from hl7apy.

hl7apy ships the HL7 v2 reference tables (versions 2.1 to 2.8.2) as Python literals:
``hl7apy.v2_5.segments.SEGMENTS["PID"]`` lists the fields with their cardinality,
``FIELDS["PID_5"]`` gives datatype, long name and table, ``DATATYPES_STRUCTS["XPN"]``
the components, ``MESSAGES``/``GROUPS`` the message structures. This module turns those
into small frozen dataclasses and caches every lookup.

hl7apy is imported lazily, inside the lookups, so ``import hl7_fhir.v2`` stays free of it.

What hl7apy does not have, and so neither do we: field lengths from the standard (every
entry says ``-1``; the only lengths are per primitive datatype, e.g. ST 199, IS 20, NM 16,
SI 4), and the "conditional" / "backward compatible" optionality codes (hl7apy only keeps
the minimum cardinality, so a field is ``required`` or ``optional``; withdrawn fields,
datatype ``WD``, are ``withdrawn``).

>>> field_definition("PID", 5, "2.5").long_name
'Patient Name'
>>> reference_version("2.9"), reference_version("")
('2.8.2', '2.5')
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from types import ModuleType
from typing import Any, Literal

from ..errors import PathError
from ._message import parse_version
from ._path import parse_path

__all__ = [
    "DEFAULT_VERSION",
    "HL7_VERSIONS",
    "SUPPORTED_VERSIONS",
    "ComponentDef",
    "FieldDef",
    "MessageStructureDef",
    "Optionality",
    "SegmentDef",
    "StructureNode",
    "datatype_components",
    "field_definition",
    "known_segments",
    "long_name",
    "message_structure",
    "reference_version",
    "segment_definition",
    "table_values",
]

# hl7apy's libraries (hl7apy.SUPPORTED_LIBRARIES), listed here so that resolving a
# version does not import hl7apy.
SUPPORTED_VERSIONS = (
    *("2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1"),
    *("2.6", "2.7", "2.8", "2.8.1", "2.8.2"),
)
# HL7 table 0104 (version id): every version that was published.
HL7_VERSIONS = frozenset(
    {"2.0", "2.0D", "2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1"}
    | {"2.8", "2.8.1", "2.8.2", "2.9", "2.9.1"}
)
DEFAULT_VERSION = "2.5"

Optionality = Literal["required", "optional", "withdrawn"]

_SMALL_WORDS = frozenset({"OF", "TO", "BY", "OR", "FOR", "AND", "THE", "IN", "ON", "AT", "FROM"})
_ACRONYMS = frozenset(
    {"ID", "IDS", "SSN", "DRG", "OID", "VIP", "DEA", "DMV", "NDC", "CMS", "MD", "DR", "JR"}
    | {"III", "CPU", "PSRO", "UR", "MFN", "CDM", "IRB", "PCA", "NPI", "URL", "UCUM", "II", "TQ"}
)


@lru_cache(maxsize=64)
def reference_version(version: str) -> str:
    """The hl7apy library that describes ``version``.

    A supported version maps to itself; any other to the nearest older supported one
    (``2.7.1`` -> ``2.7``, ``2.9`` -> ``2.8.2``), older than 2.1 to ``2.1``, and an
    empty or unreadable version to :data:`DEFAULT_VERSION`. Callers that care compare
    the result with what they asked for.
    """
    version = version.strip()
    if version in SUPPORTED_VERSIONS:
        return version
    key = parse_version(version)
    if len(key) < 2:
        return DEFAULT_VERSION
    older = [v for v in SUPPORTED_VERSIONS if parse_version(v) <= key]
    return older[-1] if older else SUPPORTED_VERSIONS[0]


@cache
def _library(version: str) -> ModuleType:
    import hl7apy  # deferred: keeps `import hl7_fhir.v2` free of hl7apy

    library: ModuleType = hl7apy.load_library(reference_version(version))
    return library


def _title(name: str, segments: frozenset[str] = frozenset()) -> str:
    """``DATE_TIME_OF_BIRTH`` -> ``Date/Time of Birth``, ``MOTHER_S_MAIDEN_NAME`` -> ``Mother's Maiden Name``."""
    words: list[str] = []
    example = ""
    if "_E_G_" in name:  # SUFFIX_E_G_JR_OR_III -> Suffix (e.g. JR or III)
        name, example = name.split("_E_G_", 1)
    for word in name.split("_"):
        if not word:
            continue
        if word == "S" and words:
            words[-1] += "'s"
        elif word in _SMALL_WORDS and words:
            words.append(word.lower())
        elif word in _ACRONYMS or word in segments or any(c.isdigit() for c in word):
            words.append("IDs" if word == "IDS" else word)
        else:
            words.append(word.capitalize())
    text = " ".join(words).replace("Date Time", "Date/Time")
    if example:
        return f"{text} (e.g. {_title(example, segments)})"
    return text


def _table_id(table: str | None) -> str | None:
    if not table:
        return None
    return table[3:] if table.upper().startswith("HL7") else table


@dataclass(frozen=True, slots=True)
class ComponentDef:
    """One component (or subcomponent) of a composite datatype, e.g. XPN.1 Family Name."""

    number: int
    long_name: str
    datatype: str
    table: str | None = None
    max_length: int | None = None
    components: tuple[ComponentDef, ...] = ()


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One field of a segment as the standard defines it, e.g. PID-5 Patient Name (XPN)."""

    segment: str
    number: int
    long_name: str
    datatype: str
    optionality: Optionality
    max_repetitions: int | None
    max_length: int | None = None
    table: str | None = None
    components: tuple[ComponentDef, ...] = ()

    @property
    def location(self) -> str:
        """``PID-5``."""
        return f"{self.segment}-{self.number}"

    @property
    def required(self) -> bool:
        return self.optionality == "required"

    @property
    def repeatable(self) -> bool:
        return self.max_repetitions is None or self.max_repetitions > 1


@dataclass(frozen=True, slots=True)
class SegmentDef:
    """A segment's fields in order; ``version`` is the hl7apy library they came from."""

    name: str
    version: str
    fields: tuple[FieldDef, ...]

    def field(self, number: int) -> FieldDef | None:
        """The definition of field ``number`` (1-based), ``None`` past the last one.

        Fields the version withdrew and hl7apy leaves out come back as ``withdrawn``.
        """
        return self.fields[number - 1] if 0 < number <= len(self.fields) else None


@dataclass(frozen=True, slots=True)
class StructureNode:
    """A segment or group inside a message structure, with its cardinality.

    ``max`` is ``None`` when unbounded; a ``choice`` group holds exactly one of its children.
    """

    name: str
    kind: Literal["segment", "group", "choice"]
    min: int
    max: int | None
    children: tuple[StructureNode, ...] = ()

    @property
    def required(self) -> bool:
        return self.min > 0


@dataclass(frozen=True, slots=True)
class MessageStructureDef:
    """A message structure such as ``ORU_R01``: segments and groups in order."""

    name: str
    version: str
    children: tuple[StructureNode, ...]

    @property
    def segment_names(self) -> frozenset[str]:
        """Every segment that may appear anywhere in the structure."""
        names: set[str] = set()
        stack = list(self.children)
        while stack:
            node = stack.pop()
            if node.kind == "segment":
                names.add(node.name)
            stack.extend(node.children)
        return frozenset(names)

    @property
    def required_segments(self) -> tuple[str, ...]:
        """Segments every message of this structure must hold: those reached through
        required sequences only (a segment inside an optional group is not listed).
        """
        found: list[str] = []

        def walk(nodes: tuple[StructureNode, ...]) -> None:
            for node in nodes:
                if not node.required:
                    continue
                if node.kind == "segment":
                    if node.name not in found:
                        found.append(node.name)
                elif node.kind == "group":
                    walk(node.children)

        walk(self.children)
        return tuple(found)


def _cardinality(bounds: tuple[int, int]) -> tuple[int, int | None]:
    low, high = bounds
    return low, (None if high < 0 else high)


@cache
def _base_max_lengths(version: str) -> dict[str, int]:
    """Maximum lengths hl7apy enforces per primitive datatype (ST 199, NM 16, SI 4...)."""
    lengths: dict[str, int] = {}
    for name, cls in _library(version).get_base_datatypes().items():
        if name in {"WD", "ID"}:
            continue
        for args in ((), ("",)):
            try:
                limit = cls(*args).max_length
            except Exception:  # hl7apy validates the sample value; the type simply has none
                continue
            if isinstance(limit, int) and limit > 0:
                lengths[name] = limit
            break
    return lengths


def _number(key: str) -> int:
    """``PID_5`` -> 5 (hl7apy leaves withdrawn fields out, so positions are not numbers)."""
    return int(key.rsplit("_", 1)[1])


def _components(
    structs: dict[str, Any], datatypes: dict[str, Any], datatype: str, version: str, depth: int
) -> tuple[ComponentDef, ...]:
    struct = structs.get(datatype)
    if not struct or depth > 1:
        return ()
    lengths = _base_max_lengths(version)
    result: list[ComponentDef] = []
    for key, ref, bounds, _kind in struct:
        ref = ref or datatypes.get(key)
        number = _number(key)
        while len(result) < number - 1:
            result.append(ComponentDef(len(result) + 1, "Withdrawn", "WD"))
        if not ref or bounds[1] == 0:
            result.append(ComponentDef(number, _title(ref[3]) if ref else "Withdrawn", "WD"))
            continue
        kind, _struct, sub_type, name, table = ref[0], ref[1], ref[2], ref[3], ref[4]
        subs = (
            _components(structs, datatypes, sub_type, version, depth + 1) if kind != "leaf" else ()
        )
        result.append(
            ComponentDef(
                number=number,
                long_name=_title(name),
                datatype=sub_type,
                table=_table_id(table),
                max_length=lengths.get(sub_type),
                components=subs,
            )
        )
    return tuple(result)


@lru_cache(maxsize=1024)
def datatype_components(datatype: str, version: str) -> tuple[ComponentDef, ...]:
    """The components of a composite datatype (``XPN``), ``()`` for a primitive one.

    >>> [c.long_name for c in datatype_components("HD", "2.5")]
    ['Namespace ID', 'Universal ID', 'Universal ID Type']
    """
    version = reference_version(version)
    lib = _library(version)
    return _components(lib.DATATYPES_STRUCTS, lib.DATATYPES, datatype, version, 0)


@lru_cache(maxsize=64)
def known_segments(version: str) -> frozenset[str]:
    """Every segment name the version defines."""
    segments = _library(version).SEGMENTS
    return frozenset(name for name, ref in segments.items() if ref[0] == "sequence")


@lru_cache(maxsize=2048)
def segment_definition(name: str, version: str) -> SegmentDef | None:
    """The fields of segment ``name`` in ``version`` (nearest supported), ``None`` if unknown.

    >>> pid = segment_definition("PID", "2.5")
    >>> pid.field(3).required, pid.field(3).repeatable, pid.field(3).datatype
    (True, True, 'CX')
    """
    version = reference_version(version)
    lib = _library(version)
    ref = lib.SEGMENTS.get(name.upper())
    if ref is None or ref[0] != "sequence":
        return None
    lengths = _base_max_lengths(version)
    segments = known_segments(version)
    fields: list[FieldDef] = []
    for key, field_ref, bounds, _kind in ref[1]:
        field_ref = field_ref or lib.FIELDS.get(key)
        number = _number(key)
        while len(fields) < number - 1:  # withdrawn fields hl7apy left out (2.8: EVN-1)
            fields.append(
                FieldDef(name.upper(), len(fields) + 1, "Withdrawn", "WD", "withdrawn", 1)
            )
        low, high = _cardinality(bounds)
        kind, _struct, datatype, long, table = field_ref[:5]
        optionality: Optionality = "required" if low > 0 else "optional"
        if datatype == "WD":
            optionality = "withdrawn"
        components = datatype_components(datatype, version) if kind != "leaf" else ()
        fields.append(
            FieldDef(
                segment=name.upper(),
                number=number,
                long_name=_title(long, segments),
                datatype=datatype,
                optionality=optionality,
                max_repetitions=high,
                max_length=lengths.get(datatype),
                table=_table_id(table),
                components=components,
            )
        )
    return SegmentDef(name.upper(), version, tuple(fields))


def field_definition(segment: str, number: int, version: str) -> FieldDef | None:
    """The definition of ``segment``-``number``, ``None`` when unknown."""
    definition = segment_definition(segment, version)
    return definition.field(number) if definition else None


def long_name(location: str, version: str = DEFAULT_VERSION) -> str:
    """The long name of a field or component given as a path: ``PID-5`` -> ``Patient Name``,
    ``PID-5.1`` -> ``Family Name``; ``""`` when the reference does not know it.

    >>> long_name("MSH-9.2", "2.5")
    'Trigger Event'
    """
    try:
        path = parse_path(location)
    except PathError:
        return ""
    if path.field is None:
        return ""
    field = field_definition(path.segment, path.field, version)
    if field is None:
        return ""
    if path.component is None:
        return field.long_name
    if not 0 < path.component <= len(field.components):
        return ""
    component = field.components[path.component - 1]
    if path.subcomponent is None:
        return component.long_name
    subs = component.components
    return subs[path.subcomponent - 1].long_name if 0 < path.subcomponent <= len(subs) else ""


def _node(lib: ModuleType, entry: Any, depth: int) -> StructureNode | None:
    name, _ref, bounds, kind = entry[0], entry[1], entry[2], entry[3]
    low, high = _cardinality(bounds)
    if kind == "SEG":
        return StructureNode(name, "segment", low, high)
    group = lib.GROUPS.get(name)
    if group is None or depth > 12:
        return None
    children = tuple(
        node for child in group[1] if (node := _node(lib, child, depth + 1)) is not None
    )
    return StructureNode(name, "choice" if group[0] == "choice" else "group", low, high, children)


@lru_cache(maxsize=512)
def message_structure(structure: str, version: str) -> MessageStructureDef | None:
    """The segments and groups of a message structure (``ORU_R01``), ``None`` if unknown.

    >>> message_structure("ADT_A01", "2.5").required_segments
    ('MSH', 'EVN', 'PID', 'PV1')
    """
    version = reference_version(version)
    lib = _library(version)
    ref = lib.MESSAGES.get(structure.upper())
    if ref is None:
        return None
    children = tuple(node for entry in ref[1] if (node := _node(lib, entry, 0)) is not None)
    return MessageStructureDef(structure.upper(), version, children)


@lru_cache(maxsize=1024)
def table_values(table: str, version: str) -> frozenset[str] | None:
    """The codes of HL7 table ``table`` (``"0001"`` or ``"HL70001"``); ``None`` when
    hl7apy has no values for it (user-defined tables are often empty).

    >>> sorted(table_values("0103", "2.5"))
    ['D', 'P', 'T']
    """
    key = table.upper()
    if not key.startswith("HL7"):
        key = f"HL7{key.zfill(4)}"
    tables = getattr(_library(version), "TABLES", None)
    entry = tables.get(key) if tables else None
    if not entry or not entry[1]:
        return None
    return frozenset(str(value) for value in entry[1])
