"""`/api/admin/orgs` through the real app: platform administrators only."""

from __future__ import annotations

import pytest
from ehr_api.app import create_app
from ehr_api.settings import Settings
from ehr_api.tenants.routes import router

from tests.ehr_api.integrations.api import Api
from tests.ehr_api.support import declared_permissions

BASE = "/api/admin/orgs"


def test_every_route_declares_its_permission() -> None:
    assert BASE in create_app(Settings()).openapi()["paths"]
    declared = declared_permissions(router)
    assert declared == {
        ("POST", BASE): ("orgs", "write"),
        ("GET", BASE): ("orgs", "read"),
        ("GET", f"{BASE}/{{org}}"): ("orgs", "read"),
        ("POST", f"{BASE}/{{org}}/suspend"): ("orgs", "write"),
        ("POST", f"{BASE}/{{org}}/reactivate"): ("orgs", "write"),
    }


async def test_create_list_get(api: Api) -> None:
    created = await api.create_org("st-marys")
    assert created["status"] == "active" and created["name"] == "ST-MARYS"
    by_slug = await api.client.get(f"{BASE}/st-marys", headers=api.root)
    by_id = await api.client.get(f"{BASE}/{created['id']}", headers=api.root)
    assert by_slug.json() == by_id.json() == created
    await api.create_org("general")
    page = await api.client.get(f"{BASE}?limit=1", headers=api.root)
    assert page.status_code == 200
    assert page.json()["total"] == 2 and len(page.json()["items"]) == 1
    missing = await api.client.get(f"{BASE}/nowhere", headers=api.root)
    assert missing.status_code == 404


async def test_errors_are_problems_naming_the_field(api: Api) -> None:
    await api.create_org("taken")
    again = await api.client.post(BASE, json={"slug": "taken", "name": "x"}, headers=api.root)
    assert again.status_code == 409 and again.json()["field"] == "slug"
    bad = await api.client.post(BASE, json={"slug": "No_Good", "name": "x"}, headers=api.root)
    assert bad.status_code == 422 and bad.json()["field"] == "slug"
    assert bad.headers["content-type"] == "application/problem+json"
    too_big = await api.client.get(f"{BASE}?limit=1000", headers=api.root)
    assert too_big.status_code == 422


async def test_suspension_refuses_the_organisations_tokens(api: Api) -> None:
    await api.create_org("paused")
    member = api.as_("org_admin", "paused")
    assert (await api.client.get("/api/admin/integrations", headers=member)).status_code == 200
    suspended = await api.client.post(f"{BASE}/paused/suspend", headers=api.root)
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    assert (await api.client.get("/api/admin/integrations", headers=member)).status_code == 403
    listed = await api.client.get(f"{BASE}?status=suspended", headers=api.root)
    assert [org["slug"] for org in listed.json()["items"]] == ["paused"]
    reactivated = await api.client.post(f"{BASE}/paused/reactivate", headers=api.root)
    assert reactivated.json()["status"] == "active"
    assert (await api.client.get("/api/admin/integrations", headers=member)).status_code == 200


@pytest.mark.parametrize(
    "role", ["org_admin", "integration_engineer", "clinician", "partner", "auditor"]
)
async def test_only_platform_administrators(api: Api, role: str) -> None:
    await api.create_org("org-a")
    caller = api.as_(role, "org-a")
    attempts = [
        await api.client.get(BASE, headers=caller),
        await api.client.post(BASE, json={"slug": "mine", "name": "x"}, headers=caller),
        await api.client.get(f"{BASE}/org-a", headers=caller),
        await api.client.post(f"{BASE}/org-a/suspend", headers=caller),
    ]
    assert [response.status_code for response in attempts] == [403] * 4
    assert (await api.client.get(BASE)).status_code == 401
