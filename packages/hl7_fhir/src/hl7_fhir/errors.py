"""One error tree for the whole library.

Everything the library raises on purpose derives from :class:`HL7FhirError`, so a
caller can catch one class at its boundary and still tell the failures apart::

    HL7FhirError
    ├── ParseError            bytes/text that is not a usable HL7 v2 message
    ├── PathError             a malformed access path such as ``"PID-x"``
    ├── FramingError          MLLP bytes that break the block framing
    │   └── MessageTooLargeError
    ├── AckError              a peer answered with something other than AA/CA
    │   ├── AckMismatchError  the ACK's MSA-2 does not echo our MSH-10
    │   └── AckTimeoutError   no ACK in time
    ├── ConnectionClosedError the peer went away before answering
    └── MappingError          a message or resource that cannot be mapped

Lower-layer errors (``UnicodeDecodeError``, ``OSError``, hl7apy's exceptions) are
translated with ``raise ... from exc`` so the original stays in ``__cause__``.
"""

from __future__ import annotations

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
]


class HL7FhirError(Exception):
    """Base class of every error this library raises on purpose."""


class ParseError(HL7FhirError):
    """The input is not a usable HL7 v2 message.

    ``location`` names where it went wrong (``"MSH-2"``, ``"segment 3"``) when known.
    """

    def __init__(self, message: str, *, location: str | None = None) -> None:
        super().__init__(f"{location}: {message}" if location else message)
        self.location = location


class PathError(HL7FhirError, KeyError):
    """An access path such as ``"PID-3[2].1"`` is malformed."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class FramingError(HL7FhirError):
    """MLLP bytes that do not follow the block framing."""


class MessageTooLargeError(FramingError):
    """A frame grew past the configured maximum message size."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"message of at least {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class AckError(HL7FhirError):
    """The peer answered with a negative or unusable acknowledgement.

    ``ack`` is the parsed ACK message when there was one.
    """

    def __init__(self, message: str, *, ack: object | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.ack = ack
        self.code = code


class AckMismatchError(AckError):
    """The ACK's MSA-2 does not echo the control id (MSH-10) we sent."""


class AckTimeoutError(AckError):
    """No acknowledgement arrived within the timeout."""


class ConnectionClosedError(HL7FhirError):
    """The peer closed the connection before the exchange completed."""


class MappingError(HL7FhirError):
    """A message or resource that cannot be mapped; ``location`` names the field."""

    def __init__(self, message: str, *, location: str | None = None) -> None:
        super().__init__(f"{location}: {message}" if location else message)
        self.location = location
