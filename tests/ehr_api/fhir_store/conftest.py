"""A running app with two organisations (A and B) and an org_admin token for each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.ehr_api.support import Harness, running

BASE = "/fhir/R4"


@dataclass
class Fhir:
    harness: Harness
    a: dict[str, str]
    b: dict[str, str]

    @property
    def client(self) -> httpx.AsyncClient:
        return self.harness.client


@pytest.fixture
async def fhir(migrated: str, tmp_path: Path) -> AsyncIterator[Fhir]:
    async with running(migrated, tmp_path) as harness:
        await harness.org("org-a")
        await harness.org("org-b")
        yield Fhir(harness, harness.auth("org-a", "org_admin"), harness.auth("org-b", "org_admin"))


def patient(value: str = "123", system: str = "urn:mrn") -> dict[str, object]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": system, "value": value}],
        "name": [{"family": "Doe", "given": ["Jane"]}],
        "gender": "female",
    }
