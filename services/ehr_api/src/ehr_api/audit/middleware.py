"""Every request under /api and /fhir leaves an audit row, whatever its outcome.

A pure ASGI middleware rather than a dependency, because the row needs what only the end
of the request knows (the status code, including 401/403 from the auth dependencies, 404
for unknown routes and 500 for crashes) and because it must run even when no route (and
so no dependency) ran at all.

What goes into the row:

- actor and actor type: `request.state.principal` as the auth dependency left it, else
  `anonymous` (with the reason the credential was refused in `details.auth`);
- organisation: the principal's (org-less callers go to the platform chain);
- action: `request.state.audit_action` when the route set a domain action
  (`integration.test`), else `METHOD /route/{template}` (never the raw path, which would
  make every id its own action);
- resource: `request.state.audit_resource` when the route set it (`annotate()`), else the
  route's first literal segment and its path parameters;
- outcome (`success`, `denied` for 401/403, `failure` for other 4xx, `error` for 5xx,
  `aborted` when the client went away first), status code, client IP, user agent,
  request id, and the query parameters, redacted like every detail.

The row is appended after the response has been sent, in its own transaction (see
`writer.py`), so auditing adds no latency to the response itself while the request's
worker still finishes the write before it moves on. If the append fails the response has
already gone out; the failure is logged loudly (`ehr_api.audit` logger, ERROR) for
operations to alert on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import anyio
from fastapi import Request
from fastapi.routing import iter_route_contexts
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ehr_api.audit.models import ActorType
from ehr_api.audit.writer import AuditEntry, AuditWriter
from ehr_api.auth.principal import Principal
from ehr_api.db.base import utcnow

__all__ = ["AUDITED_PREFIXES", "AuditMiddleware", "annotate", "outcome_for"]

logger = logging.getLogger("ehr_api.audit")

AUDITED_PREFIXES: tuple[str, ...] = ("/api", "/fhir")
_ACTOR_TYPES = {"user": ActorType.USER, "api_key": ActorType.API_KEY, "system": ActorType.SYSTEM}
_SKIPPED_SEGMENTS = frozenset({"api", "admin", "fhir"})
_MAX_QUERY_ITEMS = 32


def annotate(
    request: Request,
    *,
    action: str | None = None,
    resource_type: str | None = None,
    resource_ids: Iterable[object] | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Tell the audit middleware what this request did, in domain terms.

    Routes call it when the defaults (route template, path parameters) say less than the
    route knows: the id of the row it created, the domain action, a count of results.
    """
    state = request.state
    if action is not None:
        state.audit_action = action
    if resource_type is not None or resource_ids is not None:
        state.audit_resource = (resource_type, [str(item) for item in resource_ids or ()])
    if details:
        state.audit_details = {**getattr(state, "audit_details", {}), **details}


def outcome_for(status: int | None) -> str:
    """The audit outcome of an HTTP status (None: the client disconnected first)."""
    if status is None:
        return "aborted"
    if status < 400:
        return "success"
    if status in (401, 403):
        return "denied"
    return "failure" if status < 500 else "error"


class AuditMiddleware:
    """Records one audit row per request under `prefixes` (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, prefixes: Sequence[str] = AUDITED_PREFIXES) -> None:
        self.app = app
        self.prefixes = tuple(prefixes)
        self._templates: dict[int, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._audited(scope["path"]):
            await self.app(scope, receive, send)
            return
        started = utcnow()
        status: int | None = None
        app = scope["app"]  # a mounted sub-app may replace scope["app"] on the way down

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except Exception:
            status = status or 500
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await self._record(app, scope, status, started)

    def _audited(self, path: str) -> bool:
        return any(path == prefix or path.startswith(prefix + "/") for prefix in self.prefixes)

    async def _record(self, app: Any, scope: Scope, status: int | None, started: datetime) -> None:
        writer: AuditWriter | None = getattr(app.state, "audit", None)
        if writer is None:
            logger.error("no audit writer (app lifespan not running): request not audited")
            return
        try:
            await writer.append(self._entry(app, scope, status, started))
        except Exception:
            logger.exception(
                "AUDIT ROW LOST for %s %s (request %s)",
                scope.get("method"),
                scope.get("path"),
                scope.get("state", {}).get("request_id", "-"),
            )

    def _entry(self, app: Any, scope: Scope, status: int | None, started: datetime) -> AuditEntry:
        state: dict[str, Any] = scope.get("state") or {}
        principal = state.get("principal")
        details: dict[str, Any] = {}
        if isinstance(principal, Principal):
            org_id, actor, actor_type = (
                principal.org_id,
                principal.actor,
                _ACTOR_TYPES[principal.kind],
            )
            if principal.roles:  # who could do what, as it stood at the time
                details["roles"] = sorted(principal.roles)
        else:
            org_id, actor, actor_type = None, "anonymous", ActorType.USER
            if "auth_failure" in state:
                details["auth"] = state["auth_failure"]
        template = self._template(app, scope)
        if template is None:
            details["path"] = scope["path"]
        query = _query(scope)
        if query:
            details["query"] = query
        details.update(state.get("audit_details") or {})
        resource_type, resource_ids = _resource(state, template, scope.get("path_params") or {})
        action = state.get("audit_action") or f"{scope['method']} {template or '(no route)'}"
        client = scope.get("client")
        return AuditEntry(
            org_id=org_id,
            actor=actor,
            actor_type=actor_type,
            action=action,
            outcome=outcome_for(status),
            status_code=status,
            resource_type=resource_type,
            resource_ids=tuple(resource_ids),
            client_ip=client[0] if client else None,
            user_agent=_header(scope, b"user-agent"),
            request_id=state.get("request_id"),
            details=details,
            occurred_at=started,
        )

    def _template(self, app: Any, scope: Scope) -> str | None:
        """The matched route's full path template, prefixes of included routers included."""
        route = scope.get("route")
        if route is None:
            return None
        fixed: str | None = getattr(route, "audit_template", None)  # the FHIR router's
        if fixed is not None:
            return fixed
        template = self._templates.get(id(route))
        if template is None:
            # Routes added after the last look (or first use): map them all again.
            self._templates = {
                id(context.original_route): context.path_format
                for context in iter_route_contexts(app.routes)
                if context.path_format
            }
            template = self._templates.get(id(route)) or getattr(route, "path", None)
        return template


def _resource(
    state: Mapping[str, Any], template: str | None, path_params: Mapping[str, Any]
) -> tuple[str | None, list[str]]:
    given = state.get("audit_resource")
    if isinstance(given, str):
        return given, []
    if isinstance(given, Mapping):
        return given.get("type"), [str(item) for item in given.get("ids") or ()]
    if isinstance(given, tuple | list) and len(given) == 2:
        kind, ids = given
        return kind, [str(item) for item in ids or ()]
    if template is None:
        return None, []
    ids = [str(value) for name, value in path_params.items() if name != "resource_type"]
    if "resource_type" in path_params:
        return str(path_params["resource_type"]), ids
    literals = [
        part
        for part in template.strip("/").split("/")
        if part and not part.startswith("{") and part not in _SKIPPED_SEGMENTS
    ]
    return (literals[0] if literals else None), ids


def _query(scope: Scope) -> dict[str, str] | None:
    raw = scope.get("query_string") or b""
    if not raw:
        return None
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)[:_MAX_QUERY_ITEMS]
    return {name[:64]: value[:256] for name, value in pairs}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None
