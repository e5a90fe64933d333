"""Every call of every /api route leaves exactly one audit row, with the right fields."""

from __future__ import annotations

import asyncio

from ehr_api import admin
from ehr_api.audit.models import ActorType

from tests.ehr_api.support import USER_AGENT, Harness, api_routes, bearer


async def test_every_route_call_leaves_a_row(harness: Harness) -> None:
    org = await harness.org("org-a")
    callers = {
        "org_admin": (harness.auth("org-a", "org_admin", sub="alice"), "alice", ActorType.USER),
        "anonymous": ({}, "anonymous", ActorType.USER),
    }
    key = await harness.api_key(org, "partner")
    prefix = key.split("_")[1]
    callers["partner key"] = (bearer(key), f"apikey:{prefix}", ActorType.API_KEY)
    seen = 0
    for name, (headers, actor, actor_type) in callers.items():
        for route in api_routes(harness.app):
            before = await harness.last_audit_id()
            body = {} if route.method in ("POST", "PATCH") else None
            request_id = f"req-{seen}"
            response = await harness.client.request(
                route.method,
                route.url(),
                json=body,
                params={"probe": "1"},
                headers={**headers, "X-Request-ID": request_id},
            )
            rows = await harness.audit_rows_after(before)
            assert len(rows) == 1, (name, route, rows)
            (row,) = rows
            label = (name, route.method, route.path)
            assert row.action == f"{route.method} {route.path}", label
            assert row.status_code == response.status_code, label
            expected = "success" if response.is_success else None
            if response.status_code in (401, 403):
                expected = "denied"
            elif response.status_code >= 400:
                expected = "failure"
            assert row.outcome == expected, label
            assert (row.actor, row.actor_type) == (actor, actor_type), label
            assert row.org_id == (None if name == "anonymous" else org.id), label
            assert row.request_id == request_id == response.headers["X-Request-ID"]
            assert row.client_ip == "127.0.0.1" and row.user_agent == USER_AGENT
            assert row.details["query"] == {"probe": "1"}
            if name == "anonymous" and response.status_code == 401:  # /metadata is public
                assert row.details["auth"] == "missing_credentials"
            seen += 1
    assert seen == 3 * len(api_routes(harness.app))


async def test_domain_actions_and_resources_set_by_routes(harness: Harness) -> None:
    org = await harness.org("org-a")
    admin = harness.auth("org-a", "org_admin", sub="alice")
    before = await harness.last_audit_id()
    created = await harness.client.post(
        "/api/apikeys", json={"name": "partner", "roles": ["partner"]}, headers=admin
    )
    (row,) = await harness.audit_rows_after(before)
    assert (row.action, row.resource_type, row.resource_ids) == (
        "apikey.create",
        "apikeys",
        [created.json()["id"]],
    )
    # The key itself never reaches the audit log.
    assert created.json()["key"] not in str(row.details)

    before = await harness.last_audit_id()
    key_id = created.json()["id"]
    await harness.client.delete(f"/api/apikeys/{key_id}", headers=admin)
    (row,) = await harness.audit_rows_after(before)
    # Without annotations: the route's first literal segment and its path parameters.
    assert (row.action, row.resource_type, row.resource_ids) == (
        "DELETE /api/apikeys/{key_id}",
        "apikeys",
        [key_id],
    )
    assert row.org_id == org.id


async def test_credentials_in_the_query_are_redacted(harness: Harness) -> None:
    token = harness.token("org-a", "org_admin")
    before = await harness.last_audit_id()
    await harness.client.get("/api/me", params={"access_token": token, "q": token})
    (row,) = await harness.audit_rows_after(before)
    assert token not in str(row.details)
    assert row.details["query"] == {"access_token": "[redacted]", "q": "[redacted]"}


async def test_unknown_routes_and_other_paths(harness: Harness) -> None:
    before = await harness.last_audit_id()
    await harness.client.get("/api/no/such/route")
    await harness.client.get("/healthz")
    await harness.client.get("/openapi.json")
    (row,) = await harness.audit_rows_after(before)
    assert (row.action, row.status_code, row.outcome) == ("GET (no route)", 404, "failure")
    assert row.details["path"] == "/api/no/such/route"


async def test_concurrent_requests_are_all_recorded_on_an_intact_chain(harness: Harness) -> None:
    org = await harness.org("org-a")
    headers = harness.auth("org-a", "clinician")
    responses = await asyncio.gather(
        *(harness.client.get("/api/me", headers=headers) for _ in range(60))
    )
    assert {response.status_code for response in responses} == {200}
    rows = await harness.audit_rows(org.id)
    assert {row.request_id for row in rows} == {r.headers["X-Request-ID"] for r in responses}
    _, result = await admin.verify_audit(harness.database, org="org-a")
    assert result.ok and result.rows == 60


async def test_platform_actions_go_to_the_platform_chain(harness: Harness) -> None:
    root = harness.auth(None, "platform_admin", sub="root")
    created = await harness.client.post(
        "/api/admin/orgs", json={"slug": "new-org", "name": "New"}, headers=root
    )
    assert created.status_code == 201
    (row,) = await harness.audit_rows(None)
    assert (row.org_id, row.actor, row.action) == (None, "root", "POST /api/admin/orgs")
    label, result = await admin.verify_audit(harness.database, org=None)
    assert (label, result.ok, result.rows) == ("the platform", True, 1)
