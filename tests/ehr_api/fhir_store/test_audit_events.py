"""AuditEvent: the audit log as read-only FHIR, per organisation, with search and paging."""

from __future__ import annotations

import base64
import json
from datetime import UTC, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from ehr_api.audit.models import AuditLog
from ehr_api.fhir_store.audit_events import action_code, outcome_code
from hl7_fhir.fhir import validate_resource

from tests.ehr_api.fhir_store.conftest import BASE, Fhir, patient

Json = dict[str, Any]
EVENTS = f"{BASE}/AuditEvent"


async def _rows_of(fhir: Fhir, before: int) -> list[AuditLog]:
    return await fhir.harness.audit_rows_after(before)


async def _all_events(
    client: httpx.AsyncClient, headers: dict[str, str], **params: str
) -> list[Json]:
    """Every AuditEvent a search finds, following `next` links."""
    found: list[Json] = []
    url: str | None = EVENTS
    query: dict[str, str] | None = {"_count": "100", **params}
    while url:
        page = await client.get(url, params=query, headers=headers)
        assert page.status_code == 200, page.text
        bundle = page.json()
        found += [entry["resource"] for entry in bundle["entry"]]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
        query = None
    return found


def _ids(events: list[Json]) -> list[str]:
    return [event["id"] for event in events]


