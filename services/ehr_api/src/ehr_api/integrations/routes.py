"""`/api/admin/integrations`: the caller's organisation's integrations.

Thin: each route declares its permission, calls one service function and returns the
result. The organisation comes from the caller's credential (the org session), never from
the URL, so another tenant's integration ids simply 404.

The app's lifespan provides `app.state.keyring` (read by `KeyringDep`) and
`app.state.orchestrator` (`Orchestrator.default()`, closed at shutdown; read by
`Handlers`).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status

from ehr_api.deps import KeyringDep, OrgReadSession, OrgSession, require
from ehr_api.integrations import service as integrations
from ehr_api.integrations.orchestrator import Orchestrator, TestResult
from ehr_api.integrations.schemas import (
    IntegrationCreate,
    IntegrationList,
    IntegrationRead,
    IntegrationUpdate,
    OperationRequest,
    OperationResult,
    TestResultRead,
    VendorSlug,
)

__all__ = ["Handlers", "get_orchestrator", "router"]


def get_orchestrator(request: Request) -> Orchestrator:
    """The orchestrator the lifespan put in `app.state.orchestrator`."""
    orchestrator: Orchestrator = request.app.state.orchestrator
    return orchestrator


Handlers = Annotated[Orchestrator, Depends(get_orchestrator)]

router = APIRouter(prefix="/api/admin/integrations", tags=["integrations"])


@router.post(
    "",
    response_model=IntegrationRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=[require("integrations", "write")],
)
async def create_integration(body: IntegrationCreate, db: OrgSession, keyring: KeyringDep) -> Any:
    return await integrations.create(db, data=body, keyring=keyring)


@router.get("", response_model=IntegrationList, dependencies=[require("integrations", "read")])
async def list_integrations(
    db: OrgReadSession,
    limit: Annotated[int, Query(ge=1, le=integrations.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    vendor: VendorSlug | None = None,
) -> IntegrationList:
    return await integrations.list(db, limit=limit, offset=offset, vendor=vendor)


@router.get(
    "/{integration_id}",
    response_model=IntegrationRead,
    dependencies=[require("integrations", "read")],
)
async def get_integration(integration_id: uuid.UUID, db: OrgReadSession) -> Any:
    return await integrations.get(db, integration_id=integration_id)


@router.patch(
    "/{integration_id}",
    response_model=IntegrationRead,
    dependencies=[require("integrations", "write")],
)
async def update_integration(
    integration_id: uuid.UUID,
    body: IntegrationUpdate,
    db: OrgSession,
    keyring: KeyringDep,
    orchestrator: Handlers,
) -> Any:
    return await integrations.update(
        db, integration_id=integration_id, data=body, keyring=keyring, orchestrator=orchestrator
    )


@router.delete(
    "/{integration_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    dependencies=[require("integrations", "delete")],
)
async def delete_integration(
    integration_id: uuid.UUID,
    db: OrgSession,
    orchestrator: Handlers,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> None:
    await integrations.delete(
        db, integration_id=integration_id, version=version, orchestrator=orchestrator
    )


@router.post(
    "/{integration_id}/test",
    response_model=TestResultRead,
    dependencies=[require("integrations", "test")],
)
async def test_integration(
    integration_id: uuid.UUID, db: OrgSession, keyring: KeyringDep, orchestrator: Handlers
) -> TestResult:
    return await integrations.test(
        db, integration_id=integration_id, keyring=keyring, orchestrator=orchestrator
    )


@router.post(
    "/{integration_id}/execute",
    response_model=OperationResult,
    dependencies=[require("integrations", "execute")],
)
async def execute_operation(
    integration_id: uuid.UUID,
    body: OperationRequest,
    db: OrgSession,
    keyring: KeyringDep,
    orchestrator: Handlers,
) -> OperationResult:
    result = await integrations.execute(
        db,
        integration_id=integration_id,
        operation=body.operation,
        params=body.params,
        keyring=keyring,
        orchestrator=orchestrator,
    )
    return OperationResult(operation=body.operation, result=result)
