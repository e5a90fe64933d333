"""hl7_fhir"""
