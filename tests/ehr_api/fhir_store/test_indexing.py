"""The indexer (content -> rows) and the write path that keeps the index tables current.

Unit expectations pin the value semantics the query side relies on (date precision
ranges in UTC, significant-digit number ranges, normalised strings, token systems,
reference targets); the corpus tests run every R4 example of the Microsoft FHIR server
through the indexer and check the direct walk gives what fhirpathpy gives; the API tests
check create/update/delete replace the rows in the resource's own transaction, per
organisation.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from ehr_api.events.models import EventLog
from ehr_api.fhir_store import pg_write, service
from ehr_api.fhir_store.indexing import (
    FAR_FUTURE,
    FAR_PAST,
    IndexRows,
    compile_expression,
    date_range,
    index,
    normalise,
    number_range,
)
from ehr_api.fhir_store.models import (
    FhirResource,
    FhirResourceHistory,
    FhirSearchDate,
    FhirSearchNumber,
    FhirSearchReference,
    FhirSearchString,
    FhirSearchToken,
)
from ehr_api.fhir_store.search_params import COMMON, params_for
from ehr_api.tenants.models import Organization
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from tests.ehr_api.fhir_store.conftest import BASE, Fhir, patient

R4_EXAMPLES = "fhir-server-examples/src/Microsoft.Health.Fhir.Tests.Common/TestFiles/R4"
TABLES = (FhirSearchToken, FhirSearchString, FhirSearchDate, FhirSearchNumber, FhirSearchReference)
Json = dict[str, Any]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def _param(rows: list[Any], name: str) -> set[tuple[Any, ...]]:
    return {row[1:] for row in rows if row[0] == name}


OBSERVATION: Json = {
    "resourceType": "Observation",
    "status": "final",
    "category": [{"coding": [{"system": "http://hl7.org/obs-cat", "code": "vital-signs"}]}],
    "code": {
        "coding": [
            {"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"},
            {"system": "http://snomed.info/sct", "code": "27113001"},
            {"display": "no code: not indexed"},
        ],
        "text": "Weight",
    },
    "subject": {"reference": "Patient/p1"},
    "encounter": {"reference": "http://other.example/fhir/Encounter/e1/_history/2"},
    "effectiveDateTime": "2016-03-28T09:30:00+01:00",
    "performer": [
        {"reference": "Practitioner/pr1"},
        {"reference": "urn:uuid:6b1a0bd4-5c3a-4a1f-9c43-21a2c8f7d8c1"},
        {"reference": "#contained-1"},
        {"reference": "Basic/not-a-performer-type"},
    ],
    "valueQuantity": {"value": 5.4, "unit": "mmol/L"},
    "component": [
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
         "valueQuantity": {"value": 120, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
        {"code": {"text": "note"}, "valueString": "not a quantity"},
    ],
}  # fmt: skip


# -- value semantics --------------------------------------------------------------------


def test_dates_cover_their_precision_in_utc() -> None:
    assert date_range("1974") == (utc(1974, 1, 1), utc(1975, 1, 1))
    assert date_range("1974-12") == (utc(1974, 12, 1), utc(1975, 1, 1))
    assert date_range("2024-02") == (utc(2024, 2, 1), utc(2024, 3, 1))
    assert date_range("2024-02-29") == (utc(2024, 2, 29), utc(2024, 3, 1))
    assert date_range("2016-03-28T09:30:00+01:00") == (
        utc(2016, 3, 28, 8, 30),
        utc(2016, 3, 28, 8, 30, 1),
    )
    assert date_range("2016-03-28T09:30:00.25Z") == (
        datetime(2016, 3, 28, 9, 30, 0, 250000, tzinfo=UTC),
        datetime(2016, 3, 28, 9, 30, 0, 260000, tzinfo=UTC),
    )
    low, high = date_range("2016-03-28T23:30:00-05:00") or (None, None)
    assert low == datetime(2016, 3, 28, 23, 30, tzinfo=timezone(-timedelta(hours=5)))
    assert low is not None and low.tzinfo == UTC and high == low + timedelta(seconds=1)
    assert date_range("9999-12") == (utc(9999, 12, 1), FAR_FUTURE)
    assert date_range("2024-02-30") is None
    assert date_range("last tuesday") is None


def test_numbers_cover_their_significant_digits() -> None:
    assert number_range(5.4) == pytest.approx((5.35, 5.45))
    assert number_range(100) == (99.5, 100.5)
    assert number_range(100.0) == pytest.approx((99.95, 100.05))
    assert number_range("0.0010") == pytest.approx((0.00095, 0.00105))
    assert number_range(True) is None
    assert number_range("NaN") is None
    assert number_range("five") is None


def test_strings_are_normalised_for_matching() -> None:
    assert normalise("  Ćmielów \t SMITH ") == "cmielow smith"
    assert normalise("Straße") == "strasse"
    assert normalise("x" * 300) == "x" * 255


# -- content -> rows --------------------------------------------------------------------


def test_a_patient_indexes_into_every_kind_of_row() -> None:
    rows = index(
        "Patient",
        {
            "resourceType": "Patient",
            "identifier": [
                {"system": "urn:mrn", "value": "123"},
                {"value": "no-system"},
                {"system": "urn:mrn", "value": "123"},  # duplicates collapse
            ],
            "active": True,
            "name": [{"family": "Núñez", "given": ["María", "José"], "prefix": ["Dr."]}],
            "telecom": [
                {"system": "phone", "value": "555-1234"},
                {"system": "email", "value": "maria@example.org"},
            ],
            "gender": "female",
            "birthDate": "1974-12",
            "address": [{"line": ["1 Main St"], "city": "Springfield", "postalCode": "12345"}],
            "generalPractitioner": [{"reference": "Practitioner/gp1"}],
            "managingOrganization": {"reference": "Organization/o1"},
        },
    )
    assert _param(rows.tokens, "identifier") == {("urn:mrn", "123"), ("", "no-system")}
    assert _param(rows.tokens, "active") == {("", "true")}
    assert _param(rows.tokens, "gender") == {("", "female")}
    assert _param(rows.tokens, "deceased") == {("", "false")}
    assert _param(rows.tokens, "phone") == {("", "555-1234")}
    assert _param(rows.tokens, "email") == {("", "maria@example.org")}
    assert _param(rows.tokens, "telecom") == {("", "555-1234"), ("", "maria@example.org")}
    assert _param(rows.dates, "birthdate") == {(utc(1974, 12, 1), utc(1975, 1, 1))}
    assert _param(rows.strings, "family") == {("nunez", "Núñez")}
    assert _param(rows.strings, "given") == {("maria", "María"), ("jose", "José")}
    assert _param(rows.strings, "name") == {
        ("nunez", "Núñez"),
        ("maria", "María"),
        ("jose", "José"),
        ("dr.", "Dr."),
        ("dr. maria jose nunez", "Dr. María José Núñez"),
    }
    assert _param(rows.strings, "address") == {
        ("1 main st", "1 Main St"),
        ("springfield", "Springfield"),
        ("12345", "12345"),
    }
    assert _param(rows.strings, "address-city") == {("springfield", "Springfield")}
    assert _param(rows.references, "general-practitioner") == {
        ("Practitioner", "gp1", "Practitioner/gp1")
    }
    assert _param(rows.references, "organization") == {("Organization", "o1", "Organization/o1")}
    assert rows.numbers == []


def test_an_observation_indexes_codes_quantities_dates_and_references() -> None:
    rows = index("Observation", OBSERVATION)
    loinc, snomed = ("http://loinc.org", "29463-7"), ("http://snomed.info/sct", "27113001")
    assert _param(rows.tokens, "code") == {loinc, snomed}
    assert _param(rows.tokens, "combo-code") == {loinc, snomed, ("http://loinc.org", "8480-6")}
    assert _param(rows.tokens, "component-code") == {("http://loinc.org", "8480-6")}
    assert _param(rows.tokens, "status") == {("", "final")}
    assert _param(rows.dates, "date") == {(utc(2016, 3, 28, 8, 30), utc(2016, 3, 28, 8, 30, 1))}
    [(low, high, system, code)] = _param(rows.numbers, "value-quantity")
    assert (low, high) == pytest.approx((5.35, 5.45))
    assert (system, code) == ("", "mmol/L")  # no code: the unit stands in
    assert _param(rows.numbers, "component-value-quantity") == {
        (119.5, 120.5, "http://unitsofmeasure.org", "mm[Hg]")
    }
    assert _param(rows.numbers, "combo-value-quantity") == {
        (low, high, "", "mmol/L"),
        (119.5, 120.5, "http://unitsofmeasure.org", "mm[Hg]"),
    }
    assert _param(rows.strings, "value-string") == set()
    assert _param(rows.references, "subject") == {("Patient", "p1", "Patient/p1")}
    assert _param(rows.references, "patient") == {("Patient", "p1", "Patient/p1")}
    # Absolute: another server's Encounter/e1 is not our Encounter/e1; kept as url only.
    assert _param(rows.references, "encounter") == {
        ("", "", "http://other.example/fhir/Encounter/e1/_history/2")
    }
    # urn:uuid kept as url only; #contained skipped; a type outside the targets dropped.
    assert _param(rows.references, "performer") == {
        ("Practitioner", "pr1", "Practitioner/pr1"),
        ("", "", "urn:uuid:6b1a0bd4-5c3a-4a1f-9c43-21a2c8f7d8c1"),
    }


def test_patient_parameters_keep_only_references_to_patients() -> None:
    group = {**OBSERVATION, "subject": {"reference": "Group/g1"}}
    rows = index("Observation", group)
    assert _param(rows.references, "subject") == {("Group", "g1", "Group/g1")}
    assert _param(rows.references, "patient") == set()
    appointment = index(
        "Appointment",
        {
            "resourceType": "Appointment",
            "status": "booked",
            "participant": [
                {"actor": {"reference": "Patient/p1"}, "status": "accepted"},
                {"actor": {"reference": "Practitioner/d1"}, "status": "accepted"},
                {"actor": {"reference": "Location/l1"}, "status": "accepted"},
            ],
        },
    ).references
    assert _param(appointment, "patient") == {("Patient", "p1", "Patient/p1")}
    assert _param(appointment, "practitioner") == {("Practitioner", "d1", "Practitioner/d1")}
    assert _param(appointment, "location") == {("Location", "l1", "Location/l1")}
    assert len(_param(appointment, "actor")) == 3


def test_periods_timings_and_choice_types() -> None:
    encounter = index(
        "Encounter",
        {
            "resourceType": "Encounter",
            "status": "in-progress",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "period": {"start": "2024-03-01T10:00:00Z"},
        },
    )
    assert _param(encounter.dates, "date") == {(utc(2024, 3, 1, 10), FAR_FUTURE)}
    assert _param(encounter.tokens, "class") == {
        ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "IMP")
    }
    request = index(
        "ServiceRequest",
        {
            "resourceType": "ServiceRequest",
            "status": "active",
            "intent": "order",
            "subject": {"reference": "Patient/p1"},
            "identifier": [{"system": "urn:accession", "value": "ACC-1"}],
            "occurrenceTiming": {
                "event": ["2024-05-01", "2024-05-03"],
                "repeat": {"boundsPeriod": {"end": "2024-06"}},
            },
        },
    )
    assert _param(request.tokens, "identifier") == {("urn:accession", "ACC-1")}
    assert _param(request.dates, "occurrence") == {
        (utc(2024, 5, 1), utc(2024, 5, 2)),
        (utc(2024, 5, 3), utc(2024, 5, 4)),
        (FAR_PAST, utc(2024, 7, 1)),
    }
    deceased = index("Patient", {"resourceType": "Patient", "deceasedDateTime": "2020-01-02"})
    assert _param(deceased.tokens, "deceased") == {("", "true")}
    assert _param(deceased.dates, "death-date") == {(utc(2020, 1, 2), utc(2020, 1, 3))}
    text_only = index(
        "Observation",
        {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
         "valueCodeableConcept": {"text": "Positive", "coding": [{"code": "POS"}]}},
    )  # fmt: skip
    assert _param(text_only.strings, "value-string") == {("positive", "Positive")}
    assert _param(text_only.tokens, "value-concept") == {("", "POS")}


def test_long_values_are_cut_and_stay_unique() -> None:
    long = "A" * 300
    rows = index(
        "Patient",
        {
            "resourceType": "Patient",
            "identifier": [{"system": "s" * 300, "value": long}, {"system": "s" * 300,
                                                                 "value": long + "B"}],
            "name": [{"family": long}, {"family": long + "C"}],
        },
    )  # fmt: skip
    assert _param(rows.tokens, "identifier") == {("s" * 255, "A" * 255)}
    assert _param(rows.strings, "family") == {("a" * 255, "A" * 255)}


def test_odd_content_is_skipped_not_fatal() -> None:
    rows = index(
        "Patient",
        {
            "resourceType": "Patient",
            "birthDate": "not a date",
            "name": [{"given": [None, 7]}, "not an object"],
            "identifier": {"system": "urn:x"},
            "generalPractitioner": [{"display": "logical only"}, {"reference": ""}],
        },
    )
    assert rows == IndexRows(tokens=[("deceased", "", "false")])


# -- the corpus -------------------------------------------------------------------------


def _examples(corpus_dir: Path) -> Iterator[tuple[str, Json]]:
    for path in sorted((corpus_dir / R4_EXAMPLES).glob("*.json")):
        content = json.loads(path.read_text(encoding="utf-8-sig"))
        if not isinstance(content, dict) or "resourceType" not in content:
            continue
        yield path.name, content
        for number, entry in enumerate(content.get("entry") or ()):
            if content["resourceType"] == "Bundle" and "resource" in entry:
                yield f"{path.name}#{number}", entry["resource"]


def test_every_corpus_example_indexes(corpus_dir: Path) -> None:
    counted: dict[str, int] = {}
    for _, content in _examples(corpus_dir):
        rows = index(content["resourceType"], content)
        counted[content["resourceType"]] = counted.get(content["resourceType"], 0) + len(rows)
    assert sum(counted.values()) > 1000
    for type_ in ("Patient", "Observation", "DiagnosticReport", "Encounter", "ImagingStudy",
                  "ServiceRequest", "Appointment", "DocumentReference", "Provenance",
                  "Practitioner", "PractitionerRole", "Organization", "Location"):  # fmt: skip
        assert counted.get(type_, 0) > 0, type_


def test_the_direct_walk_agrees_with_fhirpathpy_on_the_corpus(corpus_dir: Path) -> None:
    compared = 0
    for name, content in _examples(corpus_dir):
        type_ = content["resourceType"]
        for param in params_for(type_).values():
            if param.name in COMMON:
                continue
            fast = compile_expression(type_, param.expression)(content)
            engine = compile_expression(type_, param.expression, fast=False)(content)
            assert sorted(map(repr, fast)) == sorted(map(repr, engine)), (name, param.name)
            compared += len(fast)
    assert compared > 1000


# -- the write path ---------------------------------------------------------------------


async def _org(fhir: Fhir, slug: str) -> uuid.UUID:
    async with fhir.harness.database.platform_session(read_only=True) as db:
        org_id: uuid.UUID = await db.scalar(
            select(Organization.id).where(Organization.slug == slug)
        )
    return org_id


async def _rows(fhir: Fhir, org_id: uuid.UUID, resource_id: str) -> dict[str, set[Any]]:
    """Every index row of one resource, table by table, read in the org's own session."""
    found: dict[str, set[Any]] = {}
    async with fhir.harness.database.org_session(org_id) as db:
        for table in TABLES:
            query = select(table).where(table.resource_id == resource_id)
            rows = (await db.execute(query)).scalars()
            found[table.__tablename__] = {(row.org_id, row.param, *_values(row)) for row in rows}
    return found


