"""Token and string search: system|code forms, OR, :not, :missing, :exact, :contains,
unknown parameters (ignored and left out of the self link, or 400 when strict)."""

from __future__ import annotations

from typing import Any

from tests.ehr_api.fhir_store.conftest import BASE, Fhir


def person(mrn: str, family: str, given: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:mrn", "value": mrn}],
        "name": [{"family": family, "given": [given]}],
        **extra,
    }


async def _create(fhir: Fhir, body: dict[str, Any]) -> str:
    created = await fhir.client.post(f"{BASE}/{body['resourceType']}", json=body, headers=fhir.a)
    assert created.status_code == 201, created.text
    ident: str = created.json()["id"]
    return ident


async def _ids(fhir: Fhir, resource_type: str, params: Any, **headers: str) -> set[str]:
    found = await fhir.client.get(
        f"{BASE}/{resource_type}", params=params, headers={**fhir.a, **headers}
    )
    assert found.status_code == 200, found.text
    bundle = found.json()
    assert bundle["total"] == len(bundle["entry"])
    return {entry["resource"]["id"] for entry in bundle["entry"]}


async def test_token_forms_or_not_and_missing(fhir: Fhir) -> None:
    jane = await _create(fhir, person("1", "Doe", "Jane", gender="female"))
    john = await _create(fhir, person("2", "Doe", "John", gender="male"))
    other = await _create(
        fhir,
        {
            "resourceType": "Patient",
            "identifier": [{"value": "1"}],  # no system
            "name": [{"family": "Nobody"}],
        },
    )
    assert await _ids(fhir, "Patient", {"identifier": "urn:mrn|1"}) == {jane}
    assert await _ids(fhir, "Patient", {"identifier": "1"}) == {jane, other}
    assert await _ids(fhir, "Patient", {"identifier": "|1"}) == {other}
    assert await _ids(fhir, "Patient", {"identifier": "urn:mrn|"}) == {jane, john}
    assert await _ids(fhir, "Patient", {"identifier": "urn:mrn|1,urn:mrn|2"}) == {jane, john}
    assert await _ids(fhir, "Patient", {"identifier": "urn:other|1"}) == set()
    # AND across parameters, :not includes the resources without any gender.
    assert await _ids(fhir, "Patient", [("identifier", "urn:mrn|"), ("gender", "male")]) == {john}
    assert await _ids(fhir, "Patient", {"gender:not": "male"}) == {jane, other}
    assert await _ids(fhir, "Patient", {"gender:missing": "true"}) == {other}
    assert await _ids(fhir, "Patient", {"gender:missing": "false"}) == {jane, john}
    assert await _ids(fhir, "Patient", {"_id": f"{jane},{other}"}) == {jane, other}
    assert await _ids(fhir, "Patient", {"_id:not": jane}) == {john, other}


async def test_string_prefix_exact_contains(fhir: Fhir) -> None:
    accented = await _create(fhir, person("1", "Ćmielów", "Zoë"))
    smith = await _create(fhir, person("2", "Smith", "Anna"))
    smithers = await _create(fhir, person("3", "Smithers", "Waylon"))
    assert await _ids(fhir, "Patient", {"family": "smi"}) == {smith, smithers}
    assert await _ids(fhir, "Patient", {"family": "CMIE"}) == {accented}
    assert await _ids(fhir, "Patient", {"given": "zoe"}) == {accented}
    assert await _ids(fhir, "Patient", {"name": "anna"}) == {smith}  # name covers given
    assert await _ids(fhir, "Patient", {"family:exact": "Smith"}) == {smith}
    assert await _ids(fhir, "Patient", {"family:exact": "smith"}) == set()
    assert await _ids(fhir, "Patient", {"family:contains": "thers"}) == {smithers}
    assert await _ids(fhir, "Patient", {"family": "mith"}) == set()  # not a prefix
    assert await _ids(fhir, "Patient", {"family": "smith,cmie"}) == {smith, smithers, accented}
    # LIKE wildcards in the value are literal.
    assert await _ids(fhir, "Patient", {"family": "s%"}) == set()
    assert await _ids(fhir, "Patient", {"family": "_mith"}) == set()


