"""Integration credentials of the caller's organisation, and running them.

Every function takes an organisation session (`Database.org_session`): the organisation
is the session's, never a parameter, so a caller cannot even ask for another tenant's
integration; one that is not its own is simply not found (never "forbidden", which would
reveal that it exists).

Secrets are validated as plaintext, sealed per field (`secrets.py`) and from then on only
decrypted to validate an update or to build a handler client; what leaves this module is
a Read model with `has_<field>` flags. Updates are partial and apply only to the version
the caller read (optimistic locking); each one bumps the version, which is how the
orchestrator knows to rebuild the integration's client.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from ehr_api.db import current_org_id
from ehr_api.errors import ConflictError, NotFoundError
from ehr_api.integrations import repository
from ehr_api.integrations import secrets as sealed
from ehr_api.integrations.models import HL7_V2X, IntegrationCredential
from ehr_api.integrations.orchestrator import Integration, Orchestrator, TestResult
from ehr_api.integrations.schemas import (
    IntegrationCreate,
    IntegrationList,
    IntegrationRead,
    IntegrationUpdate,
)
from ehr_api.integrations.validation import spec_for, validate
from ehr_api.pagination import check_page

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from ehr_api.security.crypto import Keyring

__all__ = [
    "MAX_PAGE",
    "create",
    "delete",
    "execute",
    "get",
    "list",
    "load",
    "test",
    "to_read",
    "update",
]

logger = logging.getLogger(__name__)

MAX_PAGE = 200


async def create(db: AsyncSession, *, data: IntegrationCreate, keyring: Keyring) -> IntegrationRead:
    """Store a new integration for the session's organisation.

    Raises:
        InvalidError: a config or secret field is wrong (field named, e.g. `config.mllp_port`).
        ConflictError: the name, or the hl7-v2x inbound port, is already used in the
            organisation.
    """
    org_id = current_org_id(db)
    plain = {
        name: value.get_secret_value() for name, value in data.secrets.items() if value is not None
    }
    config, plain = validate(data.vendor, data.config, plain, provided=plain)
    if await repository.get_by_name(db, org_id=org_id, name=data.name) is not None:
        raise ConflictError(f"an integration named {data.name!r} exists", field="name")
    await _check_inbound_port(db, org_id=org_id, vendor=data.vendor, config=config)
    credential_id = uuid.uuid4()  # before sealing: the id is part of each secret's AAD
    credential = IntegrationCredential(
        id=credential_id,
        org_id=org_id,
        vendor=data.vendor,
        name=data.name,
        enabled=data.enabled,
        config=config.model_dump(mode="json"),
        secrets=sealed.seal_all(keyring, org_id=org_id, credential_id=credential_id, values=plain),
    )
    try:
        await repository.add(db, credential)
    except IntegrityError:
        raise ConflictError(f"an integration named {data.name!r} exists", field="name") from None
    logger.info("integration %s (%s) created", credential.id, credential.vendor)
    return to_read(credential)


async def list(  # the house verb for a collection read
    db: AsyncSession, *, limit: int = 50, offset: int = 0, vendor: str | None = None
) -> IntegrationList:
    """One page of the organisation's integrations, by name.

    Raises:
        InvalidError: `limit` outside 1..MAX_PAGE or a negative `offset`.
    """
    check_page(limit, offset, max_page=MAX_PAGE)
    org_id = current_org_id(db)
    rows = await repository.list_page(db, org_id=org_id, limit=limit, offset=offset, vendor=vendor)
    return IntegrationList(
        items=[to_read(row) for row in rows],
        total=await repository.count(db, org_id=org_id, vendor=vendor),
        limit=limit,
        offset=offset,
    )


async def get(db: AsyncSession, *, integration_id: uuid.UUID) -> IntegrationRead:
    """One integration of the organisation.

    Raises:
        NotFoundError: no such integration in this organisation.
    """
    return to_read(await _row(db, integration_id))


async def update(
    db: AsyncSession,
    *,
    integration_id: uuid.UUID,
    data: IntegrationUpdate,
    keyring: Keyring,
    orchestrator: Orchestrator | None = None,
) -> IntegrationRead:
    """Apply a partial update if `data.version` is still current (see `IntegrationUpdate`).

    Raises:
        NotFoundError: no such integration in this organisation.
        ConflictError: stale `version` (field ``version``), or a name/port clash.
        InvalidError: the merged result breaks a rule (field named).
    """
    row = await _row(db, integration_id)
    if data.version != row.version:
        raise ConflictError(
            f"integration changed since version {data.version} (now {row.version}): reload and retry",
            field="version",
        )
    config_patch: Mapping[str, Any] = data.config or {}
    config_raw = {
        key: value for key, value in {**row.config, **config_patch}.items() if value is not None
    }
    secrets_patch: Mapping[str, SecretStr | None] = data.secrets or {}
    stored = sealed.open_all(keyring, row)
    merged: dict[str, str | SecretStr] = {**stored}
    for name, value in secrets_patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    provided = [name for name, value in secrets_patch.items() if value is not None]
    config, plain = validate(row.vendor, config_raw, merged, provided=provided)
    # Every check before the first change: a query would autoflush a half-applied update.
    new_name = data.name if data.name is not None and data.name != row.name else None
    if new_name is not None and await repository.get_by_name(db, org_id=row.org_id, name=new_name):
        raise ConflictError(f"an integration named {new_name!r} exists", field="name")
    await _check_inbound_port(
        db, org_id=row.org_id, vendor=row.vendor, config=config, exclude=row.id
    )
    new_config = config.model_dump(mode="json")
    new_secrets = {
        name: row.secrets[name]
        if name in row.secrets and name not in provided and stored.get(name) == value
        else sealed.seal(keyring, org_id=row.org_id, credential_id=row.id, field=name, value=value)
        for name, value in plain.items()
    }
    if new_name is not None:
        row.name = new_name
    if data.enabled is not None:
        row.enabled = data.enabled
    if new_config != row.config:
        row.config = new_config
    if new_secrets != row.secrets:
        row.secrets = new_secrets
    before = data.version
    try:
        await db.flush()
    except StaleDataError:
        raise ConflictError(
            "integration changed concurrently: reload and retry", field="version"
        ) from None
    except IntegrityError:
        raise ConflictError(f"an integration named {row.name!r} exists", field="name") from None
    if row.version != before:
        logger.info("integration %s updated (version %d -> %d)", row.id, before, row.version)
        if orchestrator is not None:
            await orchestrator.forget(row.id)
    return to_read(row)


async def delete(
    db: AsyncSession,
    *,
    integration_id: uuid.UUID,
    version: int | None = None,
    orchestrator: Orchestrator | None = None,
) -> None:
    """Delete an integration (only if still at `version`, when given) and drop its client.

    Raises:
        NotFoundError: no such integration in this organisation.
        ConflictError: `version` is stale.
    """
    row = await _row(db, integration_id)
    if version is not None and version != row.version:
        raise ConflictError(
            f"integration is at version {row.version}, not {version}", field="version"
        )
    try:
        await repository.delete(db, row)
    except StaleDataError:
        raise ConflictError(
            "integration changed concurrently: reload and retry", field="version"
        ) from None
    logger.info("integration %s deleted", integration_id)
    if orchestrator is not None:
        await orchestrator.forget(integration_id)


async def load(db: AsyncSession, *, integration_id: uuid.UUID, keyring: Keyring) -> Integration:
    """The integration with validated config and decrypted secrets, for a handler.

    Raises:
        NotFoundError: no such integration in this organisation.
    """
    row = await _row(db, integration_id)
    spec = spec_for(row.vendor)
    return Integration(
        id=row.id,
        org_id=row.org_id,
        vendor=row.vendor,
        name=row.name,
        version=row.version,
        enabled=row.enabled,
        config=spec.config_model.model_validate(row.config),
        secrets={name: SecretStr(value) for name, value in sealed.open_all(keyring, row).items()},
    )


async def test(
    db: AsyncSession, *, integration_id: uuid.UUID, keyring: Keyring, orchestrator: Orchestrator
) -> TestResult:
    """Try to reach the integration's system (works on disabled integrations too).

    Raises:
        NotFoundError: no such integration in this organisation.
    """
    integration = await load(db, integration_id=integration_id, keyring=keyring)
    return await orchestrator.test_connection(integration)


async def execute(
    db: AsyncSession,
    *,
    integration_id: uuid.UUID,
    operation: str,
    params: Mapping[str, Any],
    keyring: Keyring,
    orchestrator: Orchestrator,
) -> dict[str, Any]:
    """Run one handler operation on the integration.

    Raises:
        NotFoundError: no such integration in this organisation.
        ConflictError: the integration is disabled.
        InvalidError: unknown operation or bad params (field named).
        UpstreamError: the remote system failed (502).
    """
    integration = await load(db, integration_id=integration_id, keyring=keyring)
    return await orchestrator.execute(integration, operation, params)


def to_read(row: IntegrationCredential) -> IntegrationRead:
    """The API view of a credential: config, and `has_<field>` for each secret."""
    spec = spec_for(row.vendor)
    stored = row.secrets or {}
    model: Any = spec.read_model
    read: IntegrationRead = model(
        id=row.id,
        vendor=row.vendor,
        name=row.name,
        enabled=row.enabled,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        config=row.config,
        **{f"has_{name}": name in stored for name in spec.secret_fields},
    )
    return read


async def _row(db: AsyncSession, integration_id: uuid.UUID) -> IntegrationCredential:
    row = await repository.get(db, org_id=current_org_id(db), integration_id=integration_id)
    if row is None:
        raise NotFoundError(f"integration {integration_id} not found")
    return row


async def _check_inbound_port(
    db: AsyncSession,
    *,
    org_id: uuid.UUID,
    vendor: str,
    config: BaseModel,
    exclude: uuid.UUID | None = None,
) -> None:
    port = getattr(config, "inbound_port", None)
    if vendor != HL7_V2X or port is None:
        return
    taken = await repository.inbound_ports(db, org_id=org_id, exclude=exclude)
    if port in taken:
        raise ConflictError(
            f"inbound port {port} is already used by integration {taken[port]!r}",
            field="config.inbound_port",
        )
