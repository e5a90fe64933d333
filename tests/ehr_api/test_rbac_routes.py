"""Each role x each route of the app, allowed or denied as the policy says.

Routes come from `app.routes` (every method of every /api and /fhir route, including those
other packages add), and each route's permission from the `require(obj, act)` it declares;
nothing here lists a subset. Roles reach the caller three ways, and the matrix runs for
each: as token claims, as database role assignments (token without roles), and on an API
key. Allowed means the request got past authentication and authorisation (any status but
401/403: ids are random, so most allowed calls then 404 or 422); denied means a 403
problem document.

Then the boundaries around the matrix: no credential (401 everywhere), a suspended
organisation (403 everywhere), a token for an unknown organisation or an expired token
(401), a revoked key (401 at once), a token of organisation A on organisation B's
resources (404, the same as for ids that do not exist).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from ehr_api.auth.principal import Role
from ehr_api.auth.rbac import Policy
from ehr_api.auth.tokens import issue_token
from ehr_api.tenants.models import Organization

from tests.ehr_api.support import JWT_SECRET, Harness, RouteInfo, bearer, running
from tests.ehr_api.support import api_routes as all_routes

ROLES = [role.value for role in Role]


def api_routes(app: object) -> list[RouteInfo]:
    """The /api routes: /fhir routes take their permission from the resource type in the
    path (`fhir_object(type)`), so no static require() names it; their matrix is in
    tests/ehr_api/fhir_store/test_rbac.py."""
    return [route for route in all_routes(app) if route.path.startswith("/api/")]  # type: ignore[arg-type]


ORG_ROLES = [role for role in ROLES if role != Role.PLATFORM_ADMIN.value]

#: Who may call what, stated once more by hand: a new route must be added here, which
#: makes its author say out loud which permission guards it.
DECLARED: dict[tuple[str, str], tuple[str, str]] = {
    ("GET", "/api/me"): ("organization", "read"),
    ("GET", "/api/apikeys"): ("apikeys", "read"),
    ("POST", "/api/apikeys"): ("apikeys", "write"),
    ("DELETE", "/api/apikeys/{key_id}"): ("apikeys", "delete"),
    ("GET", "/api/members"): ("members", "read"),
    ("POST", "/api/members"): ("members", "write"),
    ("DELETE", "/api/members/{assignment_id}"): ("members", "delete"),
    ("GET", "/api/audit"): ("audit", "read"),
    ("GET", "/api/audit/verify"): ("audit", "verify"),
    ("GET", "/api/admin/orgs"): ("orgs", "read"),
    ("POST", "/api/admin/orgs"): ("orgs", "write"),
    ("GET", "/api/admin/orgs/{org}"): ("orgs", "read"),
    ("POST", "/api/admin/orgs/{org}/suspend"): ("orgs", "write"),
    ("POST", "/api/admin/orgs/{org}/reactivate"): ("orgs", "write"),
    ("GET", "/api/admin/integrations"): ("integrations", "read"),
    ("POST", "/api/admin/integrations"): ("integrations", "write"),
    ("GET", "/api/admin/integrations/{integration_id}"): ("integrations", "read"),
    ("PATCH", "/api/admin/integrations/{integration_id}"): ("integrations", "write"),
    ("DELETE", "/api/admin/integrations/{integration_id}"): ("integrations", "delete"),
    ("POST", "/api/admin/integrations/{integration_id}/test"): ("integrations", "test"),
    ("POST", "/api/admin/integrations/{integration_id}/execute"): ("integrations", "execute"),
}
FHIR_SERVER = {
    "vendor": "fhir-r4",
    "name": "b-fhir",
    "config": {"fhir_server_url": "https://fhir.example.org/r4"},
    "secrets": {},
}


@dataclass
class World:
    harness: Harness
    a: Organization
    b: Organization
    suspended: Organization

    @property
    def client(self) -> httpx.AsyncClient:
        return self.harness.client


@pytest.fixture
async def world(migrated: str, tmp_path: Path) -> AsyncIterator[World]:
    async with running(migrated, tmp_path) as harness:
        a = await harness.org("org-a")
        b = await harness.org("org-b")
        suspended = await harness.org("org-s", suspended=True)
        yield World(harness, a, b, suspended)


async def call(
    client: httpx.AsyncClient, route: RouteInfo, headers: dict[str, str]
) -> httpx.Response:
    body = {} if route.method in ("POST", "PATCH", "PUT") else None
    return await client.request(route.method, route.url(), json=body, headers=headers)


def test_every_api_route_declares_its_permission(world: World) -> None:
    routes = api_routes(world.harness.app)
    assert routes, "no routes found"
    undeclared = [f"{r.method} {r.path}" for r in routes if r.obj is None]
    assert not undeclared, f"routes without require(): {undeclared}"
    found = {(r.method, r.path): (r.obj, r.act) for r in routes}
    missing = sorted(set(found) - set(DECLARED))
    assert not missing, f"add these routes and their permission to DECLARED: {missing}"
    assert {key: found[key] for key in DECLARED if key in found} == {
        key: value for key, value in DECLARED.items() if key in found
    }


async def _credential(world: World, kind: str, role: str) -> dict[str, str]:
    harness = world.harness
    if kind == "claims":
        return harness.auth("org-a", role, sub=f"claims-{role}")
    if kind == "api_key":
        return bearer(await harness.api_key(world.a, role))
    subject = f"assigned-{role}"
    if role == Role.PLATFORM_ADMIN.value:
        from ehr_api.auth.models import RoleAssignment

        async with harness.database.platform_session() as db:
            db.add(RoleAssignment(org_id=None, subject=subject, role=role))
    else:
        await harness.assign(world.a, subject, role)
    return harness.auth("org-a", sub=subject)  # no roles in the token: the database decides


@pytest.mark.parametrize("kind", ["claims", "assigned", "api_key"])
async def test_role_route_matrix(world: World, kind: str) -> None:
    policy = Policy.default()
    roles = ORG_ROLES if kind == "api_key" else ROLES
    wrong: list[str] = []
    checked = 0
    for role in roles:
        headers = await _credential(world, kind, role)
        for route in api_routes(world.harness.app):
            assert route.obj is not None and route.act is not None
            allowed = policy.permits(role, route.obj, route.act)
            response = await call(world.client, route, headers)
            checked += 1
            if allowed and response.status_code in (401, 403):
                wrong.append(f"{role} {route.method} {route.path}: {response.status_code}, allowed")
            if not allowed and (
                response.status_code != 403
                or response.headers["content-type"] != "application/problem+json"
                or response.json()["title"] != "Forbidden"
            ):
                wrong.append(f"{role} {route.method} {route.path}: {response.status_code}, denied")
    assert not wrong, "\n".join(wrong)
    assert checked >= len(roles) * len(DECLARED)


async def test_no_credential_is_401_everywhere(world: World) -> None:
    for route in api_routes(world.harness.app):
        response = await call(world.client, route, {})
        assert response.status_code == 401, route
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.headers["content-type"] == "application/problem+json"


async def test_suspended_organisation_is_refused_everywhere(world: World) -> None:
    key = await world.harness.api_key(world.suspended, "org_admin")
    for headers in (world.harness.auth("org-s", "org_admin"), bearer(key)):
        for route in api_routes(world.harness.app):
            response = await call(world.client, route, headers)
            assert response.status_code == 403, (route, response.text)
            assert "suspended" in response.json()["detail"]


async def test_suspension_through_the_api_takes_effect_at_once(world: World) -> None:
    admin = world.harness.auth("org-a", "org_admin")
    assert (await world.client.get("/api/me", headers=admin)).status_code == 200
    root = world.harness.auth(None, "platform_admin")
    assert (await world.client.post("/api/admin/orgs/org-a/suspend", headers=root)).is_success
    assert (await world.client.get("/api/me", headers=admin)).status_code == 403
    assert (await world.client.post("/api/admin/orgs/org-a/reactivate", headers=root)).is_success
    assert (await world.client.get("/api/me", headers=admin)).status_code == 200


@pytest.mark.parametrize(
    "token",
    [
        issue_token("x", "no-such-org", ["org_admin"], JWT_SECRET),
        issue_token("x", str(uuid.uuid4()), ["org_admin"], JWT_SECRET),
        issue_token("x", "org-a", ["org_admin"], "another-secret-" + "y" * 40),
    ],
    ids=["unknown-slug", "unknown-id", "foreign-signature"],
)
async def test_tokens_we_cannot_trust_are_401(world: World, token: str) -> None:
    response = await world.client.get("/api/me", headers=bearer(token))
    assert response.status_code == 401


async def test_expired_token_is_401(world: World) -> None:
    from ehr_api.db.base import utcnow

    old = utcnow() - timedelta(hours=2)
    token = issue_token("x", "org-a", ["org_admin"], JWT_SECRET, timedelta(minutes=5), now=old)
    response = await world.client.get("/api/me", headers=bearer(token))
    assert response.status_code == 401 and response.json()["code"] == "token_expired"


async def test_revoked_key_stops_working_at_once(world: World) -> None:
    admin = world.harness.auth("org-a", "org_admin")
    created = await world.client.post(
        "/api/apikeys", json={"name": "partner", "roles": ["partner"]}, headers=admin
    )
    key = created.json()["key"]
    assert (await world.client.get("/api/me", headers=bearer(key))).status_code == 200
    revoked = await world.client.delete(f"/api/apikeys/{created.json()['id']}", headers=admin)
    assert revoked.status_code == 204
    response = await world.client.get("/api/me", headers=bearer(key))
    assert response.status_code == 401 and response.json()["code"] == "api_key_revoked"


async def test_role_change_takes_effect_at_once(world: World) -> None:
    admin = world.harness.auth("org-a", "org_admin")
    bob = world.harness.auth("org-a", sub="bob")
    assert (await world.client.get("/api/audit", headers=bob)).status_code == 403
    granted = await world.client.post(
        "/api/members", json={"subject": "bob", "role": "auditor"}, headers=admin
    )
    assert granted.status_code == 201
    assert (await world.client.get("/api/audit", headers=bob)).status_code == 200
    removed = await world.client.delete(f"/api/members/{granted.json()['id']}", headers=admin)
    assert removed.status_code == 204
    assert (await world.client.get("/api/audit", headers=bob)).status_code == 403


async def test_platform_admin_without_an_organisation(world: World) -> None:
    root = world.harness.auth(None, "platform_admin")
    assert (await world.client.get("/api/admin/orgs", headers=root)).status_code == 200
    response = await world.client.get("/api/admin/integrations", headers=root)
    assert response.status_code == 403
    assert "names none" in response.json()["detail"]


async def test_organisation_mismatch_is_404_like_a_missing_id(world: World) -> None:
    client, harness = world.client, world.harness
    b_admin = harness.auth("org-b", "org_admin")
    integration = (
        await client.post("/api/admin/integrations", json=FHIR_SERVER, headers=b_admin)
    ).json()
    b_key = (
        await client.post("/api/apikeys", json={"name": "k", "roles": ["partner"]}, headers=b_admin)
    ).json()
    b_member = (
        await client.post(
            "/api/members", json={"subject": "eve", "role": "clinician"}, headers=b_admin
        )
    ).json()
    a_admin = harness.auth("org-a", "org_admin")
    integrations = "/api/admin/integrations/{}"
    attempts = [
        ("GET", integrations, integration["id"], None),
        ("PATCH", integrations, integration["id"], {"version": 1, "name": "mine"}),
        ("POST", integrations + "/test", integration["id"], None),
        ("POST", integrations + "/execute", integration["id"], {"operation": "parse"}),
        ("DELETE", integrations, integration["id"], None),
        ("DELETE", "/api/apikeys/{}", b_key["id"], None),
        ("DELETE", "/api/members/{}", b_member["id"], None),
    ]
    for method, template, theirs, body in attempts:
        foreign = await client.request(method, template.format(theirs), json=body, headers=a_admin)
        missing = await client.request(
            method, template.format(uuid.uuid4()), json=body, headers=a_admin
        )
        assert foreign.status_code == missing.status_code == 404, (method, template, foreign.text)
        assert foreign.json()["title"] == missing.json()["title"]
    # Nothing of B's leaks into A's lists either, and B's things are intact.
    listed = await client.get("/api/admin/integrations", headers=a_admin)
    assert listed.json()["items"] == []
    assert (await client.get("/api/apikeys", headers=a_admin)).json() == []
    still = await client.get(f"/api/admin/integrations/{integration['id']}", headers=b_admin)
    assert still.status_code == 200 and still.json()["name"] == "b-fhir"
    assert (await client.get("/api/me", headers=bearer(b_key["key"]))).status_code == 200