async def test_a_create_maps_to_a_valid_r4_audit_event(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    before = await fhir.harness.last_audit_id()
    created = await client.post(f"{BASE}/Patient", json=patient(), headers=a)
    pid = created.json()["id"]
    [row] = await _rows_of(fhir, before)
    read = await client.get(f"{EVENTS}/{row.id}", headers=a)
    assert read.status_code == 200, read.text
    assert read.headers["ETag"] == 'W/"1"'
    event = read.json()
    assert validate_resource(event) == []
    assert event["id"] == str(row.id)
    assert event["type"]["code"] == "rest"
    assert [coding["code"] for coding in event["subtype"]] == [
        "create",
        "POST /fhir/R4/{resource_type}",
    ]
    assert (event["action"], event["outcome"]) == ("C", "0")
    recorded = row.occurred_at.replace(tzinfo=row.occurred_at.tzinfo or UTC)
    assert event["recorded"] == recorded.astimezone(UTC).isoformat()
    [agent] = event["agent"]
    assert agent["who"]["identifier"] == {"system": "urn:ehr-platform:subject", "value": "tester"}
    assert agent["requestor"] is True and agent["network"]["address"] == "127.0.0.1"
    assert agent["role"] == [{"text": "org_admin"}]  # the roles the caller held then
    assert event["source"]["observer"]["identifier"]["value"].endswith("/fhir/R4")
    touched, request = event["entity"]
    assert touched["what"] == {"reference": f"Patient/{pid}"}
    assert request["name"] == "POST /fhir/R4/{resource_type}"
    details = {item["type"]: item["valueString"] for item in request["detail"]}
    assert details["status"] == "201" and details["user_agent"]


async def test_action_and_outcome_follow_the_interaction_and_status(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    pid = (await client.post(f"{BASE}/Patient", json=patient(), headers=a)).json()["id"]
    before = await fhir.harness.last_audit_id()
    body = {**patient(), "id": pid, "gender": "other"}
    calls = [
        (await client.get(f"{BASE}/Patient/{pid}", headers=a), "R", "0", "read"),
        (await client.put(f"{BASE}/Patient/{pid}", json=body, headers=a), "U", "0", "update"),
        (await client.get(f"{BASE}/Patient", headers=a), "E", "0", "search-type"),
        (await client.get(f"{BASE}/Patient/{pid}/_history/1", headers=a), "R", "0", "vread"),
        (await client.get(f"{BASE}/Patient/nope", headers=a), "R", "4", "read"),
        (
            await client.post(f"{BASE}/Patient", json={**patient(), "gender": "x"}, headers=a),
            "C",
            "4",
            "create",
        ),
        (await client.delete(f"{BASE}/Patient/{pid}", headers=a), "D", "0", "delete"),
    ]
    rows = await _rows_of(fhir, before)
    assert len(rows) == len(calls)
    for row, (response, action, outcome, interaction) in zip(rows, calls, strict=True):
        event = (await client.get(f"{EVENTS}/{row.id}", headers=a)).json()
        assert row.status_code == response.status_code
        assert (event["action"], event["outcome"]) == (action, outcome), row.action
        assert event["subtype"][0]["code"] == interaction
    assert [outcome_code(status) for status in (200, 404, 500, None)] == ["0", "4", "8", "12"]
    assert action_code("integration.test") == "E" and action_code("GET /api/me") == "R"


async def test_search_parameters(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    bob = fhir.harness.auth("org-a", "org_admin", sub="bob")
    before = await fhir.harness.last_audit_id()
    pid = (await client.post(f"{BASE}/Patient", json=patient(), headers=bob)).json()["id"]
    await client.get(f"{BASE}/Patient/{pid}", headers=a)
    await client.get(f"{BASE}/Patient/unknown", headers=a)
    rows = await _rows_of(fhir, before)
    created, read, missing = (str(row.id) for row in rows)

    by_bob = await _all_events(client, a, agent="bob")
    assert _ids(by_bob) == [created]
    touching = await _all_events(client, a, entity=f"Patient/{pid}")
    assert _ids(touching) == [read, created]  # newest first
    full_url = await _all_events(client, a, entity=f"http://testserver/fhir/R4/Patient/{pid}")
    assert _ids(full_url) == [read, created]
    assert _ids(await _all_events(client, a, _id=f"{created},{missing}")) == [missing, created]
    failures = await _all_events(client, a, outcome="4")
    assert missing in _ids(failures) and created not in _ids(failures)
    reads = await _all_events(client, a, action="R")
    assert {read, missing} <= set(_ids(reads)) and created not in _ids(reads)
    creates = await _all_events(client, a, action="C,D")
    assert created in _ids(creates) and read not in _ids(creates)

    moment = rows[1].occurred_at.astimezone(UTC)
    second = moment.replace(microsecond=0)
    day = moment.date().isoformat()
    stamp = second.isoformat().replace("+00:00", "Z")
    assert read in _ids(await _all_events(client, a, date=f"eq{stamp}"))
    assert read in _ids(await _all_events(client, a, date=day))
    assert read in _ids(await _all_events(client, a, date=f"ge{day}"))
    assert _ids(await _all_events(client, a, date=f"gt{day}")) == []
    assert _ids(await _all_events(client, a, date=f"lt{day}")) == []
    later = (second + timedelta(seconds=1)).isoformat()
    assert read not in _ids(await _all_events(client, a, date=f"ge{later}"))
    assert read in _ids(await _all_events(client, a, date=f"lt{later}"))
    assert read in _ids(await _all_events(client, a, date=f"le{stamp}"))
    earlier = (second - timedelta(seconds=1)).isoformat()
    assert read not in _ids(await _all_events(client, a, date=f"le{earlier}"))

    for params, field in [
        ({"date": "2026-13-40"}, "date"),
        ({"date": "2026-01-01T10:00:00"}, "date"),  # an instant needs a zone
        ({"action": "X"}, "action"),
        ({"outcome": "1"}, "outcome"),
        ({"entity": "Patient"}, "entity"),
        ({"_count": "many"}, "_count"),
    ]:
        bad = await client.get(EVENTS, params=params, headers=a)
        assert bad.status_code == 400, params
        [issue] = bad.json()["issue"]
        assert issue["severity"] == "error" and issue["expression"] == [field]


async def test_paging_follows_next_links_and_cursors_stay_in_their_organisation(
    fhir: Fhir,
) -> None:
    client, a, b = fhir.client, fhir.a, fhir.b
    for _ in range(5):
        await client.get(f"{BASE}/Patient", headers=a)
    first = (await client.get(EVENTS, params={"_count": "2"}, headers=a)).json()
    assert len(first["entry"]) == 2 and first["total"] >= 5
    seen: list[str] = []
    page = first
    while True:
        seen += [entry["resource"]["id"] for entry in page["entry"]]
        links = {link["relation"]: link["url"] for link in page["link"]}
        if "next" not in links:
            break
        page = (await client.get(links["next"], headers=a)).json()
    everything = await _all_events(client, a)  # now including the rows the walk added
    assert seen == [event_id for event_id in _ids(everything) if int(event_id) <= int(seen[0])]
    assert len(seen) == len(set(seen)) and seen == sorted(seen, key=int, reverse=True)

    next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    cursor = parse_qs(urlsplit(next_url).query)["_cursor"][0]
    stolen = await client.get(EVENTS, params={"_cursor": cursor}, headers=b)
    assert stolen.status_code == 400
    assert stolen.json()["issue"][0]["expression"] == ["_cursor"]
    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    payload["o"] = "not-an-org"
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    assert (await client.get(EVENTS, params={"_cursor": forged}, headers=a)).status_code == 400
    assert (await client.get(EVENTS, params={"_cursor": "%%%"}, headers=a)).status_code == 400


async def test_another_organisations_events_never_appear(fhir: Fhir) -> None:
    client, a, b = fhir.client, fhir.a, fhir.b
    before = await fhir.harness.last_audit_id()
    await client.post(f"{BASE}/Patient", json=patient(), headers=a)
    [row_a] = await _rows_of(fhir, before)
    await client.get(f"{BASE}/Patient", headers=b)
    assert (await client.get(f"{EVENTS}/{row_a.id}", headers=b)).status_code == 404
    assert (await client.get(f"{EVENTS}/{row_a.id}/_history/1", headers=b)).status_code == 404
    events_b = await _all_events(client, b)
    assert events_b and str(row_a.id) not in _ids(events_b)
    assert await _all_events(client, b, _id=str(row_a.id)) == []
    searched = await client.post(
        f"{EVENTS}/_search",
        data={"_id": str(row_a.id)},
        headers={**b, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert searched.status_code == 200 and searched.json()["total"] == 0
    own = {
        row.org_id
        for row in await fhir.harness.audit_rows_after(0)
        if str(row.id) in _ids(events_b)
    }
    assert len(own) == 1 and row_a.org_id not in own


async def test_writes_are_405_and_write_nothing(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    await client.get(f"{BASE}/Patient", headers=a)
    event_id = (await _all_events(client, a))[0]["id"]
    event = (await client.get(f"{EVENTS}/{event_id}", headers=a)).json()
    for method, url in [
        ("POST", EVENTS),
        ("PUT", EVENTS),
        ("DELETE", EVENTS),
        ("PUT", f"{EVENTS}/{event_id}"),
        ("PATCH", f"{EVENTS}/{event_id}"),
        ("DELETE", f"{EVENTS}/{event_id}"),
    ]:
        refused = await client.request(method, url, json=event, headers=a)
        assert refused.status_code == 405, (method, url, refused.text)
        assert refused.headers["Allow"] == "GET"
        [issue] = refused.json()["issue"]
        assert (issue["severity"], issue["code"]) == ("error", "not-supported")
    assert (await client.get(f"{EVENTS}/{event_id}", headers=a)).json() == event
    assert (await client.post(EVENTS, json=event)).status_code == 401


async def test_only_auditors_and_admins_may_read(fhir: Fhir) -> None:
    client, harness = fhir.client, fhir.harness
    await client.get(f"{BASE}/Patient", headers=fhir.a)
    event_id = (await _all_events(client, fhir.a))[0]["id"]
    for role, expected in [
        ("auditor", 200),
        ("org_admin", 200),
        ("clinician", 403),
        ("integration_engineer", 403),
        ("partner", 403),
    ]:
        headers = harness.auth("org-a", role, sub=role)
        for url in (EVENTS, f"{EVENTS}/{event_id}", f"{EVENTS}/{event_id}/_history/1"):
            response = await client.get(url, headers=headers)
            assert response.status_code == expected, (role, url, response.text)
            if expected == 403:
                assert response.json()["issue"][0]["code"] == "forbidden"


async def test_reading_audit_events_is_audited_once_per_request(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    await client.get(f"{BASE}/Patient", headers=a)
    before = await fhir.harness.last_audit_id()
    for _ in range(3):
        page = (await client.get(EVENTS, params={"_count": "5"}, headers=a)).json()
    rows = await _rows_of(fhir, before)
    assert len(rows) == 3  # one row per read, nothing more
    assert rows[-1].resource_type == "AuditEvent"
    assert rows[-1].resource_ids == [entry["resource"]["id"] for entry in page["entry"]]
    # the newest page shows the previous reads, each naming what it returned
    newest = page["entry"][0]["resource"]
    assert newest["id"] == str(rows[1].id) and newest["action"] == "E"
    assert [entity["what"] for entity in newest["entity"][:-1]] == [
        {"reference": f"AuditEvent/{item}"} for item in rows[1].resource_ids
    ]


async def test_the_action_filter_agrees_with_the_mapping(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    pid = (await client.post(f"{BASE}/Patient", json=patient(), headers=a)).json()["id"]
    await client.post(f"{BASE}/Patient/$validate", json=patient(), headers=a)
    await client.get(f"{BASE}/Patient/{pid}/_history", headers=a)
    await client.get(f"{BASE}/metadata", headers=a)
    await client.delete(f"{BASE}/Patient/{pid}", headers=a)
    await client.get("/api/me", headers=a)
    everything = {event["id"]: event["action"] for event in await _all_events(client, a)}
    assert set(everything.values()) == {"C", "R", "D", "E"}
    for code in ("C", "R", "U", "D", "E"):
        found = _ids(await _all_events(client, a, action=code))
        expected = [event_id for event_id, action in everything.items() if action == code]
        # later reads (this loop's own searches) are newer than the snapshot: leave them out
        assert {event_id for event_id in found if event_id in everything} == set(expected), code
