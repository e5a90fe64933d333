"""HTTP helpers shared by the FHIR route modules: body parsing, headers, and the one way a
stored version becomes a response (ETag, Last-Modified, Location, `Prefer: return=`).
"""

from __future__ import annotations

import json
import re
from email.utils import format_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ehr_api.audit.middleware import annotate
from ehr_api.fhir_store import service
from ehr_api.fhir_store.models import FhirResource, FhirResourceHistory
from ehr_api.problems import FHIR_JSON

__all__ = [
    "base_url",
    "if_match",
    "outcome",
    "read_json",
    "read_resource",
    "respond",
    "return_preference",
    "update_creates",
]


async def read_json(request: Request) -> Any:
    """The request body as JSON (400 when it is not)."""
    try:
        return json.loads(await request.body())
    except ValueError as exc:
        raise service.BadRequestError(f"the body is not JSON: {exc}") from exc


async def read_resource(request: Request) -> dict[str, Any]:
    """The request body as a JSON object (400 for anything else: it must be a resource)."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise service.BadRequestError("the body must be a JSON object (a FHIR resource)")
    return body


def update_creates(request: Request) -> bool:
    """The server's update-as-create switch (Settings.fhir_update_create)."""
    return bool(request.app.state.settings.fhir_update_create)


def base_url(request: Request) -> str:
    """The FHIR base of this server as the client addressed it."""
    return str(request.base_url).rstrip("/") + "/fhir/R4"


def outcome(severity: str, code: str, text: str) -> dict[str, Any]:
    """A one-issue OperationOutcome."""
    issue = {"severity": severity, "code": code, "diagnostics": text}
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def return_preference(prefer: str | None) -> str:
    """`representation` (default), `minimal` or `OperationOutcome` from a Prefer header."""
    for part in re.split("[;,]", prefer or ""):
        name, _, value = part.replace(" ", "").partition("=")
        if name == "return" and value in ("minimal", "representation", "OperationOutcome"):
            return value
    return "representation"


def respond(
    request: Request,
    row: FhirResource | FhirResourceHistory,
    *,
    status: int = 200,
    prefer: str | None = None,
    location: bool = False,
    content: dict[str, Any] | None = None,
) -> Response:
    """The resource with ETag / Last-Modified (and Location), honouring Prefer: return=.

    `return=minimal` gives an empty body, `return=OperationOutcome` an informational
    OperationOutcome, anything else (or nothing) the resource itself.
    """
    annotate(request, resource_type=row.resource_type, resource_ids=[row.id])
    headers = {
        "ETag": f'W/"{row.version_id}"',
        "Last-Modified": format_datetime(row.last_updated, usegmt=True),
    }
    if location:
        version = f"{row.resource_type}/{row.id}/_history/{row.version_id}"
        headers["Location"] = f"{base_url(request)}/{version}"
    wanted = return_preference(prefer)
    if wanted == "minimal":
        return Response(status_code=status, headers=headers)
    if wanted == "OperationOutcome":
        text = f"{row.resource_type}/{row.id} version {row.version_id} stored"
        body = outcome("information", "informational", text)
        return JSONResponse(body, status_code=status, headers=headers, media_type=FHIR_JSON)
    body = row.content if content is None else content
    return JSONResponse(body, status_code=status, headers=headers, media_type=FHIR_JSON)


def if_match(value: str | None) -> int | None:
    """The version an If-Match header names (`W/"3"` -> 3), None without the header."""
    if value is None:
        return None
    digits = value.strip().removeprefix("W/").strip('"')
    if not digits.isdigit():
        raise service.BadRequestError(f'If-Match must look like W/"1", got {value!r}')
    return int(digits)
