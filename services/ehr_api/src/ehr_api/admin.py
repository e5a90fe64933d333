"""The database side of the `ehr-platform` commands, as plain async functions.

`cli.py` parses arguments, prints and maps failures to exit codes; everything that talks
to the database lives here, so it can be tested (and reused by scripts) without spawning
processes. Failures a person should read are `CommandError`s with one-line messages.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from pydantic import ValidationError
from sqlalchemy import select

from ehr_api.audit import service as audit
from ehr_api.auth import service as access_admin
from ehr_api.auth.principal import Role
from ehr_api.db import Database
from ehr_api.db.engine import database_url
from ehr_api.errors import DomainError
from ehr_api.fhir_store.reindex import ReindexResult, reindex_organisation
from ehr_api.fhir_store.service import supported_types
from ehr_api.integrations import secrets as integration_secrets
from ehr_api.integrations.models import IntegrationCredential
from ehr_api.migrate import current_revision, head_revision, upgrade_to_head
from ehr_api.security.crypto import CryptoError, Keyring
from ehr_api.security.local_secrets import replace_key_file
from ehr_api.settings import Settings
from ehr_api.tenants import service as organizations
from ehr_api.tenants.models import Organization, OrgStatus
from ehr_api.tenants.schemas import OrganizationCreate

__all__ = [
    "DEMO_ADMIN",
    "DEMO_SLUG",
    "CommandError",
    "create_api_key",
    "create_organization",
    "find_organization",
    "migrate",
    "open_database",
    "rotate_keys",
    "seed_demo",
    "verify_audit",
]

DEMO_SLUG = "demo"
DEMO_ADMIN = "demo-admin"


class CommandError(Exception):
    """A failure to report in one line; `status` 2 means the command line was wrong."""

    def __init__(self, message: str, *, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@asynccontextmanager
async def open_database(
    settings: Settings, *, check_schema: bool = True
) -> AsyncIterator[Database]:
    """A `Database` for one command.

    Raises:
        CommandError: the schema is not at head (run `migrate`), or a service refused.
    """
    url = database_url(settings)
    if check_schema and await current_revision(url) != head_revision():
        raise CommandError("the database is not migrated: run `ehr-platform migrate` first")
    database = Database.from_settings(settings)
    try:
        yield database
    except DomainError as exc:
        raise CommandError(exc.detail, status=2 if exc.status == 422 else 1) from None
    finally:
        await database.dispose()


async def migrate(settings: Settings) -> str | None:
    """Upgrade the configured database to head; the revision it is at afterwards."""
    url = database_url(settings)
    await upgrade_to_head(url, app_role=settings.db_app_role or None)
    return await current_revision(url)


async def seed_demo(settings: Settings) -> bool:
    """Migrate, and on a database with no organisation create `demo` with an org_admin.

    Returns whether an active `demo` organisation exists (so `up` can print its token).
    """
    await migrate(settings)
    async with open_database(settings) as database, database.platform_session() as db:
        if (await db.execute(select(Organization.id).limit(1))).first() is None:
            org = await organizations.create(
                db, data=OrganizationCreate(slug=DEMO_SLUG, name="Demo organisation")
            )
            await access_admin.assign_role(
                db, org_id=org.id, subject=DEMO_ADMIN, role=Role.ORG_ADMIN.value
            )
        try:
            demo = await organizations.resolve(db, ref=DEMO_SLUG)
        except DomainError:
            return False
        return demo.status == OrgStatus.ACTIVE


async def find_organization(database: Database, ref: str, *, active: bool = False) -> Organization:
    """The organisation named by `ref` (slug or id).

    Raises:
        CommandError: no such organisation, or (with `active`) it is suspended.
    """
    async with database.platform_session(read_only=True) as db:
        try:
            org = await organizations.resolve(db, ref=ref)
        except DomainError:
            raise CommandError(
                f"no organisation {ref!r} (create it: ehr-platform org create {ref} --name ...)"
            ) from None
    if active and org.status != OrgStatus.ACTIVE:
        raise CommandError(f"organisation {org.slug} is suspended")
    return org


async def create_organization(database: Database, *, slug: str, name: str) -> Organization:
    """Register an organisation.

    Raises:
        CommandError: an invalid slug or name (status 2), or the slug is taken.
    """
    try:
        data = OrganizationCreate(slug=slug, name=name)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CommandError(f"{first['loc'][0]}: {first['msg']}", status=2) from None
    async with database.platform_session() as db:
        return await organizations.create(db, data=data)


async def create_api_key(
    database: Database,
    *,
    org: str,
    roles: Sequence[str],
    name: str,
    expires_at: datetime | None = None,
) -> str:
    """A new API key for the active organisation `org`; the key, to be shown once."""
    found = await find_organization(database, org, active=True)
    async with database.org_session(found.id) as db:
        created = await access_admin.create_api_key(
            db, org_id=found.id, name=name, roles=roles, expires_at=expires_at
        )
    return created.key


async def verify_audit(database: Database, *, org: str | None) -> tuple[str, audit.Verification]:
    """Walk the audit chain of `org` (None: the platform chain); its name and the result."""
    org_id: uuid.UUID | None = None
    label = "the platform"
    if org is not None:
        found = await find_organization(database, org)
        org_id, label = found.id, found.slug
    scope = (
        database.platform_session(read_only=True)
        if org_id is None
        else database.org_session(org_id, read_only=True)
    )
    async with scope as db:
        return label, await audit.walk(db, org_id=org_id)


async def reindex_fhir(
    database: Database, *, org: str | None, resource_type: str | None
) -> list[tuple[str, ReindexResult]]:
    """Rebuild the FHIR search index of `org` (None: every organisation); per slug.

    Raises:
        CommandError: an unknown organisation, or a type the FHIR store does not keep.
    """
    if resource_type is not None and resource_type not in supported_types():
        raise CommandError(f"{resource_type!r} is not a resource type the FHIR store keeps")
    if org is not None:
        organisations = [await find_organization(database, org)]
    else:
        async with database.platform_session(read_only=True) as db:
            found = await db.execute(select(Organization).order_by(Organization.slug))
            organisations = list(found.scalars())
    return [
        (
            organisation.slug,
            await reindex_organisation(database, organisation.id, resource_type=resource_type),
        )
        for organisation in organisations
    ]


async def rotate_keys(
    database: Database, settings: Settings, keyring: Keyring, *, new_key: bool
) -> tuple[Keyring, int, int]:
    """Re-seal every integration secret under the current key (after adding one if asked).

    With `new_key` (the generated-keys mode) a fresh key becomes current and is written
    to the data directory's key file *before* anything is sealed under it, older keys
    kept, so a crash half way leaves values that all still decrypt. Returns the keyring
    now current, how many integrations changed and how many there are. One transaction:
    if any value fails to decrypt, nothing in the database changes.

    Raises:
        CommandError: a stored value does not decrypt with any configured key.
    """
    current = keyring.with_new_key() if new_key else keyring
    if new_key:
        replace_key_file(settings, current)
    changed = total = 0
    try:
        async with database.platform_session() as db:
            rows = (await db.execute(select(IntegrationCredential))).scalars().all()
            for row in rows:
                total += 1
                changed += integration_secrets.rotate(current, row)
            await db.flush()
    except CryptoError as exc:
        raise CommandError(
            f"re-encryption failed, nothing changed in the database: {exc}"
        ) from None
    return current, changed, total