def _values(row: Any) -> tuple[Any, ...]:
    columns = ("system", "code", "value", "exact", "low", "high", "target_type", "target_id")
    return tuple(getattr(row, column) for column in columns if hasattr(row, column))


async def test_create_update_delete_replace_the_rows(fhir: Fhir) -> None:
    client, a = fhir.client, fhir.a
    org_a = await _org(fhir, "org-a")
    body = {
        **patient("MRN-1"),
        "birthDate": "1974-12",
        "generalPractitioner": [{"reference": "Practitioner/gp1"}],
    }
    created = await client.post(f"{BASE}/Patient", json=body, headers=a)
    assert created.status_code == 201
    pid = created.json()["id"]
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{pid}"},
        "length": {"value": 30, "unit": "min"},
        "period": {"end": "2024-01-01"},
        "location": [{"location": {"reference": "Location/l1"}, "period": {"start": "2024"}}],
    }
    assert (await client.post(f"{BASE}/Encounter", json=encounter, headers=a)).status_code == 201

    rows = await _rows(fhir, org_a, pid)
    assert ("identifier", "urn:mrn", "MRN-1") in {r[1:] for r in rows["fhir_search_token"]}
    assert {r[1:] for r in rows["fhir_search_date"]} == {
        ("birthdate", utc(1974, 12, 1), utc(1975, 1, 1))
    }
    assert ("family", "doe", "Doe") in {r[1:] for r in rows["fhir_search_string"]}
    assert {r[1:] for r in rows["fhir_search_reference"]} == {
        ("general-practitioner", "Practitioner", "gp1")
    }
    assert all(r[0] == org_a for table in rows.values() for r in table)

    # An update replaces the rows: the old identifier, name, date and reference are gone.
    changed = {**patient("MRN-2"), "id": pid, "name": [{"family": "Roe"}]}
    updated = await client.put(f"{BASE}/Patient/{pid}", json=changed, headers=a)
    assert updated.status_code == 200
    rows = await _rows(fhir, org_a, pid)
    tokens = {r[1:] for r in rows["fhir_search_token"]}
    assert ("identifier", "urn:mrn", "MRN-2") in tokens
    assert ("identifier", "urn:mrn", "MRN-1") not in tokens
    assert {r[1:] for r in rows["fhir_search_string"]} == {
        ("family", "roe", "Roe"),
        ("name", "roe", "Roe"),
    }
    assert rows["fhir_search_date"] == rows["fhir_search_reference"] == set()

    # A delete leaves no index rows at all; the encounter's own rows are untouched.
    assert (await client.delete(f"{BASE}/Patient/{pid}", headers=a)).status_code == 200
    assert all(not table for table in (await _rows(fhir, org_a, pid)).values())
    search = await client.get(f"{BASE}/Patient", params={"identifier": "urn:mrn|MRN-2"}, headers=a)
    assert search.json()["total"] == 0
    async with fhir.harness.database.org_session(org_a) as db:
        numbers = (await db.execute(select(FhirSearchNumber))).scalars().all()
        references = (await db.execute(select(FhirSearchReference))).scalars().all()
    assert [(n.param, n.low, n.high, n.code) for n in numbers] == [("length", 29.5, 30.5, "min")]
    # Open ends survive the round trip through both databases.
    async with fhir.harness.database.org_session(org_a) as db:
        dates = (await db.execute(select(FhirSearchDate))).scalars().all()
    assert {(d.param, d.low, d.high) for d in dates} == {
        ("date", FAR_PAST, utc(2024, 1, 2)),
        ("location-period", utc(2024, 1, 1), FAR_FUTURE),
    }
    assert ("subject", "Patient", pid) in {
        (r.param, r.target_type, r.target_id) for r in references
    }


