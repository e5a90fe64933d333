"""Every table, imported in one place so `Base.metadata` is complete.

This is the one module of `ehr_api.db` that imports the domain packages (only their
`models.py`): Alembic, the tests and anything that needs the whole schema import it.
Domain code imports its own models directly.
"""

from __future__ import annotations

from ehr_api.audit.models import ActorType, AuditLog
from ehr_api.auth.models import ApiKey, Principal, PrincipalKind, RoleAssignment
from ehr_api.db.base import Base
from ehr_api.events.models import EventLog
from ehr_api.fhir_store.models import FhirResource, FhirResourceHistory, FhirSearchToken
from ehr_api.integrations.models import (
    FHIR_R4,
    HL7_V2X,
    SEEDED_VENDORS,
    IntegrationCredential,
    IntegrationVendor,
)
from ehr_api.tenants.models import Organization, OrgStatus

__all__ = [
    "FHIR_R4",
    "HL7_V2X",
    "SEEDED_VENDORS",
    "ActorType",
    "ApiKey",
    "AuditLog",
    "Base",
    "EventLog",
    "FhirResource",
    "FhirResourceHistory",
    "FhirSearchToken",
    "IntegrationCredential",
    "IntegrationVendor",
    "OrgStatus",
    "Organization",
    "Principal",
    "PrincipalKind",
    "RoleAssignment",
]

#: Tables whose rows belong to one organisation (or, with NULL, to the platform):
#: filtered by the org session, protected by row-level security on PostgreSQL.
TENANT_TABLES: tuple[str, ...] = tuple(
    sorted(
        table.name
        for table in Base.metadata.sorted_tables
        if "org_id" in table.c and table.name != "organizations"
    )
)
