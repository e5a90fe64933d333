"""fhirpy (async) against the served app: chained parameters, paging through `next`
links, _include, _sort and modifiers, as a real client writes them."""

from __future__ import annotations

from pathlib import Path

from tests.ehr_api.fhir_store.served import served_fhirpy


async def test_fhirpy_chained_search_paging_and_include(migrated: str, tmp_path: Path) -> None:
    async with served_fhirpy(migrated, tmp_path) as client:
        peter = client.resource(
            "Patient",
            identifier=[{"system": "urn:mrn", "value": "P1"}],
            name=[{"family": "Parker", "given": ["Peter"]}],
        )
        await peter.save()
        mary = client.resource("Patient", name=[{"family": "Jane", "given": ["Mary"]}])
        await mary.save()
        mine = []
        for day, who in enumerate((peter, peter, mary, peter, peter), start=1):
            observation = client.resource(
                "Observation",
                status="final",
                code={"coding": [{"system": "http://loinc.org", "code": "1234"}]},
                subject=who.to_reference(),
                effectiveDateTime=f"2024-01-0{day}",
            )
            await observation.save()
            if who is peter:
                mine.append(observation["id"])

        observations = client.resources("Observation")
        chained = observations.search(subject__Patient__name="peter")
        assert await chained.count() == 4
        # fetch_all follows the `next` links: 2 per page, 4 matches, each once.
        paged = await chained.limit(2).sort("date").fetch_all()
        assert [item["id"] for item in paged] == mine
        by_identifier = observations.search(patient__Patient__identifier="urn:mrn|P1")
        assert {item["id"] for item in await by_identifier.fetch()} == set(mine)
        newest = await observations.search(patient=mary["id"]).sort("-date").fetch()
        assert len(newest) == 1 and newest[0]["subject"]["reference"] == f"Patient/{mary['id']}"
        assert await observations.search(date__ge="2024-01-04").count() == 2
        assert await client.resources("Patient").search(name__exact="Jan").count() == 0
        assert await client.resources("Patient").search(family__exact="Jane").count() == 1

        raw = (
            await observations.search(patient=mary["id"])
            .include("Observation", "patient")
            .fetch_raw()
        )
        modes = {
            entry["resource"]["resourceType"]: entry["search"]["mode"] for entry in raw["entry"]
        }
        assert modes == {"Observation": "match", "Patient": "include"}
        assert raw["total"] == 1
