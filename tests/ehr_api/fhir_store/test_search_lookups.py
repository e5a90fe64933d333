"""Plain `_id` and token searches run as fixed statements (search_lookups.py): they must
answer exactly what the general path answers (the same matches in the same order, totals
and pages), only from the caller's organisation and never a deleted resource.

The general path is forced by adding a criterion every resource meets
(`_lastUpdated=gt1900`): two criteria never take the fixed statement.
"""

from __future__ import annotations

from typing import Any

import pytest
from ehr_api.fhir_store import search_lookups
from ehr_api.fhir_store.search import _single_fixed_lookup

from tests.ehr_api.fhir_store.conftest import BASE, Fhir, patient

EVERYTHING = ("_lastUpdated", "gt1900")
LONG = "L" * 300  # longer than the index column: stored and searched cut to 255


@pytest.mark.parametrize(
    ("name", "value", "fixed"),
    [
        ("identifier", "urn:mrn|M1", True),
        ("identifier", "M1", True),
        ("_id", "abc", True),
        ("gender", "female", True),
        ("identifier", "|M1", False),  # no system: a different test
        ("identifier", "urn:mrn|", False),  # any code of the system
        ("identifier", "a|b|c", False),
        ("identifier", "M1,M2", False),  # a list
        ("identifier", r"M\,1", False),  # an escape
        ("identifier:not", "M1", False),  # a modifier
        ("subject.identifier", "M1", False),  # a chain
        ("name", "Doe", False),  # a string parameter
        ("birthdate", "2000", False),  # a date parameter
        ("nonsense", "x", False),  # unknown: the general path reports it
    ],
)
def test_only_the_plain_forms_take_a_fixed_statement(name: str, value: str, fixed: bool) -> None:
    assert (search_lookups.fixed_lookup("Patient", name, value) is not None) is fixed


def test_a_fixed_statement_needs_a_single_criterion() -> None:
    one = [("identifier", "M1"), ("_count", "5"), ("_include", "Patient:link")]
    assert _single_fixed_lookup("Patient", one) is not None
    assert _single_fixed_lookup("Patient", [("identifier", "M1"), EVERYTHING]) is None
    assert _single_fixed_lookup("Patient", [("_count", "5")]) is None


async def _page(fhir: Fhir, params: list[tuple[str, str]], url: str | None = None) -> Any:
    response = await (
        fhir.client.get(url, headers=fhir.a)
        if url
        else fhir.client.get(f"{BASE}/Patient", params=params, headers=fhir.a)
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _pages(fhir: Fhir, params: list[tuple[str, str]]) -> tuple[int, list[list[str]]]:
    """The total and the ids of every page, following `next`."""
    bundle = await _page(fhir, params)
    total, pages = bundle["total"], []
    while True:
        pages.append([entry["resource"]["id"] for entry in bundle.get("entry", [])])
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            return total, pages
        bundle = await _page(fhir, [], following[0])


async def _create(fhir: Fhir, body: dict[str, Any], headers: dict[str, str]) -> str:
    response = await fhir.client.post(f"{BASE}/Patient", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_fixed_statements_answer_what_the_general_path_answers(fhir: Fhir) -> None:
    same = [await _create(fhir, patient("M1"), fhir.a) for _ in range(3)]
    other_system = await _create(fhir, patient("M1", system="urn:other"), fhir.a)
    gone = await _create(fhir, patient("M1"), fhir.a)
    assert (await fhir.client.delete(f"{BASE}/Patient/{gone}", headers=fhir.a)).is_success
    long = await _create(fhir, patient(LONG), fhir.a)
    # A token of another parameter with the same code, and B's patient with the same MRN.
    phone = {**patient("P9"), "telecom": [{"system": "phone", "value": "M1"}], "gender": "male"}
    await _create(fhir, phone, fhir.a)
    foreign = await _create(fhir, patient("M1"), fhir.b)

    queries = [
        [("identifier", "urn:mrn|M1"), ("_count", "2")],
        [("identifier", "M1"), ("_count", "2")],
        [("identifier", "M1")],
        [("identifier", f"urn:mrn|{LONG}")],
        [("telecom", "M1")],
        [("gender", "female"), ("_count", "3")],
        [("_id", same[1])],
        [("_id", gone)],
        [("_id", foreign)],
        [("identifier", "urn:mrn|nothing")],
    ]
    for query in queries:
        fixed = await _pages(fhir, query)
        general = await _pages(fhir, [*query, EVERYTHING])
        assert fixed == general, query

    total, pages = await _pages(fhir, queries[0])
    assert total == 3 and pages == [same[:2], same[2:]]  # oldest first, two pages
    total, pages = await _pages(fhir, queries[1])
    assert total == 4 and other_system in [ident for page in pages for ident in page]
    assert (await _pages(fhir, queries[3]))[1] == [[long]]
    assert (await _pages(fhir, queries[7]))[0] == 0  # deleted
    assert (await _pages(fhir, queries[8]))[0] == 0  # B's
