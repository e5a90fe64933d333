"""FHIRPath Patch (R4 fhirpatch.html) on a resource's JSON: add, insert, delete, replace, move.

A patch is a `Parameters` resource with one `operation` parameter per change, each with
parts `type`, `path` and, as the type needs them, `name`, `value`, `index`, `source`,
`destination`. Values are `value[x]` parts, or parts of their own for complex values
(`{"name": "value", "part": [{"name": "system", "valueUri": ...}, ...]}`).

Paths are the subset of FHIRPath that patches written against R4 use in practice, so a
target can be located and changed (fhirpathpy evaluates values, it cannot say where they
are): `Type.element.element`, an index `element[0]`, `.first()`, `.last()`, and
`.where(name = 'literal')` / `.where(a.b = 'literal')` filters on lists. Anything else is a
`PatchSyntaxError` naming the path, never a guess. `apply_fhirpath_patch` never mutates
its input.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from ehr_api.fhir_store.json_patch import PatchFailedError, PatchSyntaxError

__all__ = ["apply_fhirpath_patch", "is_fhirpath_patch"]

_TYPES = frozenset({"add", "insert", "delete", "replace", "move"})
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_STEP = re.compile(  # calls first: `where` and `first` are also valid element names
    rf"where\((?P<field>{_NAME}(?:\.{_NAME})*)\s*=\s*'(?P<literal>(?:[^'\\]|\\.)*)'\)"
    rf"|(?P<call>first|last)\(\)"
    rf"|(?P<name>{_NAME})(?:\[(?P<index>\d+)\])?"
)


def is_fhirpath_patch(body: Any) -> bool:
    """Whether `body` is a FHIRPath Patch (a Parameters resource), not a JSON Patch."""
    return isinstance(body, dict) and body.get("resourceType") == "Parameters"


def apply_fhirpath_patch(resource: dict[str, Any], patch: Any) -> dict[str, Any]:
    """`resource` with every operation of `patch` applied in order (a new value).

    Raises:
        PatchSyntaxError: not a Parameters of well-formed operations, or a path outside
            the supported subset.
        PatchFailedError: an operation does not apply (no or several targets, an index
            out of range).
    """
    if not is_fhirpath_patch(patch):
        raise PatchSyntaxError("a FHIRPath Patch is a Parameters resource")
    result = copy.deepcopy(resource)
    for number, parameter in enumerate(patch.get("parameter") or ()):
        if not isinstance(parameter, dict) or parameter.get("name") != "operation":
            raise PatchSyntaxError(f"parameter {number} is not an 'operation'")
        _apply(result, _Operation.parse(parameter, number))
    return result


@dataclass(frozen=True)
class _Operation:
    type: str
    path: str
    parts: dict[str, dict[str, Any]]

    @classmethod
    def parse(cls, parameter: dict[str, Any], number: int) -> _Operation:
        parts: dict[str, dict[str, Any]] = {}
        for part in parameter.get("part") or ():
            if isinstance(part, dict) and isinstance(part.get("name"), str):
                parts[part["name"]] = part
        kind = _primitive(parts.get("type"))
        path = _primitive(parts.get("path"))
        if kind not in _TYPES:
            raise PatchSyntaxError(f"operation {number}: type must be one of {sorted(_TYPES)}")
        if not isinstance(path, str) or not path:
            raise PatchSyntaxError(f"operation {number}: a path is required")
        return cls(kind, path, parts)

    def text(self, name: str) -> str:
        value = _primitive(self.parts.get(name))
        if not isinstance(value, str) or not value:
            raise PatchSyntaxError(f"{self.type} at {self.path!r} needs '{name}'")
        return value

    def number(self, name: str) -> int:
        value = _primitive(self.parts.get(name))
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise PatchSyntaxError(f"{self.type} at {self.path!r} needs a whole number '{name}'")
        return value

    def value(self) -> Any:
        part = self.parts.get("value")
        if part is None:
            raise PatchSyntaxError(f"{self.type} at {self.path!r} needs a 'value'")
        return _value(part)


def _primitive(part: dict[str, Any] | None) -> Any:
    if part is None:
        return None
    return next((value for key, value in part.items() if key.startswith("value")), None)


def _value(part: dict[str, Any]) -> Any:
    """A value part: `value[x]`, a `resource`, or `part`s that build a complex value."""
    for key, value in part.items():
        if key.startswith("value") or key == "resource":
            return copy.deepcopy(value)
    complex_value: dict[str, Any] = {}
    for item in part.get("part") or ():
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            complex_value[item["name"]] = _value(item)
    if not complex_value:
        raise PatchSyntaxError(f"the value part {part.get('name')!r} holds no value")
    return complex_value


# -- locating targets -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Slot:
    """Where a value lives: `container[key]` (a dict key, or a list index)."""

    container: Any
    key: Any

    def get(self) -> Any:
        return self.container[self.key]


def _steps(path: str, resource_type: str) -> list[re.Match[str]]:
    text = path.strip()
    if text == resource_type:
        return []
    if not text.startswith(resource_type + "."):
        raise PatchSyntaxError(f"path {path!r} must start with {resource_type!r}")
    rest, steps = text[len(resource_type) + 1 :], []
    while rest:
        match = _STEP.match(rest)
        if match is None or (rest[match.end() :] and rest[match.end()] != "."):
            raise PatchSyntaxError(
                f"path {path!r}: {rest!r} is outside the supported FHIRPath (elements,"
                " element[n], first(), last(), where(element = 'text'))"
            )
        steps.append(match)
        rest = rest[match.end() + 1 :]
    return steps


def _locate(resource: dict[str, Any], path: str) -> list[_Slot]:
    """Every slot `path` selects in `resource` (lists flattened, as FHIRPath does)."""
    slots = [_Slot({"": resource}, "")]
    for step in _steps(path, str(resource.get("resourceType"))):
        if step["name"]:
            found = []
            for slot in slots:
                node = slot.get()
                if isinstance(node, dict) and step["name"] in node:
                    value = node[step["name"]]
                    if isinstance(value, list):
                        found += [_Slot(value, index) for index in range(len(value))]
                    else:
                        found.append(_Slot(node, step["name"]))
            if step["index"] is not None:
                index = int(step["index"])
                found = found[index : index + 1]
            slots = found
        elif step["call"]:
            slots = slots[:1] if step["call"] == "first" else slots[-1:]
        else:
            literal = re.sub(r"\\(.)", r"\1", step["literal"])
            slots = [slot for slot in slots if _field(slot.get(), step["field"]) == literal]
    return slots


def _field(node: Any, dotted: str) -> Any:
    for name in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(name)
    return node


def _one(slots: list[_Slot], operation: _Operation) -> _Slot:
    if len(slots) != 1:
        raise PatchFailedError(
            f"{operation.type} at {operation.path!r} needs one target, found {len(slots)}"
        )
    return slots[0]


def _list_at(resource: dict[str, Any], operation: _Operation) -> list[Any]:
    """The list a path names (insert, move): its parent element's value."""
    head, _, name = operation.path.rpartition(".")
    if not head or not re.fullmatch(_NAME, name):
        raise PatchSyntaxError(f"{operation.type} needs a path ending in a list element name")
    parent = _one(_locate(resource, head), operation).get()
    if not isinstance(parent, dict):
        raise PatchFailedError(f"{head!r} is not an element")
    if parent.get(name) is None and operation.type == "insert":
        parent[name] = []  # inserting into a list that is not there yet starts it
    value = parent.get(name)
    if not isinstance(value, list):
        raise PatchFailedError(f"{operation.path!r} is not a list")
    return value


