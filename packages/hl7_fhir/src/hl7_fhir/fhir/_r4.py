"""Structure checks for the R4 resource types that fhir.resources' R4B models get wrong.

R4B (4.3) dropped 17 R4 (4.0.1) types (MedicinalProduct*, SubstanceSpecification and
its Substance* siblings, EffectEvidenceSynthesis, RiskEvidenceSynthesis) and redefined
Evidence and EvidenceVariable, so the R4B models call valid R4 content of those types
invalid. For them we walk the R4 element table in ``_r4_structures.json`` (generated from
fhirclient's R4 4.0.1 models by ``tests/hl7_fhir/fhir/r4_structures_gen.py``): element
names, cardinality (required, list or single), choice groups and primitive formats. Data
types that R4 and R4B share (CodeableConcept, Reference, ...) are still checked by the
R4B models; contained resources go back through ``validate_resource``.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any, NamedTuple

from ._issues import Issue

__all__ = ["R4_ONLY_TYPES", "r4_structure_issues"]

_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_ZONE = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_DAY = r"(0[1-9]|[1-2][0-9]|3[0-1])"
_MONTH = r"(0[1-9]|1[0-2])"
#: R4 regular expressions of the primitive types whose JSON form is a string.
_FORMATS = {
    "date": re.compile(rf"{_YEAR}(-{_MONTH}(-{_DAY})?)?"),
    "dateTime": re.compile(rf"{_YEAR}(-{_MONTH}(-{_DAY}(T{_TIME}{_ZONE})?)?)?"),
    "instant": re.compile(rf"{_YEAR}-{_MONTH}-{_DAY}T{_TIME}{_ZONE}"),
    "time": re.compile(_TIME),
    "string": re.compile(r"[ \r\n\t\S]+"),
}
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_PRIMITIVES = frozenset({"boolean", "integer", "decimal", *_FORMATS})


class _Element(NamedTuple):
    name: str
    type: str
    is_list: bool
    required: bool
    choice: str | None


@cache
def _table() -> tuple[frozenset[str], dict[str, tuple[_Element, ...]]]:
    raw = json.loads(resources.files(__package__).joinpath("_r4_structures.json").read_text())
    structures = {
        name: tuple(_Element(*element) for element in elements)
        for name, elements in raw["structures"].items()
    }
    return frozenset(raw["roots"]), structures


#: R4 resource types checked here instead of by an R4B model.
R4_ONLY_TYPES: frozenset[str] = _table()[0]


@cache
def _datatype_model(name: str) -> Any:
    module = importlib.import_module(f"fhir.resources.R4B.{name.lower()}")
    return getattr(module, name)


def _primitive_problem(kind: str, value: Any) -> str | None:
    if kind == "boolean":
        return None if isinstance(value, bool) else "Input should be a valid boolean"
    if kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "Input should be a valid integer"
    if kind == "decimal":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else "Input should be a valid decimal number"
    if not isinstance(value, str):
        return "Input should be a valid string"
    if not _FORMATS[kind].fullmatch(value):
        return f"{value!r} is not a valid FHIR {kind}"
    return None


class _Walker:
    """Collects the issues of one resource; `contained` checks nested resources."""

    def __init__(self, contained: Callable[[dict[str, Any]], list[Issue]]) -> None:
        self.contained = contained
        self.structures = _table()[1]
        self.issues: list[Issue] = []

    def error(self, code: Any, where: str, text: str) -> None:
        self.issues.append(Issue("error", code, where, text))

    def structure(self, name: str, value: Any, where: str, *, root: bool = False) -> None:
        if not isinstance(value, dict):
            self.error("structure", where, "Input should be a JSON object")
            return
        elements = self.structures[name]
        known = {element.name for element in elements}
        if root:
            known.add("resourceType")
        choices: dict[str, list[str]] = {}
        required_choices: set[str] = set()
        for element in elements:
            present = element.name in value
            if element.choice is not None:
                if present:
                    choices.setdefault(element.choice, []).append(element.name)
                if element.required:
                    required_choices.add(element.choice)
            elif element.required and not present:
                self.error("required", f"{where}.{element.name}", "Field required")
            if present:
                self.element(element, value[element.name], f"{where}.{element.name}")
            if f"_{element.name}" in value and element.type in _PRIMITIVES:
                known.add(f"_{element.name}")
        for group in sorted(required_choices - set(choices)):
            self.error("required", f"{where}.{group}[x]", f"one of {group}[x] is required")
        for group, names in sorted(choices.items()):
            if len(names) > 1:
                self.error("structure", f"{where}.{group}[x]", f"only one of {names} is allowed")
        for key in value:
            if key not in known:
                self.error("structure", f"{where}.{key}", "Extra inputs are not permitted")
        if root and "id" in value and not _ID.fullmatch(str(value["id"])):
            self.error("value", f"{where}.id", f"{value['id']!r} is not a valid FHIR id")

    def element(self, element: _Element, value: Any, where: str) -> None:
        if element.is_list != isinstance(value, list):
            expected = "a list" if element.is_list else "a single value, not a list"
            self.error("structure", where, f"Input should be {expected}")
            return
        items = enumerate(value) if element.is_list else [(None, value)]
        for index, item in items:
            self.value(element.type, item, where if index is None else f"{where}[{index}]")

    def value(self, kind: str, value: Any, where: str) -> None:
        if kind in _PRIMITIVES:
            problem = _primitive_problem(kind, value)
            if problem:
                self.error("value", where, problem)
        elif kind == "Resource":
            self.resource(value, where)
        elif kind in self.structures:
            self.structure(kind, value, where)
        else:
            self.datatype(kind, value, where)

    def resource(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            self.error("structure", where, "Input should be a JSON object (a resource)")
            return
        for issue in self.contained(value):
            tail = issue.expression.partition(".")[2]
            expression = f"{where}.{tail}" if tail else where
            self.issues.append(Issue(issue.severity, issue.code, expression, issue.diagnostics))

    def datatype(self, kind: str, value: Any, where: str) -> None:
        from pydantic import ValidationError

        try:
            _datatype_model(kind).model_validate(value)
        except ValidationError as exc:
            for error in exc.errors():
                path = "".join(
                    f"[{part}]" if isinstance(part, int) else f".{part}"
                    for part in error.get("loc", ())
                    if part != "__root__"
                )
                self.error("structure", f"{where}{path}", error["msg"])
        except (ValueError, TypeError) as exc:
            self.error("structure", where, str(exc))


def r4_structure_issues(
    resource: dict[str, Any], *, contained: Callable[[dict[str, Any]], list[Issue]]
) -> list[Issue]:
    """Structure problems of ``resource``, whose type is one of :data:`R4_ONLY_TYPES`.

    ``contained`` validates a nested resource (``validate_resource``, passed in to avoid an
    import cycle).
    """
    kind = str(resource["resourceType"])
    walker = _Walker(contained)
    walker.structure(kind, resource, kind, root=True)
    return walker.issues
