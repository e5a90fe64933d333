"""AuditEvent: a read-only FHIR R4 view of the caller's organisation's audit log.

Each `audit_logs` row is one AuditEvent (id = the row id): type `rest`, the REST
interaction as subtype, action C/R/U/D/E, `recorded` = when the request started,
outcome 0/4/8/12 from the HTTP status, the caller as the requesting agent, this server
as the source, and as entities the resources the request touched (what `annotate()`
recorded) plus the request itself. Rows are never stored as FHIR resources: they are
mapped on the way out, so the hash chain stays the only record.

Every query filters on `org_id` (row-level security adds the same on PostgreSQL), and
paging cursors are bound to the organisation (`paging.py`).
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from hl7_fhir.fhir import is_r4_type
from sqlalchemy import ColumnElement, String, and_, cast, exists, false, func, literal, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from ehr_api.audit.models import AuditLog
from ehr_api.errors import BadRequestError, NotFoundError
from ehr_api.fhir_store.paging import decode_cursor, encode_cursor, parse_count

__all__ = [
    "DEFAULT_COUNT",
    "MAX_COUNT",
    "AuditEventPage",
    "action_code",
    "get",
    "outcome_code",
    "search",
    "to_resource",
]

DEFAULT_COUNT = 20
#: A page is capped lower than other searches: each read is audited with the ids it
#: returned, so the row describing a read stays small.
MAX_COUNT = 100
_KIND = "search:AuditEvent"
_FHIR = "/fhir/R4"
_EVENT_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
_INTERACTION_SYSTEM = "http://hl7.org/fhir/restful-interaction"
_ACTION_SYSTEM = "urn:ehr-platform:audit-action"
_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_SOURCE_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
    "code": "3",
    "display": "Web Server",
}
_ACTOR_SYSTEMS = {
    "user": "urn:ehr-platform:subject",
    "api_key": "urn:ehr-platform:api-key",
    "system": "urn:ehr-platform:system",
}
#: (method, route template under /fhir/R4) -> (restful interaction, AuditEvent.action).
#: The audit row's action is exactly "METHOD /fhir/R4<template>" for these routes.
FHIR_INTERACTIONS: dict[tuple[str, str], tuple[str, str]] = {
    ("GET", "/metadata"): ("capabilities", "E"),
    ("POST", "/{resource_type}"): ("create", "C"),
    ("GET", "/{resource_type}"): ("search-type", "E"),
    ("POST", "/{resource_type}/_search"): ("search-type", "E"),
    ("GET", "/{resource_type}/_history"): ("history-type", "R"),
    ("GET", "/{resource_type}/{resource_id}"): ("read", "R"),
    ("GET", "/{resource_type}/{resource_id}/_history"): ("history-instance", "R"),
    ("GET", "/{resource_type}/{resource_id}/_history/{version}"): ("vread", "R"),
    ("PUT", "/{resource_type}"): ("update", "U"),
    ("PUT", "/{resource_type}/{resource_id}"): ("update", "U"),
    ("PATCH", "/{resource_type}/{resource_id}"): ("patch", "U"),
    ("DELETE", "/{resource_type}"): ("delete", "D"),
    ("DELETE", "/{resource_type}/{resource_id}"): ("delete", "D"),
    ("POST", "/{resource_type}/$validate"): ("operation", "E"),
    ("POST", "/{resource_type}/{resource_id}/$validate"): ("operation", "E"),
}
#: AuditEvent's own routes name the type and the id literally.
_AUDIT_EVENT_TEMPLATES = {"/AuditEvent": "/{resource_type}", "/AuditEvent/{event_id}":
                          "/{resource_type}/{resource_id}", "/AuditEvent/_search":
                          "/{resource_type}/_search"}  # fmt: skip
#: Actions recorded for other routes: by HTTP method; domain actions are E (execute).
_METHOD_ACTIONS = {"GET": "R", "HEAD": "R", "POST": "C", "PUT": "U", "PATCH": "U", "DELETE": "D"}
ACTION_CODES = ("C", "R", "U", "D", "E")
OUTCOME_CODES = ("0", "4", "8", "12")
_DAY = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
_PREFIXES = ("eq", "ge", "gt", "le", "lt")


def _recorded_actions() -> dict[str, tuple[str, str]]:
    """Every audit action string of a FHIR route -> (interaction, action code)."""
    found = {
        f"{method} {_FHIR}{path}": value for (method, path), value in FHIR_INTERACTIONS.items()
    }
    for literal_path, generic in _AUDIT_EVENT_TEMPLATES.items():
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            if (method, generic) in FHIR_INTERACTIONS:
                found[f"{method} {_FHIR}{literal_path}"] = FHIR_INTERACTIONS[(method, generic)]
    return found


_RECORDED = _recorded_actions()


def interaction(action: str) -> str | None:
    """The FHIR restful interaction of an audit row's action (None: not a FHIR route)."""
    known = _RECORDED.get(action)
    return known[0] if known else None


