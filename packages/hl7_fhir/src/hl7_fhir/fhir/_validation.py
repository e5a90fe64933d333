"""Validate FHIR R4 resources: fhir.resources (R4B models) plus the required bindings.

R4B is wire-compatible with R4 except for the types listed in ``_r4.R4_ONLY_TYPES``
(dropped or redefined in R4B), which are checked against the R4 element table instead.
The result is a list of issues shaped like OperationOutcome.issue, so the FHIR API can
return them as they are and the mapper can refuse to emit an invalid bundle.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

from ._bindings import binding_violations
from ._issues import Issue, IssueCode
from ._r4 import R4_ONLY_TYPES, r4_structure_issues

__all__ = [
    "R4B_ONLY_TYPES",
    "Issue",
    "is_r4_type",
    "is_valid",
    "resource_model",
    "validate_resource",
]

#: Resource types R4B (4.3) added: fhir.resources has models for them, R4 does not know them.
R4B_ONLY_TYPES: frozenset[str] = frozenset(
    {
        "AdministrableProductDefinition",
        "Citation",
        "ClinicalUseDefinition",
        "EvidenceReport",
        "Ingredient",
        "ManufacturedItemDefinition",
        "MedicinalProductDefinition",
        "NutritionProduct",
        "PackagedProductDefinition",
        "RegulatedAuthorization",
        "SubscriptionStatus",
        "SubscriptionTopic",
        "SubstanceDefinition",
    }
)


@lru_cache(maxsize=256)
def resource_model(resource_type: str) -> Any:
    """The fhir.resources R4B model class for ``resource_type``, or ``None`` if unknown."""
    if not resource_type.isalpha() or not resource_type[:1].isupper():
        return None
    try:
        module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    except ImportError:
        return None
    return getattr(module, resource_type, None)


def is_r4_type(resource_type: str) -> bool:
    """True when :func:`validate_resource` can check ``resource_type`` as an R4 type.

    That is every R4B model type except those R4B added, plus the R4 types R4B dropped
    (``MedicinalProduct``...).

    >>> [is_r4_type(n) for n in ("MedicinalProduct", "Patient", "Pateint", "Citation")]
    [True, True, False, False]
    """
    if resource_type in R4B_ONLY_TYPES:
        return False
    return resource_type in R4_ONLY_TYPES or resource_model(resource_type) is not None


def _location(resource_type: str, loc: tuple[Any, ...]) -> str:
    text = resource_type
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part != "__root__":
            text += f".{part}"
    return text


def _model_issues(kind: str, model: Any, resource: dict[str, Any]) -> list[Issue]:
    from pydantic import ValidationError  # fhir.resources depends on pydantic

    issues: list[Issue] = []
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        for error in exc.errors():
            kind_of_error = str(error.get("type", ""))
            code: IssueCode = "required" if kind_of_error == "missing" else "structure"
            if kind_of_error.endswith(("_type", "_parsing", "pattern_mismatch")):
                code = "value"
            issues.append(
                Issue("error", code, _location(kind, tuple(error.get("loc", ()))), error["msg"])
            )
    except (ValueError, TypeError) as exc:
        issues.append(Issue("error", "structure", kind, str(exc)))
    return issues


def validate_resource(resource: dict[str, Any]) -> list[Issue]:
    """Every problem with ``resource`` (a JSON object); an empty list means valid.

    >>> [i.expression for i in validate_resource({"resourceType": "Patient", "gender": "mal"})]
    ['Patient.gender']
    """
    kind = resource.get("resourceType")
    if not isinstance(kind, str) or not kind:
        return [Issue("error", "required", "resourceType", "resourceType is missing")]
    if kind in R4_ONLY_TYPES:
        issues = r4_structure_issues(resource, contained=validate_resource)
    else:
        model = None if kind in R4B_ONLY_TYPES else resource_model(kind)
        if model is None:
            return [Issue("error", "not-supported", kind, f"unknown R4 resource type {kind!r}")]
        issues = _model_issues(kind, model, resource)
    for expression, bad, allowed in binding_violations(resource):
        issues.append(
            Issue(
                "error",
                "code-invalid",
                expression,
                f"{bad!r} is not in the required value set ({', '.join(sorted(allowed))})",
            )
        )
    return issues


def is_valid(resource: dict[str, Any]) -> bool:
    """True when :func:`validate_resource` finds nothing."""
    return not validate_resource(resource)
