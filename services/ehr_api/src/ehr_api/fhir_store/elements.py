"""`_summary` and `_elements`: the subset of a resource a client asked for (R4 search.html).

Which elements are "summary" and which are mandatory comes from the R4(B) definitions as
fhir.resources carries them (`summary_element_property`, required/`element_required`), so
no table needs maintaining. Summary applies inside backbone elements too (a summary
`Observation.component` keeps only its summary children); data types are kept whole.
Whatever removed something is marked with the SUBSETTED tag, so a client never mistakes
the subset for the stored resource.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.backboneelement import BackboneElement
from hl7_fhir.fhir import resource_model

from ehr_api.errors import BadRequestError

__all__ = [
    "SUBSETTED",
    "SUMMARY_MODES",
    "check_summary",
    "count_only",
    "parse_elements",
    "shape",
]

SUBSETTED: Mapping[str, str] = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
SUMMARY_MODES = ("true", "text", "data", "count", "false")
#: Kept by every subset: the resource could not be identified or versioned without them.
_ALWAYS = frozenset({"resourceType", "id", "meta"})
#: Kept for types fhir.resources does not model (the R4-only types).
_BASE_SUMMARY = frozenset({"id", "meta", "implicitRules"})


@dataclass(frozen=True, slots=True)
class _Definition:
    """What a model says about its own elements, keyed by JSON name (`valueQuantity`)."""

    #: JSON name -> element name (`valueQuantity` -> `value`; `_status` -> `status`).
    names: Mapping[str, str]
    summary: frozenset[str]
    mandatory: frozenset[str]
    #: JSON name of a backbone element -> the definition of its children.
    backbone: Mapping[str, str]


def _model_name(annotation: Any) -> str | None:
    """The backbone model an annotation such as `Optional[List[abc.XType]]` names."""
    for arg in typing.get_args(annotation) or (annotation,):
        if typing.get_args(arg):
            found = _model_name(arg)
            if found:
                return found
            continue
        name = getattr(arg, "__name__", "")
        if name.endswith("Type") and name != "NoneType":
            try:
                model = get_fhir_model_class(name.removesuffix("Type"))
            except (KeyError, ValueError):
                continue
            if issubclass(model, BackboneElement):
                return model.__name__
    return None


@cache
def _definition(model_name: str) -> _Definition | None:
    model = resource_model(model_name)
    if model is None:
        try:
            model = get_fhir_model_class(model_name)
        except (KeyError, ValueError):
            return None
    names: dict[str, str] = {}
    summary: set[str] = set()
    mandatory: set[str] = set()
    backbone: dict[str, str] = {}
    for field_name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if not extra.get("element_property"):
            continue
        key = info.alias or field_name
        element = str(extra.get("one_of_many") or key)
        names[key] = names["_" + key] = element
        if extra.get("summary_element_property"):
            summary.add(element)
        if info.is_required() or extra.get("element_required") or extra.get("one_of_many_required"):
            mandatory.add(element)
        inner = _model_name(info.annotation)
        if inner:
            backbone[key] = inner
    return _Definition(names, frozenset(summary), frozenset(mandatory), backbone)


def count_only(summary: str | None) -> bool:
    """True for `_summary=count`: the Bundle carries the total and no entries."""
    return summary == "count"


def check_summary(summary: str | None) -> None:
    """Raises BadRequestError for a `_summary` value R4 does not define."""
    if summary is not None and summary not in SUMMARY_MODES:
        raise BadRequestError(
            f"_summary must be one of {', '.join(SUMMARY_MODES)}, got {summary!r}",
            field="_summary",
        )


def parse_elements(values: Iterable[str]) -> list[str] | None:
    """The element names of one or more `_elements` parameters (None when absent).

    `Patient.name` is read as `name`: only top-level elements can be selected.
    """
    found: list[str] | None = None
    for value in values:
        found = found if found is not None else []
        for item in value.split(","):
            name = item.strip().rsplit(".", 1)[-1]
            if name and name not in found:
                found.append(name)
    return found


def _summarise(model_name: str, content: Mapping[str, Any], top: bool) -> dict[str, Any]:
    definition = _definition(model_name)
    if definition is None:
        keep = _BASE_SUMMARY | _ALWAYS if top else frozenset()
        return {key: value for key, value in content.items() if key in keep}
    wanted = definition.summary | definition.mandatory
    kept: dict[str, Any] = {}
    for key, value in content.items():
        element = definition.names.get(key)
        if not (key in _ALWAYS and top) and element not in wanted:
            continue
        inner = definition.backbone.get(key)
        if inner and isinstance(value, list):
            value = [_summarise(inner, v, False) if isinstance(v, dict) else v for v in value]
        elif inner and isinstance(value, dict):
            value = _summarise(inner, value, False)
        kept[key] = value
    return kept


def _select(
    resource_type: str, content: Mapping[str, Any], wanted: frozenset[str]
) -> dict[str, Any]:
    definition = _definition(resource_type)
    names = definition.names if definition else {}
    mandatory = definition.mandatory if definition else frozenset()
    keep = wanted | mandatory | _ALWAYS
    return {
        key: value
        for key, value in content.items()
        if key in keep or names.get(key, key.lstrip("_")) in keep
    }


def _tagged(content: dict[str, Any]) -> dict[str, Any]:
    meta = dict(content.get("meta") or {})
    tags = [tag for tag in meta.get("tag") or () if tag != SUBSETTED]
    meta["tag"] = [*tags, dict(SUBSETTED)]
    return {**content, "meta": meta}


def shape(
    resource_type: str,
    content: dict[str, Any],
    *,
    summary: str | None,
    elements: list[str] | None,
) -> dict[str, Any]:
    """`content` cut down as `_summary` / `_elements` ask, tagged SUBSETTED if anything went.

    `_summary` wins when both are given (the spec leaves the mix undefined); `count`
    leaves the resource whole (the caller drops entries, see `count_only`).

    Raises:
        BadRequestError: a `_summary` value R4 does not define (field `_summary`).

    >>> shape("Patient", {"resourceType": "Patient", "id": "1", "text": {}},
    ...       summary="data", elements=None)["meta"]["tag"][0]["code"]
    'SUBSETTED'
    """
    check_summary(summary)
    if summary in ("true", "text", "data"):
        if summary == "data":
            cut = {key: value for key, value in content.items() if key != "text"}
        elif summary == "text":
            cut = _select(resource_type, content, frozenset({"text"}))
        else:
            cut = _summarise(resource_type, content, True)
    elif elements is not None and summary in (None, "false"):
        cut = _select(resource_type, content, frozenset(elements))
    else:
        return content
    return _tagged(cut) if cut != content else content