# -- applying -------------------------------------------------------------------------------


def _apply(resource: dict[str, Any], operation: _Operation) -> None:
    if operation.type in ("replace", "delete") and not _steps(
        operation.path, str(resource.get("resourceType"))
    ):
        raise PatchSyntaxError(f"{operation.type} cannot apply to the resource itself")
    if operation.type == "add":
        target = _one(_locate(resource, operation.path), operation).get()
        if not isinstance(target, dict):
            raise PatchFailedError(f"add at {operation.path!r}: the target is not an element")
        name, value = operation.text("name"), operation.value()
        current = target.get(name)
        if isinstance(current, list):
            current.append(value)
        elif current is None:
            target[name] = value
        else:
            raise PatchFailedError(f"add: {operation.path}.{name} already has a value")
    elif operation.type == "replace":
        slot = _one(_locate(resource, operation.path), operation)
        slot.container[slot.key] = operation.value()
    elif operation.type == "delete":
        slots = _locate(resource, operation.path)
        if len(slots) > 1:
            raise PatchFailedError(f"delete at {operation.path!r} matches {len(slots)} values")
        if slots:
            _remove(resource, slots[0])
    elif operation.type == "insert":
        values = _list_at(resource, operation)
        index = operation.number("index")
        if index > len(values):
            raise PatchFailedError(f"insert at {operation.path!r}: index {index} is past the end")
        values.insert(index, operation.value())
    else:  # move
        values = _list_at(resource, operation)
        source, destination = operation.number("source"), operation.number("destination")
        if source >= len(values) or destination >= len(values):
            raise PatchFailedError(f"move at {operation.path!r}: index out of range")
        values.insert(destination, values.pop(source))


def _remove(resource: dict[str, Any], slot: _Slot) -> None:
    if isinstance(slot.container, list):
        slot.container.pop(slot.key)
        if not slot.container:  # FHIR has no empty lists: drop the element
            _drop_empty(resource)
    else:
        del slot.container[slot.key]


def _drop_empty(node: Any) -> None:
    if isinstance(node, dict):
        for key in [key for key, value in node.items() if value == []]:
            del node[key]
        for value in node.values():
            _drop_empty(value)
    elif isinstance(node, list):
        for value in node:
            _drop_empty(value)
