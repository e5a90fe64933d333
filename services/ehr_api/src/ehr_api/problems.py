"""Errors in the caller's language: RFC 9457 problem JSON on /api, OperationOutcome on /fhir.

One handler per error family: domain errors from services, request validation errors
from FastAPI, HTTP errors from Starlette (404 for unknown routes, 405), and anything
unexpected (500, logged with the request id, never the exception text to the client).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ehr_api.errors import DomainError

__all__ = ["install_error_handlers", "operation_outcome", "problem"]

logger = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
FHIR_JSON = "application/fhir+json"
_FHIR_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
               406: "not-supported", 409: "conflict", 410: "deleted", 412: "conflict", 415: "not-supported",
               422: "processable", 429: "throttled"}  # fmt: skip


def _is_fhir(request: Request) -> bool:
    return request.url.path.startswith("/fhir")


def problem(status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """An RFC 9457 problem document (``type`` is about:blank: the status says it all)."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def operation_outcome(
    code: str, diagnostics: str, *, severity: str = "error", expression: list[str] | None = None
) -> dict[str, Any]:
    """A one-issue OperationOutcome."""
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        issue["expression"] = expression
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def _respond(
    request: Request, status: int, title: str, detail: str, *, field: str | None = None,
    errors: list[dict[str, Any]] | None = None, fhir_code: str | None = None,
    issues: list[dict[str, Any]] | None = None,
) -> JSONResponse:  # fmt: skip
    """`issues` (OperationOutcome issues) replace the one-issue outcome on /fhir."""
    request_id = getattr(request.state, "request_id", None)
    if _is_fhir(request) and issues:
        body = {"resourceType": "OperationOutcome", "issue": issues}
        return JSONResponse(body, status_code=status, media_type=FHIR_JSON)
    if _is_fhir(request):
        outcome = operation_outcome(
            fhir_code or _FHIR_CODES.get(status, "processing"),
            detail,
            expression=[field] if field else None,
        )
        return JSONResponse(outcome, status_code=status, media_type=FHIR_JSON)
    body = problem(status, title, detail, field=field, errors=errors, request_id=request_id)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> JSONResponse:
        errors = exc.extra.get("errors")
        return _respond(
            request,
            exc.status,
            exc.title,
            exc.detail,
            field=exc.field,
            errors=errors if isinstance(errors, list) else None,
            fhir_code=exc.fhir_code,
            issues=issues if isinstance(issues := exc.extra.get("issues"), list) else None,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "field": ".".join(str(p) for p in error.get("loc", ()) if p != "body"),
                "message": error.get("msg", ""),
            }
            for error in exc.errors()
        ]
        first = errors[0] if errors else {"field": None, "message": "invalid request"}
        detail = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return _respond(
            request, 422, "Invalid request", detail, field=first["field"] or None, errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        response = _respond(request, exc.status_code, title, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception(
            "unhandled error on %s %s (request %s)",
            request.method,
            request.url.path,
            getattr(request.state, "request_id", "-"),
        )
        return _respond(request, 500, "Internal server error", "an unexpected error occurred")
