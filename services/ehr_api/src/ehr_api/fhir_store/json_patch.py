"""JSON Patch (RFC 6902) on plain JSON values: add, remove, replace, move, copy, test.

`apply_patch` never mutates its input. A malformed patch document raises
`PatchSyntaxError`; an operation that cannot apply (missing path, failed `test`) raises
`PatchFailedError`.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["PatchError", "PatchFailedError", "PatchSyntaxError", "apply_patch"]


class PatchError(Exception):
    """Base of the patch errors."""


class PatchSyntaxError(PatchError):
    """The patch document is not a list of well-formed operations."""


class PatchFailedError(PatchError):
    """An operation does not apply to the document (or a `test` failed)."""


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchSyntaxError(f"{path!r} is not a JSON pointer")
    return [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]


def _index(container: list[Any], token: str, *, for_add: bool) -> int:
    if for_add and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchFailedError(f"{token!r} is not an array index")
    index = int(token)
    if index > len(container) or (not for_add and index == len(container)):
        raise PatchFailedError(f"array index {index} is out of range")
    return index


def _parent(doc: Any, tokens: list[str]) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, for_add=False)]
        else:
            raise PatchFailedError(f"path segment {token!r} does not exist")
    return node


def _get(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, for_add=False)]
    raise PatchFailedError(f"path segment {last!r} does not exist")


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, for_add=True), value)
    else:
        raise PatchFailedError(f"cannot add {last!r} to a scalar")
    return doc


def _remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise PatchFailedError("cannot remove the whole document")
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, for_add=False)]
    else:
        raise PatchFailedError(f"path segment {last!r} does not exist")
    return doc


def _value(operation: dict[str, Any]) -> Any:
    if "value" not in operation:
        raise PatchSyntaxError(f"{operation['op']!r} needs a value")
    return copy.deepcopy(operation["value"])


def _apply_one(doc: Any, operation: Any) -> Any:
    if not isinstance(operation, dict) or not isinstance(operation.get("op"), str):
        raise PatchSyntaxError(f"{operation!r} is not a patch operation")
    op, tokens = operation["op"], _pointer(operation.get("path"))
    if op == "add":
        return _add(doc, tokens, _value(operation))
    if op == "remove":
        return _remove(doc, tokens)
    if op == "replace":
        value = _value(operation)
        if not tokens:
            return value
        _get(doc, tokens)
        return _add(_remove(doc, tokens), tokens, value)
    if op in ("move", "copy"):
        source = _pointer(operation.get("from"))
        if op == "move" and tokens[: len(source)] == source and tokens != source:
            raise PatchFailedError("cannot move a value into one of its own children")
        value = copy.deepcopy(_get(doc, source))
        if op == "move":
            doc = _remove(doc, source)
        return _add(doc, tokens, value)
    if op == "test":
        if _get(doc, tokens) != _value(operation):
            raise PatchFailedError(f"test failed at {operation.get('path')!r}")
        return doc
    raise PatchSyntaxError(f"unknown patch operation {op!r}")


def apply_patch(document: Any, patch: Any) -> Any:
    """`document` with every operation of `patch` applied in order (a new value)."""
    if not isinstance(patch, list):
        raise PatchSyntaxError("a JSON Patch document is a JSON array of operations")
    result = copy.deepcopy(document)
    for operation in patch:
        result = _apply_one(result, operation)
    return result
