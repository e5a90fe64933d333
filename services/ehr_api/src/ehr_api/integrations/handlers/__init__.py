"""The built-in integration handlers, one module per vendor.

`default_handlers()` is what `Orchestrator.default()` registers; a later vendor adds a
module here and a line below (and a seeded row in `integration_vendors`).
"""

from __future__ import annotations

from ehr_api.integrations.orchestrator import IntegrationHandler

__all__ = ["default_handlers"]


def default_handlers() -> list[IntegrationHandler]:
    from ehr_api.integrations.handlers.fhir_r4 import FhirR4Handler
    from ehr_api.integrations.handlers.hl7_v2x import Hl7V2xHandler

    return [Hl7V2xHandler(), FhirR4Handler()]
