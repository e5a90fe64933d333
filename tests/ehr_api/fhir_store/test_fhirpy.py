"""A real FHIR client (fhirpy, async) against the app served by uvicorn on a free port."""

from __future__ import annotations

from pathlib import Path

from tests.ehr_api.fhir_store.served import served_fhirpy


async def test_fhirpy_crud_and_search(migrated: str, tmp_path: Path) -> None:
    async with served_fhirpy(migrated, tmp_path) as client:
        patient = client.resource(
            "Patient",
            identifier=[{"system": "urn:mrn", "value": "fp-1"}],
            name=[{"family": "Py", "given": ["Fhir"]}],
        )
        await patient.save()
        assert patient["id"] and patient["meta"]["versionId"] == "1"

        fetched = await client.reference("Patient", patient["id"]).to_resource()
        assert fetched["name"][0]["family"] == "Py"

        fetched["gender"] = "other"
        await fetched.save()
        assert fetched["meta"]["versionId"] == "2"

        found = await client.resources("Patient").search(identifier="urn:mrn|fp-1").fetch()
        assert [item["id"] for item in found] == [patient["id"]]
        assert await client.resources("Patient").search(identifier="urn:mrn|x").count() == 0

        # Conditional create and update the way fhirpy spells them (criteria in the URL).
        by_mrn = client.resources("Patient").search(identifier="urn:mrn|fp-1")
        again = client.resource("Patient", identifier=[{"system": "urn:mrn", "value": "fp-1"}])
        existing, created = await by_mrn.get_or_create(again)
        assert (existing["id"], created) == (patient["id"], False)
        by_new_mrn = client.resources("Patient").search(identifier="urn:mrn|fp-2")
        other = client.resource("Patient", identifier=[{"system": "urn:mrn", "value": "fp-2"}])
        made, created = await by_new_mrn.get_or_create(other)
        assert created and made["id"] != patient["id"]
        replacement = client.resource(
            "Patient", identifier=[{"system": "urn:mrn", "value": "fp-2"}], gender="female"
        )
        updated, created = await by_new_mrn.update(replacement)
        assert (updated["id"], updated["meta"]["versionId"], created) == (made["id"], "2", False)

        await fetched.delete()
        assert await client.resources("Patient").search(_id=patient["id"]).fetch() == []
