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

        await fetched.delete()
        assert await client.resources("Patient").search(_id=patient["id"]).fetch() == []
