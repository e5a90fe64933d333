"""hl7_fhir: HL7 v2 parsing and building, MLLP transport, HL7 v2 <-> FHIR R4 mapping.

A protocol library: it knows no database, tenant or web framework, so the platform
service (and anyone else) can build on it. Subpackages:

- :mod:`hl7_fhir.v2`: parse, read by path, build/edit, validate, acknowledge.
- :mod:`hl7_fhir.mllp`: MLLP framing, asyncio server and client.
- :mod:`hl7_fhir.errors`: the one error tree.
"""

from . import errors, v2
from .errors import (
    AckError,
    AckMismatchError,
    AckTimeoutError,
    ConnectionClosedError,
    FramingError,
    HL7FhirError,
    MappingError,
    MessageTooLargeError,
    ParseError,
    PathError,
)

__version__ = "0.1.0"

__all__ = [
    "AckError",
    "AckMismatchError",
    "AckTimeoutError",
    "ConnectionClosedError",
    "FramingError",
    "HL7FhirError",
    "MappingError",
    "MessageTooLargeError",
    "ParseError",
    "PathError",
    "__version__",
    "errors",
    "v2",
]
