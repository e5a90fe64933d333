"""A transaction Bundle from a real FHIR client over real HTTP (fhirpy + uvicorn).

fhirpy 2.3.1 has no transaction/batch helper; `execute` on the base URL is its way to
POST one, and its resource API then reads back what the transaction wrote.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from fhirpy.base.exceptions import MultipleResourcesFound

from tests.ehr_api.fhir_store.served import served_fhirpy


async def test_fhirpy_posts_a_transaction_and_reads_it_back(migrated: str, tmp_path: Path) -> None:
    async with served_fhirpy(migrated, tmp_path) as client:
        placeholder = f"urn:uuid:{uuid.uuid4()}"
        patient_entry: dict[str, Any] = {
            "fullUrl": placeholder,
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": "urn:mrn", "value": "fp-tx"}],
            },
            "request": {"method": "POST", "url": "Patient"},
        }
        observation: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "heart rate"},
            "subject": {"reference": placeholder},
        }
        transaction = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                patient_entry,
                {"resource": observation, "request": {"method": "POST", "url": "Observation"}},
            ],
        }
        answer = await client.execute(client.url, method="post", data=transaction)
        assert answer["type"] == "transaction-response"
        patient_loc, observation_loc = (e["response"]["location"] for e in answer["entry"])
        kind, observation_id = observation_loc.split("/")[:2]
        observation = await client.reference(kind, observation_id).to_resource()
        subject = observation["subject"]["reference"]
        assert subject == "/".join(patient_loc.split("/")[:2])
        patient = await client.reference(*subject.split("/")).to_resource()
        assert patient["identifier"][0]["value"] == "fp-tx"

        # Two more fp-tx patients make the conditional reference below ambiguous.
        duplicates = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {**patient_entry, "fullUrl": f"urn:uuid:{uuid.uuid4()}"},
                {**patient_entry, "fullUrl": f"urn:uuid:{uuid.uuid4()}"},
            ],
        }
        await client.execute(client.url, method="post", data=duplicates)
        # A failing transaction is an HTTP error the client raises, and writes nothing.
        failing = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": {
                        **observation,
                        "subject": {"reference": "Patient?identifier=urn:mrn|fp-tx"},
                    },
                    "request": {"method": "POST", "url": "Observation"},
                }
            ],
        }
        with pytest.raises(MultipleResourcesFound):  # fhirpy's name for a 412
            await client.execute(client.url, method="post", data=failing)
        assert await client.resources("Observation").count() == 1
