"""History paging: `next` links with org-bound cursors, stable while new versions arrive."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.ehr_api.fhir_store.conftest import BASE, Fhir, patient


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == relation), None)


async def _walk(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> list[Any]:
    """Every page from `url` on, following `next` links (asserting each page is 200)."""
    pages = []
    next_url: str | None = url
    while next_url is not None:
        response = await client.get(next_url, headers=headers)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        next_url = _link(pages[-1], "next")
        assert len(pages) < 20, "paging does not end"
    return pages


def _versions(pages: list[Any]) -> list[tuple[str, str]]:
    return [
        (e["fullUrl"].rsplit("/", 1)[1], e["response"]["etag"]) for p in pages for e in p["entry"]
    ]


async def test_type_history_pages_through_every_version_once(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    for value in range(4):
        body = (await client.post(f"{BASE}/Patient", json=patient(str(value)), headers=a)).json()
        await client.put(f"{BASE}/Patient/{body['id']}", json={**body, "gender": "male"}, headers=a)
    whole = (await client.get(f"{BASE}/Patient/_history", headers=a)).json()
    assert whole["total"] == 8 and _link(whole, "next") is None

    pages = await _walk(client, f"{BASE}/Patient/_history?_count=3", a)
    assert [len(p["entry"]) for p in pages] == [3, 3, 2]
    assert all(p["total"] == 8 for p in pages)
    assert _versions(pages) == _versions([whole])  # same order, nothing repeated or lost
    second = _link(pages[0], "next")
    assert second is not None and "_count=3" in second and "_cursor=" in second
    assert _link(pages[1], "self") == second  # self names the page it is
    assert str(_link(pages[0], "self")).endswith("/Patient/_history?_count=3")


async def test_history_paging_keeps_since_and_ignores_new_versions(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    body = (await client.post(f"{BASE}/Patient", json=patient(), headers=a)).json()
    pid = body["id"]
    for gender in ("male", "other", "unknown", "female"):
        body = (
            await client.put(f"{BASE}/Patient/{pid}", json={**body, "gender": gender}, headers=a)
        ).json()
    since = "2000-01-01T00:00:00Z"
    first = (
        await client.get(
            f"{BASE}/Patient/{pid}/_history", params={"_count": "2", "_since": since}, headers=a
        )
    ).json()
    assert [e["response"]["etag"] for e in first["entry"]] == ['W/"5"', 'W/"4"']
    next_url = _link(first, "next")
    assert next_url is not None and "_since=" in next_url
    # A version written between pages goes to the top; the next page is unaffected.
    await client.put(f"{BASE}/Patient/{pid}", json={**body, "gender": "male"}, headers=a)
    rest = await _walk(client, next_url, a)
    assert [e["response"]["etag"] for p in rest for e in p["entry"]] == ['W/"3"', 'W/"2"', 'W/"1"']
    assert rest[0]["total"] == 6  # the total is counted afresh for each page

    future = await client.get(
        f"{BASE}/Patient/{pid}/_history",
        params={"_count": "2", "_since": "2999-01-01T00:00:00Z"},
        headers=a,
    )
    assert future.json()["total"] == 0 and _link(future.json(), "next") is None


async def test_history_cursor_is_bound_to_organisation_and_listing(fhir: Fhir) -> None:
    client, a, b = fhir.client, fhir.a, fhir.b
    for value in range(3):
        await client.post(f"{BASE}/Patient", json=patient(f"A-{value}"), headers=a)
        await client.post(f"{BASE}/Patient", json=patient(f"B-{value}"), headers=b)
    page = (await client.get(f"{BASE}/Patient/_history?_count=1", headers=a)).json()
    next_url = _link(page, "next")
    assert next_url is not None

    stolen = await client.get(next_url, headers=b)
    assert stolen.status_code == 400, stolen.text
    issue = stolen.json()["issue"][0]
    assert issue["severity"] == "error" and issue["code"] == "invalid"
    assert issue["expression"] == ["_cursor"]
    assert "another organisation" in issue["diagnostics"]

    cursor = httpx.URL(next_url).params["_cursor"]
    elsewhere = await client.get(f"{BASE}/Observation/_history?_cursor={cursor}", headers=a)
    assert elsewhere.status_code == 400
    assert "another listing" in elsewhere.json()["issue"][0]["diagnostics"]
    garbage = await client.get(f"{BASE}/Patient/_history?_cursor=%21%21not-a-cursor", headers=a)
    assert garbage.status_code == 400
    assert garbage.json()["issue"][0]["expression"] == ["_cursor"]

    # B's own paging works and shows only B's versions.
    pages = await _walk(client, f"{BASE}/Patient/_history?_count=2", b)
    ids = {e["resource"]["identifier"][0]["value"] for p in pages for e in p["entry"]}
    assert ids == {"B-0", "B-1", "B-2"}


async def _moment() -> str:
    await asyncio.sleep(0.01)
    moment = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    await asyncio.sleep(0.01)
    return moment


async def test_history_at_keeps_versions_current_during_the_period(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    body = (await client.post(f"{BASE}/Patient", json=patient(), headers=a)).json()
    pid = body["id"]
    first = await _moment()
    body = (
        await client.put(f"{BASE}/Patient/{pid}", json={**body, "gender": "male"}, headers=a)
    ).json()
    second = await _moment()
    await client.put(f"{BASE}/Patient/{pid}", json={**body, "gender": "other"}, headers=a)
    other = (await client.post(f"{BASE}/Patient", json=patient("later"), headers=a)).json()

    async def etags(url: str, at: str) -> list[str]:
        response = await client.get(url, params={"_at": at}, headers=a)
        assert response.status_code == 200, response.text
        assert f"_at={at[:4]}" in response.json()["link"][0]["url"]
        return [e["response"]["etag"] for e in response.json()["entry"]]

    instance = f"{BASE}/Patient/{pid}/_history"
    assert await etags(instance, first) == ['W/"1"']
    assert await etags(instance, second) == ['W/"2"']
    assert await etags(instance, first[:4]) == ['W/"3"', 'W/"2"', 'W/"1"']  # the whole year
    assert await etags(instance, "1999") == []
    typed = await client.get(f"{BASE}/Patient/_history", params={"_at": second}, headers=a)
    assert {e["resource"]["id"] for e in typed.json()["entry"]} == {pid}  # not yet `other`
    assert other["id"] != pid
    bad = await client.get(instance, params={"_at": "last week"}, headers=a)
    assert bad.status_code == 400
    assert bad.json()["issue"][0]["expression"] == ["_at"]


def _observation(patient_ref: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": patient_ref},
    }


async def test_system_history_pages_through_every_type(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    # The same id under two types: the keyset must tell them apart.
    same = {**patient("s-1"), "id": "same"}
    assert (await client.put(f"{BASE}/Patient/same", json=same, headers=a)).status_code == 201
    obs = {**_observation("Patient/same"), "id": "same"}
    assert (await client.put(f"{BASE}/Observation/same", json=obs, headers=a)).status_code == 201
    for n in range(3):
        await client.post(f"{BASE}/Patient", json=patient(f"s-{n + 2}"), headers=a)
    assert (await client.delete(f"{BASE}/Observation/same", headers=a)).status_code == 200
    await client.post(f"{BASE}/Patient", json=patient("theirs"), headers=fhir.b)

    whole = (await client.get(f"{BASE}/_history", headers=a)).json()
    assert whole["type"] == "history" and whole["total"] == 6
    keys = [
        (entry["request"]["method"], entry["fullUrl"].split("/R4/")[1]) for entry in whole["entry"]
    ]
    assert keys[0] == ("DELETE", "Observation/same")  # newest first
    assert ("POST", "Patient/same") in keys and ("POST", "Observation/same") in keys
    pages = await _walk(client, f"{BASE}/_history?_count=2", a)
    assert [len(page["entry"]) for page in pages] == [2, 2, 2]
    paged = [
        entry["fullUrl"] + entry["response"]["etag"] for page in pages for entry in page["entry"]
    ]
    assert paged == [entry["fullUrl"] + entry["response"]["etag"] for entry in whole["entry"]]
    since = (await client.get(f"{BASE}/_history", params={"_since": "2999-01-01T00:00:00Z"},
                              headers=a)).json()  # fmt: skip
    assert since["total"] == 0


async def test_system_history_stays_in_the_organisation_and_its_permissions(fhir: Fhir) -> None:
    client, a, b = fhir.client, fhir.a, fhir.b
    await client.post(f"{BASE}/Patient", json=patient("mine"), headers=a)
    await client.post(f"{BASE}/Patient", json=patient("theirs"), headers=b)
    first = (await client.get(f"{BASE}/_history?_count=1", headers=a)).json()
    assert first["total"] == 1
    ours = (await client.get(f"{BASE}/_history", headers=a)).json()
    assert [e["resource"]["identifier"][0]["value"] for e in ours["entry"]] == ["mine"]
    # B cannot page with A's cursor; a type-level cursor is no system-level one either.
    await client.post(f"{BASE}/Patient", json=patient("mine-2"), headers=a)
    a_next = _link((await client.get(f"{BASE}/_history?_count=1", headers=a)).json(), "next")
    assert a_next is not None
    assert (await client.get(a_next, headers=b)).status_code == 400
    typed = _link((await client.get(f"{BASE}/Patient/_history?_count=1", headers=a)).json(), "next")
    assert typed is not None
    cursor = typed.split("_cursor=")[1]
    crossed = await client.get(f"{BASE}/_history", params={"_cursor": cursor}, headers=a)
    assert crossed.status_code == 400
    # An auditor reads no stored type: 403, not an empty or partial history.
    auditor = fhir.harness.auth("org-a", "auditor")
    assert (await client.get(f"{BASE}/_history", headers=auditor)).status_code == 403
