"""The library's public surface and its dependency fence."""

from __future__ import annotations

import json
import subprocess
import sys

import hl7_fhir
from hl7_fhir import errors, mllp, v2


def test_v2_exports() -> None:
    for name in ("parse", "parse_batch", "Message", "build_ack", "new_message", "ErrorDetail"):
        assert name in v2.__all__, name
        assert getattr(v2, name) is not None


def test_mllp_exports() -> None:
    for name in ("MLLPServer", "MLLPClient"):
        assert name in mllp.__all__, name


def test_every_exported_name_exists() -> None:
    for module in (hl7_fhir, v2, mllp, errors):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_error_tree() -> None:
    assert issubclass(errors.ParseError, errors.HL7FhirError)
    assert issubclass(errors.MessageTooLargeError, errors.FramingError)
    assert issubclass(errors.AckTimeoutError, errors.AckError)
    assert issubclass(errors.AckMismatchError, errors.AckError)
    assert issubclass(errors.MappingError, errors.HL7FhirError)


def test_library_imports_no_framework_or_hl7apy_on_the_hot_path() -> None:
    code = (
        "import sys, json, hl7_fhir, hl7_fhir.v2, hl7_fhir.mllp;"
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = set(json.loads(out.stdout))
    forbidden = {
        "fastapi",
        "sqlalchemy",
        "dramatiq",
        "redis",
        "starlette",
        "socketio",
        "casbin",
        "hl7apy",
    }
    assert not (loaded & forbidden), loaded & forbidden
