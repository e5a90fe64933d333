"""`GET /api/audit`: who may read it, what they see (their organisation only), filters, pages."""

from __future__ import annotations

from datetime import timedelta

from ehr_api.db.base import utcnow

from tests.ehr_api.support import Harness


async def test_an_auditor_sees_only_their_organisation(harness: Harness) -> None:
    org_a = await harness.org("org-a")
    org_b = await harness.org("org-b")
    for slug in ("org-a", "org-b"):
        for _ in range(3):
            await harness.client.get(
                "/api/me", headers={**harness.auth(slug, "org_admin"), "X-Request-ID": slug}
            )
    b_rows = await harness.audit_rows(org_b.id)
    assert b_rows

    auditor_a = harness.auth("org-a", "auditor")
    page = (await harness.client.get("/api/audit?limit=500", headers=auditor_a)).json()
    assert page["items"] and {item["org_id"] for item in page["items"]} == {str(org_a.id)}
    assert "org-b" not in {item["request_id"] for item in page["items"]}
    # Filters that would match B's rows find nothing rather than B's rows.
    for params in (
        {"actor": b_rows[0].actor, "action": b_rows[0].action, "resource_type": "me"},
        {"resource_id": str(b_rows[0].id)},
        {"cursor": str(b_rows[-1].id + 1)},
    ):
        found = await harness.client.get("/api/audit", params=params, headers=auditor_a)
        assert all(item["org_id"] == str(org_a.id) for item in found.json()["items"])
    # Verification counts A's chain only (the verify call's own row comes after it).
    verified = (await harness.client.get("/api/audit/verify", headers=auditor_a)).json()
    assert verified["ok"]
    assert verified["rows_checked"] == len(await harness.audit_rows(org_a.id)) - 1


async def test_filters_and_pagination(harness: Harness) -> None:
    org = await harness.org("org-a")
    admin = harness.auth("org-a", "org_admin", sub="alice")
    created = await harness.client.post(
        "/api/apikeys", json={"name": "p", "roles": ["partner"]}, headers=admin
    )
    key_id = created.json()["id"]
    for _ in range(4):
        await harness.client.get("/api/me", headers=harness.auth("org-a", "clinician", sub="bob"))
    auditor = harness.auth("org-a", "auditor", sub="carol")

    async def items(**params: object) -> list[dict[str, object]]:
        response = await harness.client.get("/api/audit", params=params, headers=auditor)
        assert response.status_code == 200, response.text
        found: list[dict[str, object]] = response.json()["items"]
        return found

    assert {item["actor"] for item in await items(actor="bob")} == {"bob"}
    assert len(await items(actor="bob")) == 4
    assert [item["action"] for item in await items(action="apikey.create")] == ["apikey.create"]
    assert [item["resource_ids"] for item in await items(resource_id=key_id)] == [[key_id]]
    assert len(await items(resource_type="apikeys")) == 1
    assert await items(outcome="denied") == []
    future = (utcnow() + timedelta(hours=1)).isoformat()
    assert await items(since=future) == []
    assert len(await items(until=future, actor="bob")) == 4

    # Newest first, pages linked by `next` until it is null.
    seen: list[int] = []
    url: str | None = "/api/audit?limit=2"
    while url:
        page = (await harness.client.get(url, headers=auditor)).json()
        seen += [item["id"] for item in page["items"]]
        url = page["next"]
    all_rows = await harness.audit_rows(org.id)
    assert seen == sorted(seen, reverse=True)
    assert set(seen) <= {row.id for row in all_rows} and len(seen) >= 5


async def test_bad_filters_are_problem_json(harness: Harness) -> None:
    await harness.org("org-a")
    auditor = harness.auth("org-a", "auditor")
    for params in ({"since": "2024-01-01T00:00:00"}, {"limit": "0"}, {"cursor": "0"}):
        response = await harness.client.get("/api/audit", params=params, headers=auditor)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"
    later, earlier = utcnow().isoformat(), (utcnow() - timedelta(days=1)).isoformat()
    response = await harness.client.get(
        "/api/audit", params={"since": later, "until": earlier}, headers=auditor
    )
    assert response.status_code == 422 and response.json()["field"] == "since"
