"""fhir.* events share the resource's transaction: both commit, or neither does."""

from __future__ import annotations

import pytest
from ehr_api.events.models import EventLog
from ehr_api.fhir_store import service
from ehr_api.fhir_store.models import FhirResource, FhirResourceHistory, FhirSearchToken
from sqlalchemy import func, select

from tests.ehr_api.fhir_store.conftest import Fhir, patient


class Boom(Exception):
    pass


async def _counts(fhir: Fhir) -> tuple[int, ...]:
    async with fhir.harness.database.platform_session(read_only=True) as db:
        counts = []
        for table in (FhirResource, FhirResourceHistory, FhirSearchToken, EventLog):
            counts.append(int(await db.scalar(select(func.count()).select_from(table)) or 0))
        return tuple(counts)


async def test_a_failed_transaction_leaves_no_event_and_no_resource(fhir: Fhir) -> None:
    org = await fhir.harness.org("org-c")
    with pytest.raises(Boom):
        async with fhir.harness.database.org_session(org.id) as db:
            row, created = await service.create(
                db, org_id=org.id, resource_type="Patient", body=patient()
            )
            assert created and row.version_id == 1
            raise Boom
    assert await _counts(fhir) == (0, 0, 0, 0)

    async with fhir.harness.database.org_session(org.id) as db:
        await service.create(db, org_id=org.id, resource_type="Patient", body=patient())
    # Three tokens: the identifier, gender, and `deceased` (false when absent).
    assert await _counts(fhir) == (1, 1, 3, 1)
