"""Structural validation of a parsed message against the HL7 v2 reference (via hl7apy).

:func:`validate` never raises for a parsed message: it returns a
:class:`ValidationReport` whose problems carry a location (``PID-3``, ``OBX[2]-5``),
a severity, an HL7 table 0357 code and a text naming the field::

    >>> from hl7_fhir.v2 import parse
    >>> msg = parse("MSH|^~\\\\&|A|B|C|D|20250101||ADT^A01|1|P|2.5\\rEVN||20250101\\rPID|1||X")
    >>> report = validate(msg)
    >>> report.ok, [(p.location, p.severity) for p in report.problems]
    (False, [('PID-5', 'warning'), ('PV1', 'error')])
    >>> print(report.problems[0].text)
    required field PID-5 Patient Name is missing

What is checked: the MSH essentials (MSH-2, -7, -9, -10, -11, -12), required fields of
every known segment, primitive datatypes (NM, SI, DT, DTM/TS, TM) down to components,
ID values against HL7 tables (warning), lengths against the datatype maxima hl7apy
knows (warning), unknown segments (warning; Z-segments are accepted), segments the
structure does not expect (warning) and segments it requires (error). What is not:
segment order and group cardinality, conditional fields, user-defined (IS) tables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ParseError, PathError
from ._ack import ERROR_CODES, ErrorDetail
from ._datetime import Precision, parse_datetime
from ._encoding import unescape
from ._message import Message, standard_structure
from ._path import parse_path
from ._reference import (
    HL7_VERSIONS,
    ComponentDef,
    FieldDef,
    datatype_components,
    known_segments,
    message_structure,
    reference_version,
    segment_definition,
    table_values,
)
from ._segment import Segment

__all__ = ["Problem", "Severity", "ValidationReport", "validate"]

Severity = Literal["error", "warning"]

_SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)$")
_TIME = re.compile(r"^\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,4})?)?)?(?:[+-]\d{4})?$")
_PROCESSING_IDS = frozenset({"D", "P", "T"})
_MAX_REPETITIONS_CHECKED = 100
# HL7-defined tables small and stable enough that hl7apy's copy can be trusted; the big
# ones (0396 coding systems, 0125 value types...) are incomplete there or locally extended.
_CHECKED_TABLES = frozenset({"0008", "0038", "0085", "0119", "0123", "0136", "0155"})


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: where (``OBX[2]-5``), how bad, which table 0357 code, and why."""

    location: str
    severity: Severity
    code: str
    text: str

    @property
    def code_text(self) -> str:
        """The table 0357 meaning of :attr:`code`, e.g. ``Required field missing``."""
        return ERROR_CODES.get(self.code, "")

    def to_error_detail(self) -> ErrorDetail:
        """An ERR entry for :func:`hl7_fhir.v2.build_ack`."""
        try:
            location: str | None = str(parse_path(self.location))
        except PathError:  # "segment 3": not a path ERR-2 can carry
            location = None
        return ErrorDetail(
            code=self.code,
            text=self.text,
            location=location,
            severity="E" if self.severity == "error" else "W",
        )

    def to_dict(self) -> dict[str, str]:
        return {
            "location": self.location,
            "severity": self.severity,
            "code": self.code,
            "text": self.text,
        }

    def __str__(self) -> str:
        return f"{self.location}: {self.severity} {self.code} ({self.code_text}): {self.text}"


