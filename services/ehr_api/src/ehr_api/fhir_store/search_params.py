"""The search parameters this store supports: one table drives indexing, search and the
CapabilityStatement, so adding a parameter is one line.

Each row is (resource type, name, type, FHIRPath expression[, reference targets]) as the
R4 specification defines them (searchparameters.html), the spec's shared expressions
narrowed to the one type. `_id` and `_lastUpdated` are answered from the current-resource
row and are listed for every type; `identifier` (`<Type>.identifier`) is added to every
type whose R4 definition has that element and no row of its own.

`X.where(resolve() is T)` is kept as the spec writes it; the indexer evaluates it as "the
references of X whose type is T" (it cannot resolve), which is what `targets` say too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from fhirpathpy.models import models

__all__ = ["COMMON", "SearchParam", "definition_url", "lookup", "params_for"]

#: FHIR search parameter types this store indexes.
TYPES = frozenset({"token", "string", "date", "reference", "number", "quantity", "uri"})


@dataclass(frozen=True, slots=True)
class SearchParam:
    """One search parameter of one resource type.

    `expression` is the R4 FHIRPath (already narrowed to this type when the spec's
    expression is shared, e.g. `Patient.name`); `targets` lists the resource types a
    reference parameter may point at (empty = any). Token parameters are stored in the
    token index, `uri` too (system ''), string in the string index, date in the date
    index, number and quantity in the number index, reference in the reference index.
    """

    name: str
    type: str
    expression: str
    targets: tuple[str, ...] = ()


#: Parameters of every type, answered from the fhir_resources row (no index table).
COMMON: Mapping[str, SearchParam] = {
    "_id": SearchParam("_id", "token", "Resource.id"),
    "_lastUpdated": SearchParam("_lastUpdated", "date", "Resource.meta.lastUpdated"),
}

_PATIENT = ("Patient",)
_ENCOUNTER = ("Encounter",)
_ORG = ("Organization",)
_LOCATION = ("Location",)
_PRACTITIONER = ("Practitioner",)
_CLINICIAN = ("Practitioner", "PractitionerRole")
_SUBJECT = ("Device", "Group", "Location", "Patient")
_REQUESTER = ("Device", "Organization", "Patient", "Practitioner", "PractitionerRole")
_PERFORMER = ("CareTeam", "Organization", "Practitioner", "PractitionerRole")
_ANYONE = (*_REQUESTER, "RelatedPerson")
_GP = ("Organization", "Practitioner", "PractitionerRole")

#: (resource type, name, type, expression, targets).
_TABLE: tuple[tuple[str, str, str, str, tuple[str, ...]], ...] = (
    ("Patient", "active", "token", "Patient.active", ()),
    ("Patient", "address", "string", "Patient.address", ()),
    ("Patient", "address-city", "string", "Patient.address.city", ()),
    ("Patient", "address-country", "string", "Patient.address.country", ()),
    ("Patient", "address-postalcode", "string", "Patient.address.postalCode", ()),
    ("Patient", "address-state", "string", "Patient.address.state", ()),
    ("Patient", "address-use", "token", "Patient.address.use", ()),
    ("Patient", "birthdate", "date", "Patient.birthDate", ()),
    ("Patient", "death-date", "date", "(Patient.deceased as dateTime)", ()),
    ("Patient", "deceased", "token", "Patient.deceased.exists() and Patient.deceased != false", ()),
    ("Patient", "email", "token", "Patient.telecom.where(system='email')", ()),
    ("Patient", "family", "string", "Patient.name.family", ()),
    ("Patient", "gender", "token", "Patient.gender", ()),
    ("Patient", "general-practitioner", "reference", "Patient.generalPractitioner", _GP),
    ("Patient", "given", "string", "Patient.name.given", ()),
    ("Patient", "identifier", "token", "Patient.identifier", ()),
    ("Patient", "language", "token", "Patient.communication.language", ()),
    ("Patient", "link", "reference", "Patient.link.other", ("Patient", "RelatedPerson")),
    ("Patient", "name", "string", "Patient.name", ()),
    ("Patient", "organization", "reference", "Patient.managingOrganization", _ORG),
    ("Patient", "phone", "token", "Patient.telecom.where(system='phone')", ()),
    ("Patient", "telecom", "token", "Patient.telecom", ()),
    ("Practitioner", "active", "token", "Practitioner.active", ()),
    ("Practitioner", "address", "string", "Practitioner.address", ()),
    ("Practitioner", "address-city", "string", "Practitioner.address.city", ()),
    ("Practitioner", "address-country", "string", "Practitioner.address.country", ()),
    ("Practitioner", "address-postalcode", "string", "Practitioner.address.postalCode", ()),
    ("Practitioner", "address-state", "string", "Practitioner.address.state", ()),
    ("Practitioner", "communication", "token", "Practitioner.communication", ()),
    ("Practitioner", "email", "token", "Practitioner.telecom.where(system='email')", ()),
    ("Practitioner", "family", "string", "Practitioner.name.family", ()),
    ("Practitioner", "gender", "token", "Practitioner.gender", ()),
    ("Practitioner", "given", "string", "Practitioner.name.given", ()),
    ("Practitioner", "identifier", "token", "Practitioner.identifier", ()),
    ("Practitioner", "name", "string", "Practitioner.name", ()),
    ("Practitioner", "phone", "token", "Practitioner.telecom.where(system='phone')", ()),
    ("Practitioner", "telecom", "token", "Practitioner.telecom", ()),
    ("PractitionerRole", "active", "token", "PractitionerRole.active", ()),
    ("PractitionerRole", "date", "date", "PractitionerRole.period", ()),
    ("PractitionerRole", "email", "token", "PractitionerRole.telecom.where(system='email')", ()),
    ("PractitionerRole", "endpoint", "reference", "PractitionerRole.endpoint", ("Endpoint",)),
    ("PractitionerRole", "identifier", "token", "PractitionerRole.identifier", ()),
    ("PractitionerRole", "location", "reference", "PractitionerRole.location", _LOCATION),
    ("PractitionerRole", "organization", "reference", "PractitionerRole.organization", _ORG),
    ("PractitionerRole", "phone", "token", "PractitionerRole.telecom.where(system='phone')", ()),
    ("PractitionerRole", "practitioner", "reference", "PractitionerRole.practitioner", _PRACTITIONER),
    ("PractitionerRole", "role", "token", "PractitionerRole.code", ()),
    ("PractitionerRole", "service", "reference", "PractitionerRole.healthcareService", ("HealthcareService",)),
    ("PractitionerRole", "specialty", "token", "PractitionerRole.specialty", ()),
    ("PractitionerRole", "telecom", "token", "PractitionerRole.telecom", ()),
    ("Organization", "active", "token", "Organization.active", ()),
    ("Organization", "address", "string", "Organization.address", ()),
    ("Organization", "address-city", "string", "Organization.address.city", ()),
    ("Organization", "address-country", "string", "Organization.address.country", ()),
    ("Organization", "address-postalcode", "string", "Organization.address.postalCode", ()),
    ("Organization", "address-state", "string", "Organization.address.state", ()),
    ("Organization", "endpoint", "reference", "Organization.endpoint", ("Endpoint",)),
    ("Organization", "identifier", "token", "Organization.identifier", ()),
    ("Organization", "name", "string", "Organization.name | Organization.alias", ()),
    ("Organization", "partof", "reference", "Organization.partOf", _ORG),
    ("Organization", "type", "token", "Organization.type", ()),
    ("Location", "address", "string", "Location.address", ()),
    ("Location", "address-city", "string", "Location.address.city", ()),
    ("Location", "address-country", "string", "Location.address.country", ()),
    ("Location", "address-postalcode", "string", "Location.address.postalCode", ()),
    ("Location", "address-state", "string", "Location.address.state", ()),
    ("Location", "endpoint", "reference", "Location.endpoint", ("Endpoint",)),
    ("Location", "identifier", "token", "Location.identifier", ()),
    ("Location", "name", "string", "Location.name | Location.alias", ()),
    ("Location", "operational-status", "token", "Location.operationalStatus", ()),
    ("Location", "organization", "reference", "Location.managingOrganization", _ORG),
    ("Location", "partof", "reference", "Location.partOf", _LOCATION),
    ("Location", "status", "token", "Location.status", ()),
    ("Location", "type", "token", "Location.type", ()),
    ("Encounter", "appointment", "reference", "Encounter.appointment", ("Appointment",)),
    ("Encounter", "based-on", "reference", "Encounter.basedOn", ("ServiceRequest",)),
    ("Encounter", "class", "token", "Encounter.class", ()),
    ("Encounter", "date", "date", "Encounter.period", ()),
    ("Encounter", "diagnosis", "reference", "Encounter.diagnosis.condition", ("Condition", "Procedure")),
    ("Encounter", "episode-of-care", "reference", "Encounter.episodeOfCare", ("EpisodeOfCare",)),
    ("Encounter", "identifier", "token", "Encounter.identifier", ()),
    ("Encounter", "length", "quantity", "Encounter.length", ()),
    ("Encounter", "location", "reference", "Encounter.location.location", _LOCATION),
    ("Encounter", "location-period", "date", "Encounter.location.period", ()),
    ("Encounter", "part-of", "reference", "Encounter.partOf", _ENCOUNTER),
    ("Encounter", "participant", "reference", "Encounter.participant.individual", (*_CLINICIAN, "RelatedPerson")),
    ("Encounter", "participant-type", "token", "Encounter.participant.type", ()),
    ("Encounter", "patient", "reference", "Encounter.subject.where(resolve() is Patient)", _PATIENT),
    ("Encounter", "practitioner", "reference", "Encounter.participant.individual.where(resolve() is Practitioner)", _PRACTITIONER),
    ("Encounter", "reason-code", "token", "Encounter.reasonCode", ()),
    ("Encounter", "reason-reference", "reference", "Encounter.reasonReference", ()),
    ("Encounter", "service-provider", "reference", "Encounter.serviceProvider", _ORG),
    ("Encounter", "special-arrangement", "token", "Encounter.hospitalization.specialArrangement", ()),
    ("Encounter", "status", "token", "Encounter.status", ()),
    ("Encounter", "subject", "reference", "Encounter.subject", ("Group", "Patient")),
    ("Encounter", "type", "token", "Encounter.type", ()),
    ("ServiceRequest", "authored", "date", "ServiceRequest.authoredOn", ()),
    ("ServiceRequest", "based-on", "reference", "ServiceRequest.basedOn", ("CarePlan", "MedicationRequest", "ServiceRequest")),
    ("ServiceRequest", "body-site", "token", "ServiceRequest.bodySite", ()),
    ("ServiceRequest", "category", "token", "ServiceRequest.category", ()),
    ("ServiceRequest", "code", "token", "ServiceRequest.code", ()),
    ("ServiceRequest", "encounter", "reference", "ServiceRequest.encounter", _ENCOUNTER),
    ("ServiceRequest", "identifier", "token", "ServiceRequest.identifier", ()),
    ("ServiceRequest", "instantiates-uri", "uri", "ServiceRequest.instantiatesUri", ()),
    ("ServiceRequest", "intent", "token", "ServiceRequest.intent", ()),
    ("ServiceRequest", "occurrence", "date", "ServiceRequest.occurrence", ()),
    ("ServiceRequest", "patient", "reference", "ServiceRequest.subject.where(resolve() is Patient)", _PATIENT),
    ("ServiceRequest", "performer", "reference", "ServiceRequest.performer", (*_ANYONE, "CareTeam", "HealthcareService")),
    ("ServiceRequest", "performer-type", "token", "ServiceRequest.performerType", ()),
    ("ServiceRequest", "priority", "token", "ServiceRequest.priority", ()),
    ("ServiceRequest", "replaces", "reference", "ServiceRequest.replaces", ("ServiceRequest",)),
    ("ServiceRequest", "requester", "reference", "ServiceRequest.requester", _ANYONE),
    ("ServiceRequest", "requisition", "token", "ServiceRequest.requisition", ()),
    ("ServiceRequest", "specimen", "reference", "ServiceRequest.specimen", ("Specimen",)),
    ("ServiceRequest", "status", "token", "ServiceRequest.status", ()),
    ("ServiceRequest", "subject", "reference", "ServiceRequest.subject", _SUBJECT),
    ("DiagnosticReport", "based-on", "reference", "DiagnosticReport.basedOn", ("CarePlan", "ImmunizationRecommendation", "MedicationRequest", "NutritionOrder", "ServiceRequest")),
    ("DiagnosticReport", "category", "token", "DiagnosticReport.category", ()),
    ("DiagnosticReport", "code", "token", "DiagnosticReport.code", ()),
    ("DiagnosticReport", "conclusion", "token", "DiagnosticReport.conclusionCode", ()),
    ("DiagnosticReport", "date", "date", "DiagnosticReport.effective", ()),
    ("DiagnosticReport", "encounter", "reference", "DiagnosticReport.encounter", _ENCOUNTER),
    ("DiagnosticReport", "identifier", "token", "DiagnosticReport.identifier", ()),
    ("DiagnosticReport", "issued", "date", "DiagnosticReport.issued", ()),
    ("DiagnosticReport", "media", "reference", "DiagnosticReport.media.link", ("Media",)),
    ("DiagnosticReport", "patient", "reference", "DiagnosticReport.subject.where(resolve() is Patient)", _PATIENT),
    ("DiagnosticReport", "performer", "reference", "DiagnosticReport.performer", _PERFORMER),
    ("DiagnosticReport", "result", "reference", "DiagnosticReport.result", ("Observation",)),
    ("DiagnosticReport", "results-interpreter", "reference", "DiagnosticReport.resultsInterpreter", _PERFORMER),
    ("DiagnosticReport", "specimen", "reference", "DiagnosticReport.specimen", ("Specimen",)),
    ("DiagnosticReport", "status", "token", "DiagnosticReport.status", ()),
    ("DiagnosticReport", "subject", "reference", "DiagnosticReport.subject", _SUBJECT),
    ("Observation", "based-on", "reference", "Observation.basedOn", ("CarePlan", "DeviceRequest", "ImmunizationRecommendation", "MedicationRequest", "NutritionOrder", "ServiceRequest")),
    ("Observation", "category", "token", "Observation.category", ()),
    ("Observation", "code", "token", "Observation.code", ()),
    ("Observation", "combo-code", "token", "Observation.code | Observation.component.code", ()),
    ("Observation", "combo-value-concept", "token", "(Observation.value as CodeableConcept) | (Observation.component.value as CodeableConcept)", ()),
    ("Observation", "combo-value-quantity", "quantity", "(Observation.value as Quantity) | (Observation.value as SampledData) | (Observation.component.value as Quantity) | (Observation.component.value as SampledData)", ()),
    ("Observation", "component-code", "token", "Observation.component.code", ()),
    ("Observation", "component-value-concept", "token", "(Observation.component.value as CodeableConcept)", ()),
    ("Observation", "component-value-quantity", "quantity", "(Observation.component.value as Quantity) | (Observation.component.value as SampledData)", ()),
    ("Observation", "data-absent-reason", "token", "Observation.dataAbsentReason", ()),
    ("Observation", "date", "date", "Observation.effective", ()),
    ("Observation", "derived-from", "reference", "Observation.derivedFrom", ()),
    ("Observation", "device", "reference", "Observation.device", ("Device", "DeviceMetric")),
    ("Observation", "encounter", "reference", "Observation.encounter", _ENCOUNTER),
    ("Observation", "focus", "reference", "Observation.focus", ()),
    ("Observation", "has-member", "reference", "Observation.hasMember", ("MolecularSequence", "Observation", "QuestionnaireResponse")),
    ("Observation", "identifier", "token", "Observation.identifier", ()),
    ("Observation", "method", "token", "Observation.method", ()),
    ("Observation", "part-of", "reference", "Observation.partOf", ()),
    ("Observation", "patient", "reference", "Observation.subject.where(resolve() is Patient)", _PATIENT),
    ("Observation", "performer", "reference", "Observation.performer", (*_PERFORMER, "Patient", "RelatedPerson")),
    ("Observation", "specimen", "reference", "Observation.specimen", ("Specimen",)),
    ("Observation", "status", "token", "Observation.status", ()),
    ("Observation", "subject", "reference", "Observation.subject", _SUBJECT),
    ("Observation", "value-concept", "token", "(Observation.value as CodeableConcept)", ()),
    ("Observation", "value-date", "date", "(Observation.value as dateTime) | (Observation.value as Period)", ()),
    ("Observation", "value-quantity", "quantity", "(Observation.value as Quantity) | (Observation.value as SampledData)", ()),
    ("Observation", "value-string", "string", "(Observation.value as string) | (Observation.value as CodeableConcept).text", ()),
    ("ImagingStudy", "basedon", "reference", "ImagingStudy.basedOn", ("Appointment", "AppointmentResponse", "CarePlan", "ServiceRequest", "Task")),
    ("ImagingStudy", "bodysite", "token", "ImagingStudy.series.bodySite", ()),
    ("ImagingStudy", "dicom-class", "token", "ImagingStudy.series.instance.sopClass", ()),
    ("ImagingStudy", "encounter", "reference", "ImagingStudy.encounter", _ENCOUNTER),
    ("ImagingStudy", "endpoint", "reference", "ImagingStudy.endpoint | ImagingStudy.series.endpoint", ("Endpoint",)),
    ("ImagingStudy", "identifier", "token", "ImagingStudy.identifier", ()),
    ("ImagingStudy", "instance", "token", "ImagingStudy.series.instance.uid", ()),
    ("ImagingStudy", "interpreter", "reference", "ImagingStudy.interpreter", _CLINICIAN),
    ("ImagingStudy", "modality", "token", "ImagingStudy.series.modality", ()),
    ("ImagingStudy", "patient", "reference", "ImagingStudy.subject.where(resolve() is Patient)", _PATIENT),
    ("ImagingStudy", "performer", "reference", "ImagingStudy.series.performer.actor", (*_ANYONE, "CareTeam", "HealthcareService")),
    ("ImagingStudy", "reason", "token", "ImagingStudy.reasonCode", ()),
    ("ImagingStudy", "referrer", "reference", "ImagingStudy.referrer", _CLINICIAN),
    ("ImagingStudy", "series", "token", "ImagingStudy.series.uid", ()),
    ("ImagingStudy", "started", "date", "ImagingStudy.started", ()),
    ("ImagingStudy", "status", "token", "ImagingStudy.status", ()),
    ("ImagingStudy", "subject", "reference", "ImagingStudy.subject", ("Device", "Group", "Patient")),
    ("Appointment", "actor", "reference", "Appointment.participant.actor", (*_ANYONE, "HealthcareService", "Location")),
    ("Appointment", "appointment-type", "token", "Appointment.appointmentType", ()),
    ("Appointment", "based-on", "reference", "Appointment.basedOn", ("ServiceRequest",)),
    ("Appointment", "date", "date", "Appointment.start", ()),
    ("Appointment", "identifier", "token", "Appointment.identifier", ()),
    ("Appointment", "location", "reference", "Appointment.participant.actor.where(resolve() is Location)", _LOCATION),
    ("Appointment", "part-status", "token", "Appointment.participant.status", ()),
    ("Appointment", "patient", "reference", "Appointment.participant.actor.where(resolve() is Patient)", _PATIENT),
    ("Appointment", "practitioner", "reference", "Appointment.participant.actor.where(resolve() is Practitioner)", _PRACTITIONER),
    ("Appointment", "reason-code", "token", "Appointment.reasonCode", ()),
    ("Appointment", "reason-reference", "reference", "Appointment.reasonReference", ()),
    ("Appointment", "service-category", "token", "Appointment.serviceCategory", ()),
    ("Appointment", "service-type", "token", "Appointment.serviceType", ()),
    ("Appointment", "slot", "reference", "Appointment.slot", ("Slot",)),
    ("Appointment", "specialty", "token", "Appointment.specialty", ()),
    ("Appointment", "status", "token", "Appointment.status", ()),
    ("Appointment", "supporting-info", "reference", "Appointment.supportingInformation", ()),
    ("DocumentReference", "authenticator", "reference", "DocumentReference.authenticator", (*_CLINICIAN, "Organization")),
    ("DocumentReference", "author", "reference", "DocumentReference.author", _ANYONE),
    ("DocumentReference", "category", "token", "DocumentReference.category", ()),
    ("DocumentReference", "contenttype", "token", "DocumentReference.content.attachment.contentType", ()),
    ("DocumentReference", "custodian", "reference", "DocumentReference.custodian", _ORG),
    ("DocumentReference", "date", "date", "DocumentReference.date", ()),
    ("DocumentReference", "description", "string", "DocumentReference.description", ()),
    ("DocumentReference", "encounter", "reference", "DocumentReference.context.encounter", ("Encounter", "EpisodeOfCare")),
    ("DocumentReference", "event", "token", "DocumentReference.context.event", ()),
    ("DocumentReference", "facility", "token", "DocumentReference.context.facilityType", ()),
    ("DocumentReference", "format", "token", "DocumentReference.content.format", ()),
    ("DocumentReference", "identifier", "token", "DocumentReference.masterIdentifier | DocumentReference.identifier", ()),
    ("DocumentReference", "language", "token", "DocumentReference.content.attachment.language", ()),
    ("DocumentReference", "location", "uri", "DocumentReference.content.attachment.url", ()),
    ("DocumentReference", "patient", "reference", "DocumentReference.subject.where(resolve() is Patient)", _PATIENT),
    ("DocumentReference", "period", "date", "DocumentReference.context.period", ()),
    ("DocumentReference", "related", "reference", "DocumentReference.context.related", ()),
    ("DocumentReference", "relatesto", "reference", "DocumentReference.relatesTo.target", ("DocumentReference",)),
    ("DocumentReference", "relation", "token", "DocumentReference.relatesTo.code", ()),
    ("DocumentReference", "security-label", "token", "DocumentReference.securityLabel", ()),
    ("DocumentReference", "setting", "token", "DocumentReference.context.practiceSetting", ()),
    ("DocumentReference", "status", "token", "DocumentReference.status", ()),
    ("DocumentReference", "subject", "reference", "DocumentReference.subject", ("Device", "Group", "Patient", "Practitioner")),
    ("DocumentReference", "type", "token", "DocumentReference.type", ()),
    ("Provenance", "agent", "reference", "Provenance.agent.who", (*_ANYONE,)),
    ("Provenance", "agent-role", "token", "Provenance.agent.role", ()),
    ("Provenance", "agent-type", "token", "Provenance.agent.type", ()),
    ("Provenance", "entity", "reference", "Provenance.entity.what", ()),
    ("Provenance", "location", "reference", "Provenance.location", _LOCATION),
    ("Provenance", "patient", "reference", "Provenance.target.where(resolve() is Patient)", _PATIENT),
    ("Provenance", "recorded", "date", "Provenance.recorded", ()),
    ("Provenance", "signature-type", "token", "Provenance.signature.type", ()),
    ("Provenance", "target", "reference", "Provenance.target", ()),
    ("Provenance", "when", "date", "(Provenance.occurred as dateTime)", ()),
    ("AuditEvent", "action", "token", "AuditEvent.action", ()),
    ("AuditEvent", "address", "string", "AuditEvent.agent.network.address", ()),
    ("AuditEvent", "agent", "reference", "AuditEvent.agent.who", (*_ANYONE,)),
    ("AuditEvent", "agent-name", "string", "AuditEvent.agent.name", ()),
    ("AuditEvent", "agent-role", "token", "AuditEvent.agent.role", ()),
    ("AuditEvent", "altid", "token", "AuditEvent.agent.altId", ()),
    ("AuditEvent", "date", "date", "AuditEvent.recorded", ()),
    ("AuditEvent", "entity", "reference", "AuditEvent.entity.what", ()),
    ("AuditEvent", "entity-name", "string", "AuditEvent.entity.name", ()),
    ("AuditEvent", "entity-role", "token", "AuditEvent.entity.role", ()),
    ("AuditEvent", "entity-type", "token", "AuditEvent.entity.type", ()),
    ("AuditEvent", "outcome", "token", "AuditEvent.outcome", ()),
    ("AuditEvent", "patient", "reference", "AuditEvent.agent.who.where(resolve() is Patient) | AuditEvent.entity.what.where(resolve() is Patient)", _PATIENT),
    ("AuditEvent", "policy", "uri", "AuditEvent.agent.policy", ()),
    ("AuditEvent", "site", "token", "AuditEvent.source.site", ()),
    ("AuditEvent", "source", "reference", "AuditEvent.source.observer", ()),
    ("AuditEvent", "subtype", "token", "AuditEvent.subtype", ()),
    ("AuditEvent", "type", "token", "AuditEvent.type", ()),
)  # fmt: skip

#: R4 parameters defined once for many types (`clinical-*`, `individual-*`): their
#: canonical URL names the shared definition, not `<Type>-<name>`.
_CLINICAL = "clinical"
_INDIVIDUAL = "individual"
_SHARED: Mapping[tuple[str, str], str] = {
    **{
        (type_, "patient"): _CLINICAL
        for type_ in (
            "DiagnosticReport", "DocumentReference", "Encounter", "ImagingStudy",
            "Observation", "ServiceRequest",
        )
    },
    **{
        (type_, "identifier"): _CLINICAL
        for type_ in (
            "AllergyIntolerance", "CarePlan", "CareTeam", "Composition", "Condition", "Consent",
            "DetectedIssue", "DeviceRequest", "DiagnosticReport", "DocumentManifest",
            "DocumentReference", "Encounter", "EpisodeOfCare", "FamilyMemberHistory", "Goal",
            "ImagingStudy", "Immunization", "List", "MedicationAdministration",
            "MedicationDispense", "MedicationRequest", "MedicationStatement", "NutritionOrder",
            "Observation", "Procedure", "RiskAssessment", "ServiceRequest", "SupplyDelivery",
            "SupplyRequest", "VisionPrescription",
        )
    },
    **{(type_, "code"): _CLINICAL for type_ in ("DiagnosticReport", "Observation", "ServiceRequest")},
    **{(type_, "date"): _CLINICAL for type_ in ("DiagnosticReport", "Encounter", "Observation")},
    **{
        (type_, "encounter"): _CLINICAL
        for type_ in ("DiagnosticReport", "DocumentReference", "Observation", "ServiceRequest")
    },
    **{(type_, "type"): _CLINICAL for type_ in ("DocumentReference", "Encounter")},
    **{
        (type_, name): _INDIVIDUAL
        for type_ in ("Patient", "Practitioner")
        for name in (
            "address", "address-city", "address-country", "address-postalcode", "address-state",
            "address-use", "email", "family", "gender", "given", "phone", "telecom",
        )
    },
    ("Patient", "birthdate"): _INDIVIDUAL,
}  # fmt: skip

_R4_ELEMENTS: Mapping[str, str] = models["r4"]["path2Type"]


@cache
def params_for(resource_type: str) -> Mapping[str, SearchParam]:
    """Every parameter of `resource_type` by name (COMMON included)."""
    found = dict(COMMON)
    for type_, name, kind, expression, targets in _TABLE:
        if type_ == resource_type:
            found[name] = SearchParam(name, kind, expression, targets)
    if "identifier" not in found and f"{resource_type}.identifier" in _R4_ELEMENTS:
        found["identifier"] = SearchParam("identifier", "token", f"{resource_type}.identifier")
    return found


def lookup(resource_type: str, name: str) -> SearchParam | None:
    """The parameter `name` of `resource_type`, or None when it is not supported."""
    return params_for(resource_type).get(name)


def definition_url(resource_type: str, name: str) -> str:
    """The canonical URL of the R4 SearchParameter that defines `name` on the type.

    >>> definition_url("Patient", "gender")
    'http://hl7.org/fhir/SearchParameter/individual-gender'
    """
    if name in COMMON:
        return f"http://hl7.org/fhir/SearchParameter/Resource-{name.removeprefix('_')}"
    shared = _SHARED.get((resource_type, name))
    prefix = shared or resource_type
    return f"http://hl7.org/fhir/SearchParameter/{prefix}-{name}"