async def test_unknown_parameters_ignored_or_strict(fhir: Fhir) -> None:
    jane = await _create(fhir, person("1", "Doe", "Jane"))
    found = await fhir.client.get(
        f"{BASE}/Patient", params={"family": "doe", "nonsense": "1"}, headers=fhir.a
    )
    assert found.status_code == 200
    matches = [e for e in found.json()["entry"] if e["search"]["mode"] == "match"]
    assert [entry["resource"]["id"] for entry in matches] == [jane]
    self_url = found.json()["link"][0]["url"]
    assert "family=doe" in self_url and "nonsense" not in self_url
    # ... and an outcome entry says which were ignored.
    (warning,) = [e for e in found.json()["entry"] if e["search"]["mode"] == "outcome"]
    issue = warning["resource"]["issue"][0]
    assert (issue["severity"], issue["expression"]) == ("warning", ["nonsense"])

    strict = await fhir.client.get(
        f"{BASE}/Patient",
        params={"family": "doe", "nonsense": "1"},
        headers={**fhir.a, "Prefer": "return=representation; handling=strict"},
    )
    assert strict.status_code == 400
    issue = strict.json()["issue"][0]
    assert issue["severity"] == "error" and issue["expression"] == ["nonsense"]
    assert "nonsense" in issue["diagnostics"]


async def test_bad_modifiers_and_values_are_400(fhir: Fhir) -> None:
    cases = {
        "gender:exact": "male",  # :exact is a string modifier
        "family:below": "x",
        "identifier": "a|b|c",
        "birthdate": "yesterday",
        "_count": "-1",
        "_total": "some",
        "gender:missing": "maybe",
    }
    for name, value in cases.items():
        response = await fhir.client.get(f"{BASE}/Patient", params={name: value}, headers=fhir.a)
        assert response.status_code == 400, (name, response.text)
        issue = response.json()["issue"][0]
        assert issue["code"] == "invalid"
        assert issue["expression"][0].split(":")[0] == name.split(":")[0], name


_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def _typed(code: str, value: str, system: str = "urn:hospital") -> dict[str, Any]:
    """An identifier as mapped from PID-3: its type (MR, SS, ...) says what the number is."""
    return {"type": {"coding": [{"system": _V2_0203, "code": code}]}, "system": system,
            "value": value}  # fmt: skip


async def test_identifier_of_type(fhir: Fhir) -> None:
    record = await _create(fhir, {**person("x", "Doe", "Jane"),
                                  "identifier": [_typed("MR", "4711"), _typed("SS", "999")]})  # fmt: skip
    social = await _create(
        fhir, {**person("y", "Roe", "Rick"), "identifier": [_typed("SS", "4711")]}
    )
    other = await _create(fhir, {**person("z", "Poe", "Edgar")})  # an untyped identifier
    assert await _ids(fhir, "Patient", {"identifier:of-type": f"{_V2_0203}|MR|4711"}) == {record}
    assert await _ids(fhir, "Patient", {"identifier:of-type": f"{_V2_0203}|SS|4711"}) == {social}
    # The plain token search is unchanged: the value, whatever its type.
    assert await _ids(fhir, "Patient", {"identifier": "urn:hospital|4711"}) == {record, social}
    assert await _ids(fhir, "Patient", {"identifier": "4711"}) == {record, social}
    # OR inside the value; AND with another parameter.
    both = f"{_V2_0203}|MR|4711,{_V2_0203}|SS|4711"
    assert await _ids(fhir, "Patient", {"identifier:of-type": both}) == {record, social}
    assert await _ids(fhir, "Patient", {"identifier:of-type": both, "family": "Roe"}) == {social}
    # The type system must match too; a type is not a value.
    assert await _ids(fhir, "Patient", {"identifier:of-type": "urn:other|MR|4711"}) == set()
    assert await _ids(fhir, "Patient", {"identifier": f"{_V2_0203}|MR"}) == set()
    # The of-type rows are not identifier rows: :missing still sees every identifier.
    assert await _ids(fhir, "Patient", {"identifier:missing": "false"}) == {record, social, other}
    # Another organisation's typed identifier is never a match.
    theirs = {**person("w", "Doe", "Jane"), "identifier": [_typed("MR", "4711")]}
    created = await fhir.client.post(f"{BASE}/Patient", json=theirs, headers=fhir.b)
    assert created.status_code == 201
    assert await _ids(fhir, "Patient", {"identifier:of-type": f"{_V2_0203}|MR|4711"}) == {record}