@dataclass(frozen=True, slots=True)
class ValidationReport:
    """The outcome of :func:`validate`.

    ``version`` is MSH-12 as sent, ``reference_version`` the hl7apy library the message
    was checked against (the nearest supported one when they differ).
    """

    problems: tuple[Problem, ...]
    control_id: str = ""
    message_type: str = ""
    structure: str = ""
    version: str = ""
    reference_version: str = ""

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not any(p.severity == "error" for p in self.problems)

    def error_details(self) -> list[ErrorDetail]:
        """The errors as ERR entries, ready for ``build_ack(msg, "AE", errors=...)``."""
        return [p.to_error_detail() for p in self.errors]

    def to_dict(self) -> dict[str, Any]:
        return {
            "control_id": self.control_id,
            "message_type": self.message_type,
            "structure": self.structure,
            "version": self.version,
            "reference_version": self.reference_version,
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "problems": [p.to_dict() for p in self.problems],
        }

    def to_json(self, *, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_text(self) -> str:
        """One line per problem, errors first, after a summary line."""
        head = (
            f"{self.message_type or '?'} {self.control_id or '(no control id)'} "
            f"v{self.version or '?'}: {len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        )
        ordered = sorted(self.problems, key=lambda p: p.severity != "error")
        lines = [head]
        for p in ordered:
            lines.append(f"  {p.severity.upper():<7} {p.location:<12} {p.code}  {p.text}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


def _location(name: str, occurrence: int, field: int | None = None, *parts: int | None) -> str:
    text = name if occurrence == 1 else f"{name}[{occurrence}]"
    if field is None:
        return text
    text += f"-{field}"
    repetition, *rest = parts or (None,)
    if repetition is not None and repetition > 1:
        text += f"[{repetition}]"
    for part in rest:
        if part is None:
            break
        text += f".{part}"
    return text


class _Checker:
    """Collects problems for one message; one instance per :func:`validate` call."""

    def __init__(self, message: Message, version: str, strict: bool) -> None:
        self.message = message
        self.version = version
        self.strict = strict
        self.encoding = message.encoding
        self.problems: list[Problem] = []

    def add(self, location: str, severity: Severity, code: str, text: str) -> None:
        self.problems.append(Problem(location, severity, code, text))

    # -- header --------------------------------------------------------------------

    def header(self, sent_version: str) -> None:
        msh = self.message.header
        name = _describer(msh, self.version)
        if not msh.field_text(2):
            self.add("MSH-2", "error", "101", f"required field {name(2)} is missing")
        elif len(msh.field_text(2)) < 4:
            self.add(
                "MSH-2", "warning", "102", f"{name(2)} should hold 4 characters (defaults assumed)"
            )
        for number in (7, 9, 10, 11, 12):
            if not msh.field_text(number):
                self.add(
                    f"MSH-{number}", "error", "101", f"required field {name(number)} is missing"
                )
        stamp = msh.get(7)
        if stamp:
            try:
                parse_datetime(stamp)
            except ParseError:
                self.add("MSH-7", "error", "102", f"{name(7)} is not an HL7 date/time: {stamp!r}")
        self._message_type(msh)
        processing = msh.get(11, 1, 1)
        if processing and processing not in _PROCESSING_IDS:
            self.add(
                "MSH-11", "error", "202", f"{name(11)} {processing!r} is not D, P or T (table 0103)"
            )
        if sent_version and sent_version not in HL7_VERSIONS:
            self.add(
                "MSH-12", "error", "203", f"{name(12)} {sent_version!r} is not an HL7 v2 version"
            )
        elif sent_version and sent_version != self.version:
            self.add(
                "MSH-12",
                "warning",
                "203",
                f"{name(12)} {sent_version} is not in the reference; checked against {self.version}",
            )

    def _message_type(self, msh: Segment) -> None:
        if not msh.field_text(9):
            return
        code, trigger = msh.get(9, 1, 1), msh.get(9, 1, 2)
        if not code:
            self.add(
                "MSH-9.1", "error", "101", "required component MSH-9.1 Message Code is missing"
            )
        elif not _SEGMENT_ID.match(code):
            self.add("MSH-9.1", "error", "200", f"{code!r} is not a message type")
        else:
            codes = table_values("0076", self.version)
            if codes is not None and code not in codes:
                self.add("MSH-9.1", "warning", "200", f"message type {code!r} is not in table 0076")
        if not trigger and code != "ACK":
            self.add(
                "MSH-9.2", "error", "101", "required component MSH-9.2 Trigger Event is missing"
            )
        elif trigger:
            events = table_values("0003", self.version)
            if events is not None and trigger not in events:
                self.add(
                    "MSH-9.2", "warning", "201", f"trigger event {trigger!r} is not in table 0003"
                )

    # -- segments ------------------------------------------------------------------

    def segments(self) -> None:
        seen: dict[str, int] = {}
        known = known_segments(self.version)
        for index, segment in enumerate(self.message):
            name = segment.name
            occurrence = seen[name] = seen.get(name, 0) + 1
            if not _SEGMENT_ID.match(name):
                self.add(f"segment {index + 1}", "error", "100", f"{name!r} is not a segment id")
                continue
            if name == "MSH" and index > 0:
                self.add(_location(name, occurrence), "error", "100", "a second MSH segment")
                continue
            if name.startswith("Z"):
                continue
            if name not in known:
                if occurrence > 1:
                    continue
                self.add(
                    _location(name, occurrence),
                    "warning",
                    "100",
                    f"segment {name} is not defined in HL7 v{self.version}",
                )
                continue
            self.segment(segment, occurrence)

    def segment(self, segment: Segment, occurrence: int) -> None:
        definition = segment_definition(segment.name, self.version)
        if definition is None:
            return
        name = segment.name
        count = max(len(segment), len(definition.fields))
        for number in range(3 if name == "MSH" else 1, count + 1):
            field = definition.field(number)
            if field is None:
                break
            raw = segment.field_text(number)
            if not raw:
                if field.required and not (name == "MSH" and number in (7, 9, 10, 11, 12)):
                    self.add(
                        _location(name, occurrence, number),
                        "error" if self.strict or name == "MSH" else "warning",
                        "101",
                        f"required field {name}-{number} {field.long_name} is missing",
                    )
                continue
            if field.optionality == "withdrawn" or (name == "MSH" and number == 7):
                continue  # MSH-7 was checked with the header
            self.field(segment, occurrence, field, raw)

    def field(self, segment: Segment, occurrence: int, field: FieldDef, raw: str) -> None:
        enc = self.encoding
        repetitions = raw.split(enc.repetition)
        name = segment.name
        label = f"{name}-{field.number} {field.long_name}"
        if not field.repeatable and len(repetitions) > 1:
            self.add(
                _location(name, occurrence, field.number),
                "warning",
                "102",
                f"{label} repeats but the standard allows one value",
            )
        datatype, components = field.datatype, field.components
        severity: Severity = "error" if self.strict or field.required else "warning"
        if datatype == "varies" and name == "OBX" and field.number == 5:
            datatype = segment.get(2, 1, 1)
            if not _is_datatype(datatype, self.version):
                self.add(
                    _location(name, occurrence, 2),
                    "warning",
                    "101" if not datatype else "103",
                    f"{name}-5 is valued but {name}-2 Value Type is empty"
                    if not datatype
                    else f"{name}-2 Value Type {datatype!r} is not an HL7 datatype",
                )
                return
            components = datatype_components(datatype, self.version)
            severity = "error"  # the observation's value, typed by OBX-2
        for number, repetition in enumerate(repetitions[:_MAX_REPETITIONS_CHECKED], start=1):
            if not repetition or repetition == '""':
                continue

            def where(*parts: int | None, _r: int = number) -> str:
                return _location(name, occurrence, field.number, _r, *parts)

            if components:
                self.composite(repetition, components, where, label, 1, severity)
            else:
                first = repetition.split(enc.component, 1)[0]
                self.primitive(
                    first, datatype, field.table, field.max_length, where(), label, severity
                )

    def composite(
        self,
        text: str,
        components: tuple[ComponentDef, ...],
        where: Callable[..., str],
        label: str,
        level: int,
        severity: Severity,
    ) -> None:
        enc = self.encoding
        parts = text.split(enc.component if level == 1 else enc.subcomponent)
        for index, part in enumerate(parts[: len(components)], start=1):
            if not part or part == '""':
                continue
            component = components[index - 1]
            if component.datatype == "WD":
                continue
            if level == 1 and component.components and enc.subcomponent in part:
                self.composite(
                    part,
                    component.components,
                    lambda sub, _i=index: where(_i, sub),
                    f"{label}, {component.long_name}",
                    2,
                    severity,
                )
                continue
            if component.components:  # composite component sent without subcomponents
                component = component.components[0]
            self.primitive(
                part,
                component.datatype,
                component.table,
                component.max_length,
                where(index),
                f"{label}, {component.long_name}",
                severity,
            )

    def primitive(
        self,
        raw: str,
        datatype: str,
        table: str | None,
        max_length: int | None,
        location: str,
        label: str,
        severity: Severity,
    ) -> None:
        value = unescape(raw, self.encoding) if self.encoding.escape in raw else raw
        if datatype == "NM":
            if not _NUMBER.match(value.strip()):
                self.add(location, severity, "102", f"{label} is not a number: {value!r}")
        elif datatype == "SI":
            if not value.strip().isdigit():
                self.add(location, severity, "102", f"{label} is not a sequence id: {value!r}")
        elif datatype in {"DT", "DTM", "TS"}:
            self.datetime(value, datatype, location, label, severity)
        elif datatype == "TM":
            if not _TIME.match(value.strip()):
                self.add(location, severity, "102", f"{label} is not an HL7 time: {value!r}")
        elif datatype == "ID" and table in _CHECKED_TABLES:
            codes = table_values(table, self.version)
            if codes is not None and value not in codes:
                self.add(
                    location, "warning", "103", f"{label} {value!r} is not in HL7 table {table}"
                )
        if max_length is not None and len(value) > max_length:
            self.add(
                location,
                "warning",
                "104",
                f"{label} is {len(value)} characters, more than the {max_length} of {datatype}",
            )

    def datetime(
        self, value: str, datatype: str, location: str, label: str, severity: Severity
    ) -> None:
        try:
            parsed = parse_datetime(value)
        except ParseError:
            kind = "date" if datatype == "DT" else "date/time"
            self.add(location, severity, "102", f"{label} is not an HL7 {kind}: {value!r}")
            return
        if datatype == "DT" and parsed is not None and parsed.precision > Precision.DAY:
            self.add(location, "warning", "102", f"{label} is a date but carries a time: {value!r}")

    # -- structure -----------------------------------------------------------------

    def structure(self) -> str:
        msg = self.message
        sent = msg.header.get(9, 1, 3)
        event = f"{msg.message_type}^{msg.trigger_event}"
        standard = standard_structure(msg.message_type, msg.trigger_event) or ""
        candidates = [sent, standard, event.replace("^", "_")]
        if not msg.trigger_event:
            candidates.append(msg.message_type)
        definition = None
        for candidate in candidates:
            definition = message_structure(candidate, self.version) if candidate else None
            if definition is not None:
                break
        if sent and (definition is None or definition.name != sent):
            also = f"; checked as {definition.name}" if definition else ""
            self.add(
                "MSH-9.3",
                "warning",
                "200",
                f"message structure {sent!r} is not defined in HL7 v{self.version}{also}",
            )
        if definition is None:
            return msg.structure
        present = {segment.name for segment in msg}
        for name in definition.required_segments:
            if name not in present:
                self.add(
                    name,
                    "error",
                    "100",
                    f"required segment {name} is missing from {definition.name}",
                )
        allowed = definition.segment_names
        known = known_segments(self.version)
        reported: set[str] = set()
        for name in (segment.name for segment in msg):
            if name in allowed or name in reported or name not in known or name[0] == "Z":
                continue
            reported.add(name)
            self.add(name, "warning", "100", f"segment {name} is not expected in {definition.name}")
        return definition.name


def _is_datatype(name: str, version: str) -> bool:
    return bool(name) and (
        bool(datatype_components(name, version)) or name in _PRIMITIVES or name == "varies"
    )


_PRIMITIVES = frozenset(
    {"ST", "TX", "FT", "NM", "SI", "DT", "DTM", "TM", "TS", "ID", "IS", "GTS", "TN"}
)


def _describer(segment: Segment, version: str) -> Callable[[int], str]:
    definition = segment_definition(segment.name, version)

    def describe(number: int) -> str:
        field = definition.field(number) if definition else None
        text = f"{segment.name}-{number}"
        return f"{text} {field.long_name}" if field else text

    return describe


def validate(
    message: Message, *, version: str | None = None, strict: bool = False
) -> ValidationReport:
    """Check ``message`` against the HL7 v2 reference for its version (MSH-12).

    By default errors are what stops a receiver: MSH essentials, an unknown version,
    segments the structure requires, malformed values in required fields and in OBX-5;
    a missing required field outside MSH and a malformed optional value are warnings.
    ``strict=True`` makes every missing required field (101) and malformed value (102)
    an error.

    ``version`` overrides MSH-12 as the reference to check against. Versions hl7apy
    does not ship (2.7.1, 2.9) are checked against the nearest older one, with a
    warning; an empty MSH-12 is checked against 2.5.

    Never raises for a parsed message; every finding is a :class:`Problem` in the
    returned :class:`ValidationReport`.
    """
    sent = message.version
    reference = reference_version(version or sent)
    checker = _Checker(message, reference, strict)
    checker.header(sent if version is None else "")
    checker.segments()
    structure = checker.structure()
    return ValidationReport(
        problems=tuple(checker.problems),
        control_id=message.control_id,
        message_type=message.header.get(9),
        structure=structure,
        version=sent,
        reference_version=reference,
    )
