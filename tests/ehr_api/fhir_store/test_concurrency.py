"""Concurrent writes of one resource: they take turns (row lock) and no version is lost or
written twice; concurrent creates of one id end in one resource and a 409, never a 500."""

from __future__ import annotations

import asyncio

import pytest

from tests.ehr_api.fhir_store.conftest import BASE, Fhir, patient


async def test_concurrent_updates_take_turns(fhir: Fhir) -> None:
    if not fhir.harness.database.is_postgresql:
        pytest.skip("SQLite runs one write transaction at a time: nothing to race")
    created = await fhir.client.post(f"{BASE}/Patient", json=patient(), headers=fhir.a)
    url = f"{BASE}/Patient/{created.json()['id']}"
    body = created.json()

    async def put(n: int) -> int:
        answer = await fhir.client.put(
            url, json={**body, "birthDate": f"19{n:02d}"}, headers=fhir.a
        )
        return answer.status_code

    statuses = await asyncio.gather(*(put(n) for n in range(8)))
    assert statuses == [200] * 8
    history = (await fhir.client.get(f"{url}/_history", headers=fhir.a)).json()
    versions = sorted(int(e["resource"]["meta"]["versionId"]) for e in history["entry"])
    assert versions == list(range(1, 10))  # version 1 + eight updates, none lost


async def test_concurrent_creates_of_one_id_answer_409_not_500(fhir: Fhir) -> None:
    if not fhir.harness.database.is_postgresql:
        pytest.skip("SQLite runs one write transaction at a time: nothing to race")
    url = f"{BASE}/Patient/racer"

    async def put() -> int:
        answer = await fhir.client.put(url, json={**patient(), "id": "racer"}, headers=fhir.a)
        return answer.status_code

    statuses = await asyncio.gather(*(put() for _ in range(6)))
    assert 201 in statuses
    assert set(statuses) <= {200, 201, 409}, statuses
    read = await fhir.client.get(url, headers=fhir.a)
    assert read.status_code == 200