def action_code(action: str) -> str:
    """AuditEvent.action (C/R/U/D/E) of an audit row's action."""
    known = _RECORDED.get(action)
    if known:
        return known[1]
    method = action.split(" ", 1)[0] if " " in action else ""
    return _METHOD_ACTIONS.get(method, "E")


def outcome_code(status: int | None) -> str:
    """AuditEvent.outcome: 0 below 400, 4 for 4xx, 8 for 5xx, 12 when no response was sent
    (the request died or the client went away before the status was known)."""
    if status is None:
        return "12"
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def _reference(kind: str | None, item: str) -> dict[str, Any]:
    if "/" in item and is_r4_type(item.split("/", 1)[0]):  # already Type/id ($everything)
        return {"reference": item}
    if kind and is_r4_type(kind):
        return {"reference": f"{kind}/{item}"}
    return {"identifier": {"system": f"urn:ehr-platform:{kind or 'resource'}", "value": item}}


def _request_entity(row: AuditLog) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "type": {"system": _ENTITY_TYPE, "code": "2", "display": "System Object"},
        "name": row.action,
    }
    details = row.details or {}
    if isinstance(details.get("path"), str):
        entity["description"] = details["path"]
    query = details.get("query")
    if isinstance(query, dict) and query:
        entity["query"] = base64.b64encode(urlencode(query).encode()).decode()
    extra = [("request_id", row.request_id), ("user_agent", row.user_agent)]
    extra.append(("status", str(row.status_code) if row.status_code is not None else None))
    entity["detail"] = [{"type": name, "valueString": value} for name, value in extra if value]
    return entity


def _agent(row: AuditLog) -> dict[str, Any]:
    kind = getattr(row.actor_type, "value", str(row.actor_type))
    agent: dict[str, Any] = {
        "type": {"coding": [{"system": "urn:ehr-platform:actor-type", "code": kind}]},
        "who": {
            "identifier": {"system": _ACTOR_SYSTEMS.get(kind, _ACTOR_SYSTEMS["user"]),
                           "value": row.actor},
            "display": row.actor,
        },
        "requestor": True,
    }  # fmt: skip
    roles = (row.details or {}).get("roles")
    if isinstance(roles, list) and roles:
        agent["role"] = [{"text": str(role)} for role in roles]
    if row.client_ip:
        agent["network"] = {"address": row.client_ip, "type": "2"}
    return agent