async def test_identifier_of_type_needs_three_parts(fhir: Fhir) -> None:
    for value in ("MR|4711", f"{_V2_0203}||4711", f"{_V2_0203}|MR|", "a|b|c|d"):
        refused = await fhir.client.get(
            f"{BASE}/Patient", params={"identifier:of-type": value}, headers=fhir.a
        )
        assert refused.status_code == 400, (value, refused.text)
        assert refused.json()["issue"][0]["expression"] == ["identifier:of-type"]


def _lab(subject: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": subject,
    }


async def test_reference_identifier_matches_logical_references(fhir: Fhir) -> None:
    patient = await _create(fhir, person("m-1", "Doe", "Jane"))
    logical = await _create(fhir, _lab({"identifier": {"system": "urn:mrn", "value": "m-1"}}))
    both = await _create(
        fhir,
        _lab({"reference": f"Patient/{patient}",
              "identifier": {"system": "urn:mrn", "value": "m-1"}}),
    )  # fmt: skip
    literal = await _create(fhir, _lab({"reference": f"Patient/{patient}"}))
    # Reference.identifier only (as R4 defines it): a literal reference to a Patient with
    # that identifier is not a match; chain `subject.identifier` for that.
    found = await _ids(fhir, "Observation", {"subject:identifier": "urn:mrn|m-1"})
    assert found == {logical, both}
    assert await _ids(fhir, "Observation", {"subject:identifier": "m-1"}) == {logical, both}
    assert await _ids(fhir, "Observation", {"subject:identifier": "urn:other|m-1"}) == set()
    chained = await _ids(fhir, "Observation", {"subject.identifier": "urn:mrn|m-1"})
    assert chained == {both, literal}
    # Plain reference search is unchanged, and so is :missing.
    assert await _ids(fhir, "Observation", {"subject": patient}) == {both, literal}
    assert await _ids(fhir, "Observation", {"subject:missing": "true"}) == {logical}
    # Another organisation's logical reference is never a match.
    theirs = _lab({"identifier": {"system": "urn:mrn", "value": "m-1"}})
    assert (
        await fhir.client.post(f"{BASE}/Observation", json=theirs, headers=fhir.b)
    ).status_code == 201
    assert await _ids(fhir, "Observation", {"subject:identifier": "urn:mrn|m-1"}) == {logical, both}
    bad = await fhir.client.get(
        f"{BASE}/Observation", params={"subject:identifier": "a|b|c"}, headers=fhir.a
    )
    assert bad.status_code == 400 and bad.json()["issue"][0]["expression"] == ["subject:identifier"]


async def test_token_text_searches_what_people_read(fhir: Fhir) -> None:
    def lab(text: str | None, display: str) -> dict[str, Any]:
        code: dict[str, Any] = {"coding": [{"system": "http://loinc.org", "code": "2339-0",
                                            "display": display}]}  # fmt: skip
        if text:
            code["text"] = text
        return {"resourceType": "Observation", "status": "final", "code": code}

    glucose = await _create(fhir, lab("Blood glucose", "Glucose [Mass/volume] in Blood"))
    plain = await _create(fhir, lab(None, "Hemoglobin A1c/Hemoglobin.total in Blood"))
    assert await _ids(fhir, "Observation", {"code:text": "glucose"}) == {glucose}
    assert await _ids(fhir, "Observation", {"code:text": "GLUC"}) == {glucose}  # any word, any case
    assert await _ids(fhir, "Observation", {"code:text": "blood"}) == {glucose, plain}
    assert await _ids(fhir, "Observation", {"code:text": "hemoglobin a1c"}) == {plain}
    assert await _ids(fhir, "Observation", {"code:text": "lucose"}) == set()  # not inside a word
    assert await _ids(fhir, "Observation", {"code:text": "glucose,a1c"}) == {glucose, plain}
    # The code itself is not text, and the plain token search is unchanged.
    assert await _ids(fhir, "Observation", {"code:text": "2339"}) == set()
    assert await _ids(fhir, "Observation", {"code": "http://loinc.org|2339-0"}) == {glucose, plain}
    theirs = lab("Blood glucose", "Glucose")
    assert (
        await fhir.client.post(f"{BASE}/Observation", json=theirs, headers=fhir.b)
    ).status_code == 201
    assert await _ids(fhir, "Observation", {"code:text": "glucose"}) == {glucose}