async def test_a_write_over_a_version_no_longer_current_writes_nothing(fhir: Fhir) -> None:
    # The one-statement write names the version it follows, so an update that read
    # version 1 while another write made version 2 changes nothing at all (no current
    # row, history, index or event), and says so; the service then retries under lock.
    if not fhir.harness.database.is_postgresql:
        pytest.skip("the one-statement write is PostgreSQL's (SQLite holds the database)")

    org_a = await _org(fhir, "org-a")
    created = await fhir.client.post(f"{BASE}/Patient", json=patient("MRN-1"), headers=fhir.a)
    pid, first = created.json()["id"], created.json()
    before = await _rows(fhir, org_a, pid)

    async def write(version: int) -> bool:
        content = {**patient("MRN-9"), "id": pid, "meta": {"versionId": str(version)}}
        row = FhirResource(
            org_id=org_a, resource_type="Patient", id=pid, version_id=version,
            last_updated=datetime.now(UTC), deleted=False, content=content,
        )  # fmt: skip
        async with fhir.harness.database.org_writes(org_a, atomic=False) as db:
            return await pg_write.write_version(
                db, org_id=org_a, row=row, existed=True, rows=index("Patient", content),
                event_type="fhir.updated",
            )  # fmt: skip

    assert await write(3) is False  # follows version 2, but the current one is 1
    assert (await fhir.client.get(f"{BASE}/Patient/{pid}", headers=fhir.a)).json() == first
    assert await _rows(fhir, org_a, pid) == before
    async with fhir.harness.database.org_session(org_a, read_only=True) as db:
        history = await db.scalar(
            select(func.count())
            .select_from(FhirResourceHistory)
            .where(FhirResourceHistory.id == pid)
        )
        events = await db.scalar(
            select(func.count()).select_from(EventLog).where(EventLog.resource_id == pid)
        )
    assert (history, events) == (1, 1)

    assert await write(2) is True
    tokens = {r[1:] for r in (await _rows(fhir, org_a, pid))["fhir_search_token"]}
    assert ("identifier", "urn:mrn", "MRN-9") in tokens
    assert ("identifier", "urn:mrn", "MRN-1") not in tokens