def to_resource(row: AuditLog, *, base: str) -> dict[str, Any]:
    """The R4 AuditEvent of one audit row (`base`: this server's FHIR base URL)."""
    recorded = row.occurred_at.astimezone(UTC).isoformat()
    subtype = [{"system": _ACTION_SYSTEM, "code": row.action}]
    fhir_interaction = interaction(row.action)
    if fhir_interaction:
        subtype.insert(0, {"system": _INTERACTION_SYSTEM, "code": fhir_interaction})
    entities = [
        {
            "what": _reference(row.resource_type, item),
            "type": {"system": _ENTITY_TYPE, "code": "2", "display": "System Object"},
        }
        for item in row.resource_ids or ()
    ]
    return {
        "resourceType": "AuditEvent",
        "id": str(row.id),
        "meta": {"versionId": "1", "lastUpdated": recorded},
        "type": _EVENT_TYPE,
        "subtype": subtype,
        "action": action_code(row.action),
        "recorded": recorded,
        "outcome": outcome_code(row.status_code),
        "outcomeDesc": f"{row.outcome} (HTTP {row.status_code or 'no response'})",
        "agent": [_agent(row)],
        "source": {
            "site": base,
            "observer": {"display": "ehr_api FHIR server", "identifier": {"value": base}},
            "type": [_SOURCE_TYPE],
        },
        "entity": [*entities, _request_entity(row)],
    }


async def get(db: AsyncSession, *, org_id: uuid.UUID, event_id: str) -> AuditLog:
    """The audit row `event_id` of this organisation.

    Raises:
        NotFoundError: not a row id, or not a row of this organisation.
    """
    row = None
    if event_id.isdigit() and len(event_id) < 19:
        query = select(AuditLog).where(AuditLog.org_id == org_id, AuditLog.id == int(event_id))
        row = (await db.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"AuditEvent/{event_id} is not known")
    return row


@dataclass(frozen=True, slots=True)
class AuditEventPage:
    total: int
    rows: list[AuditLog]
    #: The parameters understood, normalised (the self link); `next_cursor` for the next page.
    applied: list[tuple[str, str]]
    next_cursor: str | None


def _instant_range(name: str, value: str) -> tuple[datetime, datetime]:
    """[start, end) that a date of day or second precision denotes (day: UTC)."""
    if _DAY.fullmatch(value):
        parts = [int(part) for part in value.split("-")]
        year, month, day = [*parts, 1, 1][:3]
        try:
            start = datetime(year, month, day, tzinfo=UTC)
        except ValueError as exc:
            raise BadRequestError(f"{name}: {value!r} is not a date", field=name) from exc
        if len(parts) == 3:
            return start, start + timedelta(days=1)
        if len(parts) == 2:
            return start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        return start, datetime(year + 1, 1, 1, tzinfo=UTC)
    try:
        start = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        start = None
    if start is None or start.tzinfo is None or "T" not in value:
        raise BadRequestError(
            f"{name}: {value!r} must be a date (YYYY-MM-DD) or an instant with seconds and a"
            " time zone",
            field=name,
        )
    start = start.astimezone(UTC)
    if start.microsecond:  # fractional seconds: that exact instant
        return start, start + timedelta(microseconds=1)
    return start, start + timedelta(seconds=1)


def _date_clause(name: str, value: str) -> ColumnElement[bool]:
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    start, end = _instant_range(name, value[2:] if value[:2] in _PREFIXES else value)
    column = AuditLog.occurred_at
    return {
        "eq": and_(column >= start, column < end),
        "ge": column >= start,
        "gt": column >= end,
        "le": column < end,
        "lt": column < start,
    }[prefix]


def _has_resource_id(db: AsyncSession, resource_id: str) -> ColumnElement[bool]:
    if db.get_bind().dialect.name == "postgresql":
        return cast(AuditLog.resource_ids, JSONB).contains(literal([resource_id], JSONB))
    entries = func.json_each(AuditLog.resource_ids).table_valued("value")
    return exists(
        select(1).select_from(entries).where(cast(entries.c.value, String) == resource_id)
    )


def _entity_clause(db: AsyncSession, value: str) -> ColumnElement[bool]:
    parts = value.rstrip("/").split("/")
    if len(parts) < 2 or not parts[-2] or not parts[-1]:
        raise BadRequestError(f"entity must be a Type/id reference, got {value!r}", field="entity")
    kind, item = parts[-2], parts[-1]
    return and_(AuditLog.resource_type == kind, _has_resource_id(db, item))


