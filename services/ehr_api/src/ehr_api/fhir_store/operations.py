"""Writes and checks beyond plain CRUD: JSON Patch, conditional update and delete,
`$validate`.

Same rules as `service`: every change goes through `service.write` (version, history,
index, event in one transaction) and every lookup is confined to the caller's organisation.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from hl7_fhir.fhir import validate_resource
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from ehr_api.errors import InvalidError, NotFoundError
from ehr_api.fhir_store import bundle_references, repository, service
from ehr_api.fhir_store.fhirpath_patch import apply_fhirpath_patch, is_fhirpath_patch
from ehr_api.fhir_store.json_patch import PatchFailedError, PatchSyntaxError, apply_patch
from ehr_api.fhir_store.models import FhirResource
from ehr_api.fhir_store.service import BadRequestError, PreconditionFailedError

__all__ = [
    "VALIDATE_MODES",
    "conditional_delete",
    "conditional_patch",
    "conditional_update",
    "patch",
    "validate_options",
    "validation_issues",
]


def _issue(severity: str, code: str, expression: str, text: str) -> dict[str, Any]:
    return {"severity": severity, "code": code, "expression": [expression], "diagnostics": text}


#: `$validate` modes (R4 Resource-validate): what the content is checked as.
VALIDATE_MODES = frozenset({"create", "update", "delete", "profile"})


def validate_options(body: Any, query: Sequence[tuple[str, str]]) -> tuple[str | None, list[str]]:
    """`$validate`'s `mode` and `profile`s, from the Parameters body or the URL.

    Raises:
        BadRequestError: a mode R4 does not define.
    """
    mode: str | None = None
    profiles: list[str] = []
    named: list[tuple[str, Any]] = list(query)
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        for item in body.get("parameter") or ():
            if isinstance(item, dict) and item.get("name") in ("mode", "profile"):
                value = next((v for k, v in item.items() if k.startswith("value")), None)
                named.append((item["name"], value))
    for name, value in named:
        if name == "mode":
            if value not in VALIDATE_MODES:
                modes = ", ".join(sorted(VALIDATE_MODES))
                raise BadRequestError(f"$validate mode is one of {modes}, not {value!r}",
                                      field="mode")  # fmt: skip
            mode = value
        elif name == "profile" and isinstance(value, str):
            profiles.append(value)
    return mode, profiles


def validation_issues(
    resource_type: str,
    body: Any,
    *,
    resource_id: str | None = None,
    mode: str | None = None,
    profiles: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The OperationOutcome issues of `body` as a `resource_type` (empty when valid).

    `body` is the resource itself or a Parameters whose `resource` parameter holds it.
    With `resource_id` (instance `$validate`) the resource's id must match it. `mode`
    `update` needs an id, `create` notes that the server assigns one, `delete` checks no
    content (nothing here refuses a delete). Profiles are not checked, and say so.
    """
    notes = [
        _issue("warning", "not-supported", "Parameters.parameter",
               f"profile {profile!r} is not checked: only the R4 definition of"
               f" {resource_type} and its required bindings are")
        for profile in profiles
    ]  # fmt: skip
    if mode == "delete":
        return notes
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        params = body.get("parameter")
        found = [
            item.get("resource")
            for item in (params if isinstance(params, list) else [])
            if isinstance(item, dict) and item.get("name") == "resource"
        ]
        if not found:
            text = "the Parameters have no 'resource' parameter"
            return [_issue("error", "required", "Parameters.parameter", text), *notes]
        body = found[0]
    if not isinstance(body, dict):
        return [_issue("error", "structure", resource_type, "the resource must be a JSON object")]
    if body.get("resourceType") != resource_type:
        text = f"resourceType must be {resource_type!r}, got {body.get('resourceType')!r}"
        return [_issue("error", "invalid", f"{resource_type}.resourceType", text)]
    issues = [issue.to_dict() for issue in validate_resource(dict(body))]
    if resource_id is not None and body.get("id") not in (None, resource_id):
        text = f"the resource's id {body.get('id')!r} is not {resource_id!r}"
        issues.append(_issue("error", "invalid", f"{resource_type}.id", text))
    if mode == "update" and not body.get("id") and resource_id is None:
        text = "an update needs the resource's id"
        issues.append(_issue("error", "required", f"{resource_type}.id", text))
    if mode == "create" and body.get("id"):
        text = "the server assigns the id of a created resource: this one is ignored"
        issues.append(_issue("information", "informational", f"{resource_type}.id", text))
    return [*issues, *notes]


