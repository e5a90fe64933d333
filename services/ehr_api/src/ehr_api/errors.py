"""Domain errors raised by services; one handler per base class turns them into HTTP.

Services never raise HTTPException: they raise these, and ``problems.py`` answers with
RFC 9457 problem JSON on /api and an OperationOutcome on /fhir.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "DomainError",
    "ForbiddenError",
    "GoneError",
    "InvalidError",
    "MethodNotAllowedError",
    "NotAcceptableError",
    "NotFoundError",
    "PreconditionFailedError",
    "TooManyEntriesError",
    "UnsupportedMediaTypeError",
]


class DomainError(Exception):
    """Base of the errors a service may raise on purpose."""

    status = 400
    title = "Bad request"
    fhir_code = "processing"

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra


class InvalidError(DomainError):
    """The request is well-formed but a value is not acceptable; ``field`` names it."""

    status = 422
    title = "Invalid value"
    fhir_code = "invalid"


class NotFoundError(DomainError):
    """Nothing there, or nothing the caller may know exists (never reveal other tenants)."""

    status = 404
    title = "Not found"
    fhir_code = "not-found"


class ConflictError(DomainError):
    """The change clashes with the current state (duplicate slug, stale version)."""

    status = 409
    title = "Conflict"
    fhir_code = "conflict"


class AuthenticationError(DomainError):
    """No usable credential: missing, malformed, expired or unknown."""

    status = 401
    title = "Unauthenticated"
    fhir_code = "login"


class ForbiddenError(DomainError):
    """A known caller without the permission (or with a suspended organisation)."""

    status = 403
    title = "Forbidden"
    fhir_code = "forbidden"


class BadRequestError(DomainError):
    """Malformed request (bad id, resourceType mismatch, bad search value): 400."""

    status = 400
    title = "Bad request"
    fhir_code = "invalid"


class GoneError(DomainError):
    """The resource existed and was deleted: 410 (a read must not pretend it never was)."""

    status = 410
    title = "Gone"
    fhir_code = "deleted"


class MethodNotAllowedError(DomainError):
    """The interaction exists but this server is configured not to allow it here."""

    status = 405
    title = "Method not allowed"
    fhir_code = "not-supported"


class NotAcceptableError(DomainError):
    """The client accepts only formats we do not produce (XML): 406."""

    status = 406
    title = "Not acceptable"
    fhir_code = "not-supported"


class UnsupportedMediaTypeError(DomainError):
    """A PATCH body in a format we do not apply (only JSON Patch): 415."""

    status = 415
    title = "Unsupported media type"
    fhir_code = "not-supported"


class TooManyEntriesError(DomainError):
    """More than `MAX_ENTRIES` entries: 413."""

    status = 413
    title = "Payload too large"
    fhir_code = "too-costly"


class PreconditionFailedError(DomainError):
    """If-Match names a version that is not current, or If-None-Exist matched several."""

    status = 412
    title = "Precondition failed"
    fhir_code = "conflict"
