"""Paging links with org-bound cursors, _count, _total, _summary=count and _sort."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.ehr_api.fhir_store.conftest import BASE, Fhir


async def _create(fhir: Fhir, body: dict[str, Any]) -> str:
    created = await fhir.client.post(f"{BASE}/{body['resourceType']}", json=body, headers=fhir.a)
    assert created.status_code == 201, created.text
    ident: str = created.json()["id"]
    return ident


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == relation), None)


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle["entry"]]


async def _patients(fhir: Fhir, count: int) -> list[str]:
    return [
        await _create(fhir, {"resourceType": "Patient", "name": [{"family": f"Page{n}"}]})
        for n in range(count)
    ]


async def test_next_and_previous_walk_every_page_once(fhir: Fhir) -> None:
    created = await _patients(fhir, 7)
    response = await fhir.client.get(
        f"{BASE}/Patient", params={"family": "page", "_count": "3"}, headers=fhir.a
    )
    first = response.json()
    assert first["total"] == 7 and _ids(first) == created[:3]
    assert _link(first, "previous") is None
    seen, bundle, pages = _ids(first), first, [first]
    while (url := _link(bundle, "next")) is not None:
        query = parse_qs(urlsplit(url).query)
        assert query["family"] == ["page"] and query["_count"] == ["3"]  # stateless links
        bundle = (await fhir.client.get(url, headers=fhir.a)).json()
        assert bundle["total"] == 7
        seen += _ids(bundle)
        pages.append(bundle)
    assert seen == created and len(pages) == 3
    back = _link(pages[2], "previous")
    assert back is not None
    assert _ids((await fhir.client.get(back, headers=fhir.a)).json()) == created[3:6]
    assert _link(pages[1], "self") == _link(pages[0], "next")


async def test_total_none_count_zero_and_summary_count(fhir: Fhir) -> None:
    await _patients(fhir, 4)
    url = f"{BASE}/Patient"
    without = await fhir.client.get(url, params={"_total": "none", "_count": "2"}, headers=fhir.a)
    assert "total" not in without.json() and len(without.json()["entry"]) == 2
    assert _link(without.json(), "next") is not None  # paging does not need the total
    only_total = (await fhir.client.get(url, params={"_count": "0"}, headers=fhir.a)).json()
    assert only_total["total"] == 4 and only_total["entry"] == []
    summary = (await fhir.client.get(url, params={"_summary": "count"}, headers=fhir.a)).json()
    assert summary["total"] == 4 and summary["entry"] == []
    capped = (await fhir.client.get(url, params={"_count": "5000"}, headers=fhir.a)).json()
    assert capped["total"] == 4 and len(capped["entry"]) == 4


async def test_cursor_is_bound_to_the_organisation_and_the_query(fhir: Fhir) -> None:
    created = await _patients(fhir, 3)
    await fhir.client.post(
        f"{BASE}/Patient", json={"resourceType": "Patient", "name": [{"family": "Page"}]},
        headers=fhir.b,
    )  # fmt: skip
    first = (
        await fhir.client.get(f"{BASE}/Patient", params={"_count": "1"}, headers=fhir.a)
    ).json()
    url = _link(first, "next")
    assert url is not None
    stolen = await fhir.client.get(url, headers=fhir.b)
    assert stolen.status_code == 400
    assert stolen.json()["issue"][0]["expression"] == ["_cursor"]
    assert stolen.json()["resourceType"] == "OperationOutcome"
    assert not any(ident in stolen.text for ident in created)
    cursor = parse_qs(urlsplit(url).query)["_cursor"][0]
    other_query = await fhir.client.get(
        f"{BASE}/Patient", params={"family": "x", "_cursor": cursor}, headers=fhir.a
    )
    assert other_query.status_code == 400
    forged = await fhir.client.get(f"{BASE}/Patient", params={"_cursor": "abc"}, headers=fhir.a)
    assert forged.status_code == 400
    # Page size may change between pages; the query may not.
    resized = await fhir.client.get(
        f"{BASE}/Patient", params={"_count": "2", "_cursor": cursor}, headers=fhir.a
    )
    assert _ids(resized.json()) == created[1:3]


async def test_sort(fhir: Fhir) -> None:
    def patient(family: str | None, birth: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"resourceType": "Patient"}
        if family:
            body["name"] = [{"family": family}]
        if birth:
            body["birthDate"] = birth
        return body

    zed = await _create(fhir, patient("Zed", "1990-01-01"))
    abe = await _create(fhir, patient("abe", "1970-01-01"))
    mid = await _create(fhir, patient("Mid", None))
    none = await _create(fhir, patient(None, "1980-01-01"))

    async def order(sort: str) -> list[str]:
        response = await fhir.client.get(f"{BASE}/Patient", params={"_sort": sort}, headers=fhir.a)
        assert response.status_code == 200, response.text
        return _ids(response.json())

    assert await order("family") == [abe, mid, zed, none]  # case-insensitive, missing last
    assert await order("-family") == [zed, mid, abe, none]
    assert await order("birthdate") == [abe, none, zed, mid]
    assert await order("-birthdate,family") == [zed, none, abe, mid]
    assert await order("-_lastUpdated") == [none, mid, abe, zed]
    assert await order("_id") == sorted([zed, abe, mid, none])
    bad = await fhir.client.get(f"{BASE}/Patient", params={"_sort": "nonsense"}, headers=fhir.a)
    assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["_sort"]


async def test_elements_and_summary_shape_the_matches_only(fhir: Fhir) -> None:
    org = await _create(fhir, {"resourceType": "Organization", "name": "Ward", "active": True})
    body = {
        "resourceType": "Patient",
        "gender": "female",
        "name": [{"family": "Shape"}],
        "managingOrganization": {"reference": f"Organization/{org}"},
    }
    pid = await _create(fhir, body)
    params = (("_elements", "name"), ("_include", "Patient:organization"))
    bundle = (await fhir.client.get(f"{BASE}/Patient", params=params, headers=fhir.a)).json()
    match, included = bundle["entry"]
    assert match["resource"]["id"] == pid and match["resource"]["name"] == body["name"]
    assert "gender" not in match["resource"]
    assert any(tag["code"] == "SUBSETTED" for tag in match["resource"]["meta"]["tag"])
    assert included["search"]["mode"] == "include" and included["resource"]["active"] is True
    assert "_elements=name" in (_link(bundle, "self") or "")
    summary = await fhir.client.get(f"{BASE}/Patient", params={"_summary": "true"}, headers=fhir.a)
    assert "managingOrganization" in summary.json()["entry"][0]["resource"]
    bad = await fhir.client.get(f"{BASE}/Patient", params={"_summary": "most"}, headers=fhir.a)
    assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["_summary"]


async def test_updates_while_paging_never_make_a_page_skip_a_resource(fhir: Fhir) -> None:
    """The default order pages by keyset: a resource updated behind the client moves to
    the end (and is seen again there) instead of shifting an unseen one off the next page,
    as an offset would."""
    created = await _patients(fhir, 7)
    params = {"family": "page", "_count": "3"}
    first = (await fhir.client.get(f"{BASE}/Patient", params=params, headers=fhir.a)).json()
    assert _ids(first) == created[:3]
    moved = created[0]
    body = {"resourceType": "Patient", "id": moved, "name": [{"family": "Page-moved"}]}
    assert (await fhir.client.put(f"{BASE}/Patient/{moved}", json=body, headers=fhir.a)).is_success
    seen, bundle = _ids(first), first
    while (url := _link(bundle, "next")) is not None:
        bundle = (await fhir.client.get(url, headers=fhir.a)).json()
        seen += _ids(bundle)
    assert seen == [*created, moved]  # every resource, the moved one again at its new place
    # Back from the last page: the page before it, as the client saw it.
    back = _link(bundle, "previous")
    assert back is not None
    assert _ids((await fhir.client.get(back, headers=fhir.a)).json()) == created[3:6]


async def test_an_explicit_sort_pages_too(fhir: Fhir) -> None:
    created = await _patients(fhir, 5)
    params = {"family": "page", "_count": "2", "_sort": "-_lastUpdated"}
    bundle = (await fhir.client.get(f"{BASE}/Patient", params=params, headers=fhir.a)).json()
    seen = _ids(bundle)
    while (url := _link(bundle, "next")) is not None:
        bundle = (await fhir.client.get(url, headers=fhir.a)).json()
        assert bundle["total"] == 5
        seen += _ids(bundle)
    assert seen == created[::-1]
