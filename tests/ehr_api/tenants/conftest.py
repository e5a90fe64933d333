"""The route tests use the in-process app fixture shared with the integrations tests."""

from tests.ehr_api.integrations.api import api  # noqa: F401 - fixture
