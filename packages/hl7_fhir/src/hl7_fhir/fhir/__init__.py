"""FHIR R4 helpers: validation with fhir.resources (R4B models) plus required bindings.

fhir.resources 8.x has no plain R4 package; R4B is wire-compatible with R4 for the
resources this project uses.
"""

from ._bindings import REQUIRED_BINDINGS, binding_violations
from ._validation import Issue, is_valid, resource_model, validate_resource

__all__ = [
    "REQUIRED_BINDINGS",
    "Issue",
    "binding_violations",
    "is_valid",
    "resource_model",
    "validate_resource",
]
