"""Organisations: create, look up, list, suspend and reactivate, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from ehr_api.db import Database
from ehr_api.errors import ConflictError, InvalidError, NotFoundError
from ehr_api.tenants import service as organizations
from ehr_api.tenants.models import OrgStatus
from ehr_api.tenants.schemas import OrganizationCreate
from pydantic import ValidationError


async def test_create_and_get(database: Database) -> None:
    async with database.platform_session() as db:
        created = await organizations.create(
            db, data=OrganizationCreate(slug="st-marys", name=" St Mary's ")
        )
    assert created.status == OrgStatus.ACTIVE
    assert organizations.is_active(created)
    async with database.platform_session() as db:
        by_id = await organizations.get(db, org_id=created.id)
        by_slug = await organizations.get_by_slug(db, slug="st-marys")
        by_ref = await organizations.resolve(db, ref=str(created.id))
    assert by_id.id == by_slug.id == by_ref.id == created.id
    assert by_id.name == "St Mary's"


async def test_duplicate_slug_is_a_conflict(database: Database) -> None:
    async with database.platform_session() as db:
        await organizations.create(db, data=OrganizationCreate(slug="dup-org", name="A"))
    async with database.platform_session() as db:
        with pytest.raises(ConflictError) as caught:
            await organizations.create(db, data=OrganizationCreate(slug="dup-org", name="B"))
    assert caught.value.field == "slug"


@pytest.mark.parametrize(
    "slug",
    ["ab", "a" * 64, "Upper-case", "-leading", "trailing-", "under_score", "dot.ted", "spa ce"],
)
def test_slug_rules(slug: str) -> None:
    with pytest.raises(ValidationError) as caught:
        OrganizationCreate(slug=slug, name="x")
    assert caught.value.errors()[0]["loc"] == ("slug",)


@pytest.mark.parametrize("slug", ["abc", "a" * 63, "st-marys-2", "123"])
def test_valid_slugs(slug: str) -> None:
    assert OrganizationCreate(slug=slug, name="x").slug == slug


async def test_unknown_organisation_is_not_found(database: Database) -> None:
    async with database.platform_session() as db:
        with pytest.raises(NotFoundError):
            await organizations.get(db, org_id=uuid.uuid4())
        with pytest.raises(NotFoundError):
            await organizations.resolve(db, ref="no-such-org")
        with pytest.raises(NotFoundError):
            await organizations.resolve(db, ref="Not A Slug!")
        with pytest.raises(NotFoundError):
            await organizations.suspend(db, ref=uuid.uuid4())


async def test_list_is_paginated_and_filtered(database: Database) -> None:
    async with database.platform_session() as db:
        for index in range(5):
            await organizations.create(
                db, data=OrganizationCreate(slug=f"org-{index}", name=f"Org {index}")
            )
        await organizations.suspend(db, ref="org-3")
    async with database.platform_session(read_only=True) as db:
        first = await organizations.list(db, limit=2)
        rest = await organizations.list(db, limit=10, offset=2)
        suspended = await organizations.list(db, status=OrgStatus.SUSPENDED)
    assert first.total == rest.total == 5
    assert len(first.items) == 2 and len(rest.items) == 3
    slugs = {item.slug for item in first.items + rest.items}
    assert slugs == {f"org-{index}" for index in range(5)}
    assert [item.slug for item in suspended.items] == ["org-3"]


async def test_list_limits(database: Database) -> None:
    async with database.platform_session(read_only=True) as db:
        with pytest.raises(InvalidError) as too_many:
            await organizations.list(db, limit=organizations.MAX_PAGE + 1)
        with pytest.raises(InvalidError) as negative:
            await organizations.list(db, offset=-1)
    assert (too_many.value.field, negative.value.field) == ("limit", "offset")


async def test_suspend_and_reactivate(database: Database) -> None:
    async with database.platform_session() as db:
        org = await organizations.create(db, data=OrganizationCreate(slug="to-pause", name="P"))
    async with database.platform_session() as db:
        suspended = await organizations.suspend(db, ref="to-pause")
        again = await organizations.suspend(db, ref=org.id)  # idempotent
    assert suspended.status == again.status == OrgStatus.SUSPENDED
    assert not organizations.is_active(again)
    async with database.platform_session() as db:
        assert not organizations.is_active(await organizations.get(db, org_id=org.id))
        active = await organizations.reactivate(db, ref=str(org.id))
    assert organizations.is_active(active)


async def test_an_organisation_session_sees_only_itself(database: Database) -> None:
    async with database.platform_session() as db:
        a = await organizations.create(db, data=OrganizationCreate(slug="org-a", name="A"))
        b = await organizations.create(db, data=OrganizationCreate(slug="org-b", name="B"))
    async with database.org_session(a.id) as db:
        assert (await organizations.get(db, org_id=a.id)).slug == "org-a"
        with pytest.raises(NotFoundError):
            await organizations.get(db, org_id=b.id)
