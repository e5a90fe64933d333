"""FHIR R4 helpers: validation with fhir.resources (R4B models) plus required bindings.

fhir.resources 8.x has no plain R4 package; R4B is wire-compatible with R4 except for the
types R4B dropped or redefined (``R4_ONLY_TYPES``), which are checked against an R4 element
table instead.
"""

from ._bindings import REQUIRED_BINDINGS, binding_violations
from ._issues import Issue
from ._r4 import R4_ONLY_TYPES
from ._validation import R4B_ONLY_TYPES, is_r4_type, is_valid, resource_model, validate_resource

__all__ = [
    "R4B_ONLY_TYPES",
    "R4_ONLY_TYPES",
    "REQUIRED_BINDINGS",
    "Issue",
    "binding_violations",
    "is_r4_type",
    "is_valid",
    "resource_model",
    "validate_resource",
]
