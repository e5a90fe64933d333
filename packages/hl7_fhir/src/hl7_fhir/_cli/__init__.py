"""Helpers of the ``hl7fhir`` command line (see :mod:`hl7_fhir.cli`); not a public API."""