def _expected(org_id: uuid.UUID, content: Json) -> dict[str, set[Any]]:
    """The rows `_rows` should find for `content`, from the indexer itself."""
    rows = index(content["resourceType"], content)
    return {
        "fhir_search_token": {(org_id, *row) for row in rows.tokens},
        "fhir_search_string": {(org_id, *row) for row in rows.strings},
        "fhir_search_date": {(org_id, *row) for row in rows.dates},
        "fhir_search_number": {(org_id, p, s, c, low, high) for p, low, high, s, c in rows.numbers},
        "fhir_search_reference": {(org_id, p, t, i) for p, t, i, _ in rows.references},
    }


async def test_updates_that_keep_drop_and_add_values_leave_exactly_the_new_rows(
    fhir: Fhir,
) -> None:
    # PostgreSQL replaces the rows inside one statement (insert the new ones unless they
    # are there, delete the old ones not among them): rows that stay must neither clash
    # nor vanish, on either database.
    client, a = fhir.client, fhir.a
    org_a = await _org(fhir, "org-a")
    created = await client.post(f"{BASE}/Observation", json=OBSERVATION, headers=a)
    assert created.status_code == 201, created.text
    oid = created.json()["id"]
    kept_code_new_value = {
        **OBSERVATION,
        "id": oid,
        "category": [
            *OBSERVATION["category"],
            {"coding": [{"system": "http://hl7.org/obs-cat", "code": "laboratory"}]},
        ],
        "performer": [{"reference": "Practitioner/pr2"}],
        "valueQuantity": {"value": 6.1, "unit": "mmol/L"},
    }
    versions = (kept_code_new_value, kept_code_new_value, {**OBSERVATION, "id": oid})
    for number, body in enumerate(versions, start=2):
        updated = await client.put(f"{BASE}/Observation/{oid}", json=body, headers=a)
        assert updated.status_code == 200, updated.text
        assert updated.json()["meta"]["versionId"] == str(number)
        stored = (await client.get(f"{BASE}/Observation/{oid}", headers=a)).json()
        found, expected = await _rows(fhir, org_a, oid), _expected(org_a, stored)
        assert found == expected, f"version {number}"
        assert found["fhir_search_token"] and found["fhir_search_number"]
    lab = await client.get(
        f"{BASE}/Observation", params={"category": "laboratory", "_id": oid}, headers=a
    )
    assert lab.json()["total"] == 0  # the category added in version 2 left with version 4