async def patch(
    db: AsyncSession | AsyncConnection,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    resource_id: str,
    operations: Any,
    if_match: int | None = None,
) -> FhirResource:
    """Apply a JSON Patch (a list) or a FHIRPath Patch (a Parameters resource) to the
    current version and store the result as the next one.

    Raises:
        NotFoundError, GoneError: no live resource to patch.
        PreconditionFailedError: `if_match` is not the current version.
        BadRequestError: a malformed patch, or one that changes id or resourceType.
        InvalidError: an operation does not apply, or the result is not a valid resource.
    """
    row = await service.get(
        db, org_id=org_id, resource_type=resource_type, resource_id=resource_id, for_update=True
    )
    if if_match is not None and if_match != row.version_id:
        raise PreconditionFailedError(
            f"If-Match version {if_match} is not the current version ({row.version_id})"
        )
    kind = "FHIRPath Patch" if is_fhirpath_patch(operations) else "JSON Patch"
    try:
        if is_fhirpath_patch(operations):
            result: Any = apply_fhirpath_patch(row.content, operations)
        else:
            result = apply_patch(row.content, operations)
    except PatchSyntaxError as exc:
        raise BadRequestError(f"malformed {kind}: {exc}") from exc
    except PatchFailedError as exc:
        raise InvalidError(f"the {kind} does not apply: {exc}") from exc
    if not isinstance(result, dict) or result.get("id") != resource_id:
        raise BadRequestError("a patch may not change the resource's id", field="id")
    service.validate_body(resource_type, result)
    row.version_id += 1
    return await service.write(
        db, org_id=org_id, row=row, content=result, event_type="fhir.updated", existed=True
    )


async def conditional_update(
    db: AsyncSession | AsyncConnection,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    query: Sequence[tuple[str, str]],
    body: Mapping[str, Any],
    if_match: int | None = None,
    allow_create: bool = True,
) -> tuple[FhirResource, bool]:
    """PUT with search parameters, within this organisation; (row, created).

    No match: create (under the body's id if it has one and `allow_create` permits
    client-chosen ids, else a server-assigned id); one match: update it (a body id must
    be that match's); several: 412.

    Raises:
        BadRequestError: no search criteria, or a body id that is not the match's.
        PreconditionFailedError: several matches, or a stale `if_match`.
        InvalidError, NotFoundError.
    """
    service.check_type(resource_type)
    criteria = [(name, value) for name, value in query if name != "_count"]
    found = await service.search(
        db, org_id=org_id, resource_type=resource_type, query=[*criteria, ("_count", "2")]
    )
    if not service.has_criteria(found.applied):
        raise BadRequestError("a conditional update needs search criteria the server knows")
    if found.total > 1:
        raise PreconditionFailedError(f"the conditional update matched {found.total} resources")
    body_id = body.get("id")
    if found.total == 1:
        match = found.resources[0]
        if body_id not in (None, match.id):
            raise BadRequestError(
                f"the resource's id {body_id!r} is not the matching resource's", field="id"
            )
        return await service.update(
            db,
            org_id=org_id,
            resource_type=resource_type,
            resource_id=match.id,
            body={**body, "id": match.id},
            if_match=if_match,
        )
    if isinstance(body_id, str):
        existing = await repository.get_current(
            db, org_id=org_id, resource_type=resource_type, resource_id=body_id
        )
        if existing is not None and not existing.deleted:
            raise BadRequestError(
                f"{resource_type}/{body_id} exists but does not match the criteria", field="id"
            )
        return await service.update(
            db,
            org_id=org_id,
            resource_type=resource_type,
            resource_id=body_id,
            body=body,
            if_match=if_match,
            allow_create=allow_create,
        )
    return await service.create(db, org_id=org_id, resource_type=resource_type, body=body)


async def conditional_delete(
    db: AsyncSession | AsyncConnection,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    query: Sequence[tuple[str, str]],
) -> FhirResource | None:
    """DELETE with search parameters, within this organisation (FHIR's "single" mode).

    No match: nothing to do (None); one match: its tombstone version; several: 412.
    Criteria are strict: an unknown parameter is a 400, never ignored into a wider match.

    Raises:
        BadRequestError: no search criteria, or an unknown or malformed parameter.
        PreconditionFailedError: several matches.
    """
    service.check_type(resource_type)
    match = await bundle_references.match_one(
        db, org_id=org_id, base=None, resource_type=resource_type, query=list(query),
        what="the conditional delete",
    )  # fmt: skip
    if match is None:
        return None
    return await service.delete(
        db, org_id=org_id, resource_type=resource_type, resource_id=match.id
    )


async def conditional_patch(
    db: AsyncSession | AsyncConnection,
    *,
    org_id: uuid.UUID,
    resource_type: str,
    query: Sequence[tuple[str, str]],
    operations: Any,
    if_match: int | None = None,
) -> FhirResource:
    """PATCH with search parameters, within this organisation: one match is patched.

    Raises:
        NotFoundError: no match (there is nothing to patch).
        PreconditionFailedError: several matches, or a stale `if_match`.
        BadRequestError, InvalidError: as `patch`, or no or unknown criteria.
    """
    service.check_type(resource_type)
    match = await bundle_references.match_one(
        db, org_id=org_id, base=None, resource_type=resource_type, query=list(query),
        what="the conditional patch",
    )  # fmt: skip
    if match is None:
        raise NotFoundError(f"the conditional patch matched no {resource_type}")
    return await patch(
        db, org_id=org_id, resource_type=resource_type, resource_id=match.id,
        operations=operations, if_match=if_match,
    )  # fmt: skip
