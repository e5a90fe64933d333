"""FHIR R4 REST API on the tenant-scoped store (issue 5)."""
