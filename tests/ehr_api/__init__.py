"""Tests of the platform service (services/ehr_api)."""
