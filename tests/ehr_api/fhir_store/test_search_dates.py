"""Date, number and quantity search: the prefixes against stored ranges, by precision."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.ehr_api.fhir_store.conftest import BASE, Fhir


async def _create(fhir: Fhir, body: dict[str, Any]) -> str:
    created = await fhir.client.post(f"{BASE}/{body['resourceType']}", json=body, headers=fhir.a)
    assert created.status_code == 201, created.text
    ident: str = created.json()["id"]
    return ident


async def _ids(fhir: Fhir, resource_type: str, params: Any) -> set[str]:
    found = await fhir.client.get(f"{BASE}/{resource_type}", params=params, headers=fhir.a)
    assert found.status_code == 200, found.text
    return {entry["resource"]["id"] for entry in found.json()["entry"]}


def _observation(**value: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, **value}


async def test_birthdate_prefixes_follow_precision(fhir: Fhir) -> None:
    may15 = await _create(fhir, {"resourceType": "Patient", "birthDate": "1980-05-15"})
    may = await _create(fhir, {"resourceType": "Patient", "birthDate": "1980-05"})
    later = await _create(fhir, {"resourceType": "Patient", "birthDate": "1981-01-01"})
    expected = {
        "1980": {may15, may},
        "1980-05": {may15, may},
        "1980-05-15": {may15},  # the month-precision value is not inside the day
        "ne1980-05-15": {may, later},
        "gt1980-05-15": {may, later},  # May 1980 extends after the 15th
        "ge1980-05-15": {may15, may, later},
        "lt1980-05-15": {may},
        "le1980-05-15": {may15, may},
        "sa1980-05": {later},
        "eb1981": {may15, may},
        "gt1980": {later},
        "lt1900": set(),
        "1980-05-15T10:00:00Z": set(),  # a day is not inside a second
        "ge1980-05-15T10:00:00+02:00": {may15, may, later},
    }
    for value, ids in expected.items():
        assert await _ids(fhir, "Patient", {"birthdate": value}) == ids, value
    assert await _ids(fhir, "Patient", [("birthdate", "ge1980"), ("birthdate", "lt1981")]) == {
        may15,
        may,
    }


async def test_periods_and_zones(fhir: Fhir) -> None:
    open_ended = await _create(fhir, _observation(effectivePeriod={"start": "2024-03-01"}))
    closed = await _create(
        fhir, _observation(effectivePeriod={"start": "2024-01-01", "end": "2024-01-31"})
    )
    instant = await _create(fhir, _observation(effectiveDateTime="2024-02-10T23:30:00-02:00"))
    assert await _ids(fhir, "Observation", {"date": "gt2025"}) == {open_ended}
    assert await _ids(fhir, "Observation", {"date": "2024-01"}) == {closed}
    assert await _ids(fhir, "Observation", {"date": "sa2024-01-31"}) == {open_ended, instant}
    # 23:30 at -02:00 is 01:30 UTC on the 11th.
    assert await _ids(fhir, "Observation", {"date": "2024-02-11"}) == {instant}
    assert await _ids(fhir, "Observation", {"date": "2024-02-10"}) == set()
    assert await _ids(fhir, "Observation", {"date:missing": "true"}) == set()


async def test_last_updated(fhir: Fhir) -> None:
    first = await _create(fhir, {"resourceType": "Patient"})
    stamp = (await fhir.client.get(f"{BASE}/Patient/{first}", headers=fhir.a)).json()
    await asyncio.sleep(0.01)
    second = await _create(fhir, {"resourceType": "Patient"})
    moment = stamp["meta"]["lastUpdated"]
    assert await _ids(fhir, "Patient", {"_lastUpdated": f"gt{moment}"}) == {second}
    assert await _ids(fhir, "Patient", {"_lastUpdated": f"le{moment}"}) == {first}
    assert await _ids(fhir, "Patient", {"_lastUpdated": "ge2000-01-01"}) == {first, second}
    assert await _ids(fhir, "Patient", {"_lastUpdated": "lt2000"}) == set()


async def test_quantity_and_number_precision(fhir: Fhir) -> None:
    ucum = "http://unitsofmeasure.org"
    mg = await _create(
        fhir, _observation(valueQuantity={"value": 5.4, "system": ucum, "code": "mg"})
    )
    heavy = await _create(
        fhir, _observation(valueQuantity={"value": 100, "system": ucum, "code": "kg"})
    )
    text_unit = await _create(fhir, _observation(valueQuantity={"value": 5.4, "unit": "mg"}))
    expected = {
        f"5.4|{ucum}|mg": {mg},
        "5.4||mg": {mg, text_unit},  # code falls back to the unit text
        "5.4": {mg, text_unit},
        "5": {mg, text_unit},  # 5 covers [4.5, 5.5)
        "5.0": set(),  # 5.0 covers [4.95, 5.05)
        "gt5.4": {heavy},
        "ge5.4": {mg, heavy, text_unit},
        "lt100": {mg, text_unit},
        "le100": {mg, heavy, text_unit},
        "100": {heavy},
        "1e2": {heavy},
        f"ne5.4|{ucum}|mg": set(),
        "ap99": {heavy},
    }
    for value, ids in expected.items():
        assert await _ids(fhir, "Observation", {"value-quantity": value}) == ids, value
    bad = await fhir.client.get(
        f"{BASE}/Observation", params={"value-quantity": "gtabc"}, headers=fhir.a
    )
    assert bad.status_code == 400
    assert bad.json()["issue"][0]["expression"] == ["value-quantity"]
