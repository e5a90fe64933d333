"""One validation problem, shaped like an OperationOutcome.issue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Issue", "IssueCode"]

IssueCode = Literal["structure", "required", "value", "code-invalid", "invalid", "not-supported"]


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem: ``expression`` is a FHIRPath location such as ``Patient.gender``."""

    severity: Literal["error", "warning"]
    code: IssueCode
    expression: str
    diagnostics: str

    def to_dict(self) -> dict[str, Any]:
        """As an OperationOutcome.issue element."""
        return {
            "severity": self.severity,
            "code": self.code,
            "expression": [self.expression],
            "diagnostics": self.diagnostics,
        }