async def test_a_failed_transaction_leaves_no_index_rows(fhir: Fhir) -> None:
    org_a = await _org(fhir, "org-a")

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with fhir.harness.database.org_session(org_a) as db:
            await service.create(
                db, org_id=org_a, resource_type="Patient", body={**patient(), "birthDate": "2000"}
            )
            assert await db.scalar(select(func.count()).select_from(FhirSearchDate)) == 1
            raise Boom
    async with fhir.harness.database.platform_session(read_only=True) as db:
        for table in TABLES:
            assert await db.scalar(select(func.count()).select_from(table)) == 0, table


async def test_organisations_never_see_each_others_rows(fhir: Fhir) -> None:
    client, a, b = fhir.client, fhir.a, fhir.b
    org_a, org_b = await _org(fhir, "org-a"), await _org(fhir, "org-b")
    # The same id in both organisations: ids are only unique per organisation.
    shared = "shared-1"
    for headers, mrn in ((a, "A-1"), (b, "B-1")):
        body = {**patient(mrn), "id": shared, "birthDate": "1980",
                "managingOrganization": {"reference": "Organization/o1"}}  # fmt: skip
        assert (
            await client.put(f"{BASE}/Patient/{shared}", json=body, headers=headers)
        ).status_code == 201

    rows_a, rows_b = await _rows(fhir, org_a, shared), await _rows(fhir, org_b, shared)
    for rows in (rows_a, rows_b):  # a Patient has no number parameter values
        assert all(rows[table.__tablename__] for table in TABLES if table is not FhirSearchNumber)
    assert {r[0] for table in rows_a.values() for r in table} == {org_a}
    assert {r[0] for table in rows_b.values() for r in table} == {org_b}
    assert ("identifier", "urn:mrn", "B-1") not in {r[1:] for r in rows_a["fhir_search_token"]}

    if make_url(fhir.harness.settings.database_url).get_backend_name() == "postgresql":
        # Raw SQL that forgets the org filter sees only its own rows (row-level security).
        async with fhir.harness.database.org_session(org_a) as db:
            for table in TABLES:
                if table is not FhirSearchNumber:
                    sql = text(f"SELECT DISTINCT org_id FROM {table.__tablename__}")
                    assert {row[0] for row in await db.execute(sql)} == {org_a}, table

    # Deleting A's resource leaves B's rows as they were.
    assert (await client.delete(f"{BASE}/Patient/{shared}", headers=a)).status_code == 200
    assert all(not table for table in (await _rows(fhir, org_a, shared)).values())
    assert await _rows(fhir, org_b, shared) == rows_b