def _action_clause(code: str) -> ColumnElement[bool]:
    """Rows whose `action_code()` is `code`, as SQL (same table, same fallbacks)."""
    if code not in ACTION_CODES:
        raise BadRequestError(f"action must be one of {', '.join(ACTION_CODES)}", field="action")
    known = [action for action, (_, value) in _RECORDED.items() if value == code]
    clause: ColumnElement[bool] = AuditLog.action.in_(known) if known else false()
    methods = [method for method, value in _METHOD_ACTIONS.items() if value == code]
    unknown = AuditLog.action.not_in(list(_RECORDED))
    for method in methods:
        clause = or_(clause, and_(unknown, AuditLog.action.startswith(f"{method} ")))
    if code == "E":
        any_method = or_(*(AuditLog.action.startswith(f"{m} ") for m in _METHOD_ACTIONS))
        clause = or_(clause, and_(unknown, ~any_method))
    return clause


def _outcome_clause(code: str) -> ColumnElement[bool]:
    status = AuditLog.status_code
    clauses: dict[str, ColumnElement[bool]] = {
        "0": status < 400,
        "4": and_(status >= 400, status < 500),
        "8": status >= 500,
        "12": status.is_(None),
    }
    if code not in clauses:
        raise BadRequestError(f"outcome must be one of {', '.join(OUTCOME_CODES)}", field="outcome")
    return clauses[code]


def _any_of(values: str, clause: Any) -> ColumnElement[bool]:
    """Comma-separated values are OR-ed (FHIR search semantics)."""
    return or_(*(clause(value) for value in values.split(",") if value))


async def search(
    db: AsyncSession, *, org_id: uuid.UUID, query: Sequence[tuple[str, str]]
) -> AuditEventPage:
    """AuditEvents of this organisation, newest first, filtered by the FHIR parameters
    `_id`, `date` (eq/ge/gt/le/lt), `agent`, `entity`, `action`, `outcome`; `_count` and
    `_cursor` page. Other parameters are ignored (and left out of the self link).

    Raises:
        BadRequestError: a malformed value, or a cursor of another organisation or listing.
    """
    where: list[ColumnElement[bool]] = [AuditLog.org_id == org_id]
    applied: list[tuple[str, str]] = []
    limit, before = DEFAULT_COUNT, None
    for name, value in query:
        if name == "_id":
            ids = [int(item) for item in value.split(",") if item.isdigit() and len(item) < 19]
            where.append(AuditLog.id.in_(ids))
        elif name == "date":
            where.append(_date_clause(name, value))
        elif name == "agent":
            where.append(_any_of(value, lambda item: AuditLog.actor == item))
        elif name == "entity":
            where.append(_any_of(value, lambda item: _entity_clause(db, item)))
        elif name == "action":
            where.append(_any_of(value, _action_clause))
        elif name == "outcome":
            where.append(_any_of(value, _outcome_clause))
        elif name == "_count":
            limit = min(parse_count(value), MAX_COUNT)
        elif name == "_cursor":
            position = decode_cursor(value, org_id=org_id, kind=_KIND)
            if not isinstance(position.get("before"), int):
                raise BadRequestError("the paging cursor is not valid", field="_cursor")
            before = position["before"]
            continue  # not part of the self link's criteria
        else:
            continue
        applied.append((name, value))
    total = await db.scalar(select(func.count()).select_from(AuditLog).where(*where)) or 0
    if before is not None:
        where.append(AuditLog.id < before)
    rows: list[AuditLog] = []
    if limit:
        found = await db.execute(
            select(AuditLog).where(*where).order_by(AuditLog.id.desc()).limit(limit + 1)
        )
        rows = [*found.scalars()]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(org_id=org_id, kind=_KIND, position={"before": rows[-1].id})
    return AuditEventPage(total, rows, applied, next_cursor)
