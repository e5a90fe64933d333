"""`Patient/{id}/$everything`: the patient and every resource in the patient's compartment.

Membership is read from the reference index (`fhir_search_reference`), through the
parameters the R4 Patient CompartmentDefinition names for each type (`COMPARTMENT`), so
it needs no scan of resource content and, like every index row, never leaves the caller's
organisation: another organisation's resource that happens to reference the same id has
no row here. The practitioners, organisations and locations the page's resources point
at are added as `include` entries (not counted in `total`): they are not patient
specific, but a client needs them to read the record.

Pages are a keyset over (the patient first, then type, id) in an org-bound cursor, so no
state is kept between pages.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ehr_api.errors import BadRequestError
from ehr_api.fhir_store import service
from ehr_api.fhir_store.models import FhirResource, FhirSearchReference
from ehr_api.fhir_store.paging import decode_cursor, encode_cursor, parse_count

__all__ = ["COMPARTMENT", "CURSOR", "REFERENCED", "EverythingResult", "everything"]

#: The query parameter that carries a page cursor.
CURSOR = "_cursor"

#: R4 CompartmentDefinition/patient: type -> the search parameters that place a resource
#: of that type in the patient's compartment. Only types this store serves are used.
COMPARTMENT: Mapping[str, tuple[str, ...]] = {
    "Account": ("subject",),
    "AdverseEvent": ("subject",),
    "AllergyIntolerance": ("patient", "recorder", "asserter"),
    "Appointment": ("actor",),
    "AppointmentResponse": ("actor",),
    "Basic": ("patient", "author"),
    "BodyStructure": ("patient",),
    "CarePlan": ("patient", "performer"),
    "CareTeam": ("patient", "participant"),
    "ChargeItem": ("subject",),
    "Claim": ("patient", "payee"),
    "ClaimResponse": ("patient",),
    "ClinicalImpression": ("subject",),
    "Communication": ("subject", "sender", "recipient"),
    "CommunicationRequest": ("subject", "sender", "recipient", "requester"),
    "Composition": ("subject", "author", "attester"),
    "Condition": ("patient", "asserter"),
    "Consent": ("patient",),
    "Coverage": ("policy-holder", "subscriber", "beneficiary", "payor"),
    "CoverageEligibilityRequest": ("patient",),
    "CoverageEligibilityResponse": ("patient",),
    "DetectedIssue": ("patient",),
    "DeviceRequest": ("subject", "performer"),
    "DeviceUseStatement": ("subject",),
    "DiagnosticReport": ("subject",),
    "DocumentManifest": ("subject", "author", "recipient"),
    "DocumentReference": ("subject", "author"),
    "Encounter": ("patient",),
    "EnrollmentRequest": ("subject",),
    "EpisodeOfCare": ("patient",),
    "ExplanationOfBenefit": ("patient", "payee"),
    "FamilyMemberHistory": ("patient",),
    "Flag": ("patient",),
    "Goal": ("patient",),
    "Group": ("member",),
    "ImagingStudy": ("patient",),
    "Immunization": ("patient",),
    "ImmunizationEvaluation": ("patient",),
    "ImmunizationRecommendation": ("patient",),
    "Invoice": ("subject", "patient", "recipient"),
    "List": ("subject", "source"),
    "MeasureReport": ("patient",),
    "Media": ("subject",),
    "MedicationAdministration": ("patient", "performer", "subject"),
    "MedicationDispense": ("subject", "patient", "receiver"),
    "MedicationRequest": ("subject",),
    "MedicationStatement": ("subject",),
    "MolecularSequence": ("patient",),
    "NutritionOrder": ("patient",),
    "Observation": ("subject", "performer"),
    "Patient": ("link",),
    "Person": ("patient",),
    "Procedure": ("patient", "performer"),
    "Provenance": ("patient",),
    "QuestionnaireResponse": ("subject", "author"),
    "RelatedPerson": ("patient",),
    "RequestGroup": ("subject", "participant"),
    "ResearchSubject": ("individual",),
    "RiskAssessment": ("subject",),
    "Schedule": ("actor",),
    "ServiceRequest": ("subject", "performer"),
    "Specimen": ("subject",),
    "SupplyDelivery": ("patient",),
    "SupplyRequest": ("subject",),
    "VisionPrescription": ("patient",),
}

#: Types outside the compartment that members' references pull in as `include` entries.
REFERENCED = ("Practitioner", "PractitionerRole", "Organization", "Location")


@dataclass(frozen=True, slots=True)
class EverythingResult:
    total: int
    #: The page's compartment members, the patient first on the first page.
    resources: list[FhirResource]
    #: Non-patient-specific resources those members reference (search mode `include`).
    included: list[FhirResource]
    #: The parameters understood (cursor excluded): what self and next links repeat.
    applied: list[tuple[str, str]]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class _Options:
    types: frozenset[str] | None
    since: datetime | None
    limit: int
    after: dict[str, Any] | None
    applied: list[tuple[str, str]]


def _options(
    query: Sequence[tuple[str, str]], *, org_id: uuid.UUID, kind: str
) -> _Options:  # fmt: skip
    types: set[str] | None = None
    since: datetime | None = None
    limit = service.DEFAULT_COUNT
    after: dict[str, Any] | None = None
    applied: list[tuple[str, str]] = []
    for name, value in query:
        if name == CURSOR:
            after = decode_cursor(value, org_id=org_id, kind=kind)
            continue
        if name == "_type":
            wanted = {item.strip() for item in value.split(",") if item.strip()}
            unknown = sorted(wanted - set(COMPARTMENT) - set(REFERENCED))
            if unknown:
                raise BadRequestError(
                    f"_type names types $everything does not return: {', '.join(unknown)}",
                    field="_type",
                )
            types = wanted if types is None else types | wanted
        elif name == "_since":
            since = _instant(value)
        elif name == "_count":
            limit = min(parse_count(value), service.MAX_COUNT)
        else:
            continue
        applied.append((name, value))
    return _Options(None if types is None else frozenset(types), since, limit, after, applied)


def _instant(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise BadRequestError(
            f"_since must be an instant with a time zone, got {value!r}", field="_since"
        )
    return moment


def _members(
    *, org_id: uuid.UUID, patient_id: str, types: Collection[str], since: datetime | None
) -> tuple[Select[Any], ColumnElement[int]]:
    """The live patient and compartment members of `types`, and each row's rank (0 = the
    patient itself), so the patient leads the first page."""
    row, ref = FhirResource, FhirSearchReference
    pairs = [
        and_(ref.resource_type == kind, ref.param.in_(COMPARTMENT[kind])) for kind in sorted(types)
    ]
    itself = and_(row.resource_type == "Patient", row.id == patient_id)
    member = exists().where(
        ref.org_id == org_id,
        ref.target_type == "Patient",
        ref.target_id == patient_id,
        ref.resource_type == row.resource_type,
        ref.resource_id == row.id,
        or_(*pairs),
    )
    chosen: list[ColumnElement[bool]] = [member] if pairs else []
    if "Patient" in types:
        chosen.append(itself)
    query = select(row).where(row.org_id == org_id, row.deleted.is_(False), or_(*chosen))
    if since is not None:
        query = query.where(row.last_updated >= since)
    return query, case((itself, 0), else_=1)


def _position(rank: int, resource: FhirResource) -> dict[str, Any]:
    return {"r": rank, "t": resource.resource_type, "i": resource.id}


def _beyond(rank: ColumnElement[int], after: Mapping[str, Any]) -> ColumnElement[bool]:
    try:
        last_rank, last_type, last_id = int(after["r"]), str(after["t"]), str(after["i"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BadRequestError("the paging cursor is not valid", field=CURSOR) from exc
    row = FhirResource
    return or_(
        rank > last_rank,
        and_(rank == last_rank, row.resource_type > last_type),
        and_(rank == last_rank, row.resource_type == last_type, row.id > last_id),
    )


async def _referenced(
    db: AsyncSession,
    *,
    org_id: uuid.UUID,
    members: Sequence[FhirResource],
    types: Collection[str],
) -> list[FhirResource]:
    """The live resources of `types` the members reference, each once, by type and id."""
    if not members or not types:
        return []
    ref, row = FhirSearchReference, FhirResource
    by_type: dict[str, list[str]] = {}
    for member in members:
        by_type.setdefault(member.resource_type, []).append(member.id)
    sources = or_(
        *(
            and_(ref.resource_type == kind, ref.resource_id.in_(ids))
            for kind, ids in sorted(by_type.items())
        )
    )
    targets = (
        select(ref.target_type, ref.target_id)
        .where(ref.org_id == org_id, ref.target_type.in_(sorted(types)), sources)
        .distinct()
    )
    wanted = [(kind, target) for kind, target in (await db.execute(targets)).all()]
    if not wanted:
        return []
    query = (
        select(row)
        .where(
            row.org_id == org_id,
            row.deleted.is_(False),
            or_(*(and_(row.resource_type == kind, row.id == target) for kind, target in wanted)),
        )
        .order_by(row.resource_type, row.id)
    )
    return [*(await db.execute(query)).scalars()]


async def everything(
    db: AsyncSession,
    *,
    org_id: uuid.UUID,
    patient_id: str,
    query: Sequence[tuple[str, str]] = (),
    readable: Collection[str] | None = None,
) -> EverythingResult:
    """One page of the patient's record: `_type`, `_since`, `_count`, `_cursor`.

    `readable` limits the answer to the types the caller may read (None: every type);
    the patient itself must be readable for the route to get this far.

    Raises:
        NotFoundError: no such patient in this organisation.
        GoneError: the patient was deleted.
        BadRequestError: a malformed parameter, a `_type` outside the compartment, or a
            cursor of another organisation or another patient.
    """
    await service.get(db, org_id=org_id, resource_type="Patient", resource_id=patient_id)
    options = _options(query, org_id=org_id, kind=f"everything:Patient/{patient_id}")
    allowed = set(service.supported_types()) & set(COMPARTMENT)
    if readable is not None:
        allowed &= set(readable)
    types = allowed if options.types is None else allowed & options.types
    if not types:
        return EverythingResult(0, [], [], options.applied)
    matching, rank = _members(
        org_id=org_id, patient_id=patient_id, types=types, since=options.since
    )
    total = int(await db.scalar(select(func.count()).select_from(matching.subquery())) or 0)
    if not options.limit or not total:
        return EverythingResult(total, [], [], options.applied)
    page = matching.add_columns(rank)
    if options.after is not None:
        page = page.where(_beyond(rank, options.after))
    page = page.order_by(rank, FhirResource.resource_type, FhirResource.id)
    rows = [
        (found, int(order))
        for found, order in (await db.execute(page.limit(options.limit + 1))).all()
    ]
    next_cursor = None
    if len(rows) > options.limit:
        rows = rows[: options.limit]
        last, last_rank = rows[-1][0], rows[-1][1]
        next_cursor = encode_cursor(
            org_id=org_id,
            kind=f"everything:Patient/{patient_id}",
            position=_position(last_rank, last),
        )
    members = [found for found, _ in rows]
    extra = set(REFERENCED) & set(service.supported_types())
    if readable is not None:
        extra &= set(readable)
    if options.types is not None:
        extra &= options.types
    included = await _referenced(db, org_id=org_id, members=members, types=extra)
    return EverythingResult(total, members, included, options.applied, next_cursor)
