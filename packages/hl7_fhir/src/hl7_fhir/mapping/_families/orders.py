"""ORM^O01 and OML^O21: orders -> ServiceRequest per ORC/OBR (+ Patient, Encounter).

After the IG's ORM_O01 / OML_O21 message maps and its ORC[ServiceRequest] and
OBR[ServiceRequest] segment maps. The order message is the source of truth for the
order, so each ServiceRequest is a conditional update on the order's key (accession,
else placer, else filler number; see ``_order_common``). OBX in an order (ask-at-order-
entry answers, prior results) become Observations the ServiceRequest lists as
``supportingInfo``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import MappingError
from ...v2 import Segment
from .._context import MappingContext, location
from .._datatypes import codeable_concept, fhir_datetime
from .._encounter import map_encounter
from .._observation import observation_keys, observation_resource
from .._order_codes import PRIORITY
from .._order_common import (
    ObservationItem,
    OrderGroup,
    assign_keys,
    entity_id,
    first_repetition,
    notes,
    order_groups,
    order_status,
    service_request,
)
from .._patient import map_patient
from .._practitioner import practitioner_reference
from .._registry import register
from .._report_text import text_value
from .._zsegments import apply_z_segments

__all__ = ["map_orders"]

Json = dict[str, Any]


@register("ORM^O01", "OML^O21")
def map_orders(context: MappingContext) -> None:
    """Patient (ensure), Encounter, a ServiceRequest (upsert) per order group and the
    Observations of its OBX segments.

    Raises:
        MappingError: no ORC/OBR, a pharmacy/diet/supply order, an unknown order
            control code, a bad date or value; ``location`` names the field.
    """
    map_patient(context, mode="ensure")
    groups, loose, shared_diagnoses = order_groups(context.message)
    if not groups:
        raise MappingError("an order message without any ORC or OBR", location="ORC")
    assign_keys(context, groups)
    map_encounter(context, anchor=groups[0].key["value"], mode="ensure")
    mapped: list[tuple[OrderGroup, str]] = []
    for group in groups:
        resource = service_request(context, group)
        _details(context, group, resource, shared_diagnoses)
        reference = context.bundle.add(resource, key=group.key, mode="upsert", source=group.where)
        mapped.append((group, reference))
        items = group.observations
        if loose and group is groups[0]:
            items = [*loose, *items]  # OBX before the first order: about the order too
        _supporting(context, group, resource, items)
    apply_z_segments(context, mapped, results=False)


def _supporting(
    context: MappingContext, group: OrderGroup, request: Json, items: list[ObservationItem]
) -> None:
    """OBX in an order -> Observations listed in ``supportingInfo``. An answer without
    its question (no OBX-3) cannot be an Observation; the order is still valid, so its
    text is kept as a note on the request rather than dropped."""
    message = context.message
    remarks = []
    for item in items:
        if not item.obx.get(3):
            text = text_value(item.obx.field(5).repetitions, message.encoding, message.charset)
            if text:
                remarks.append({"text": f"{item.where} (no OBX-3): {text}"})
    coded = [item for item in items if item.obx.get(3)]
    supporting = []
    for item, key in zip(coded, observation_keys(context, group.key["value"], coded), strict=True):
        observation = observation_resource(
            context,
            item,
            key,
            based_on=None,
            effective=None,
            status_fallback="final",
            strict=False,
        )
        if observation is not None:
            added = context.bundle.add(observation, key=key, mode="upsert", source=item.where)
            supporting.append({"reference": added})
    if supporting:
        request["supportingInfo"] = supporting
    if remarks:
        request["note"] = [*request.get("note", []), *remarks]


def _details(
    context: MappingContext, group: OrderGroup, resource: Json, diagnoses: Sequence[Segment]
) -> None:
    """What the order message adds: priority, timing, author, requester, reasons,
    requisition, notes, status reason (after the IG's ORC/OBR/TQ1[ServiceRequest])."""
    profile = context.profile
    obr, orc = group.obr, group.orc
    unknown_status = order_status(group)[1]
    priority = _priority(group)
    if priority and priority.upper() in PRIORITY:
        resource["priority"] = PRIORITY[priority.upper()]
    resource.update(_occurrence(context, group))
    if orc is not None and orc.get(1, 1, 1).upper() == "NW" and orc.get(9, 1, 1):
        resource["authoredOn"] = fhir_datetime(orc.get(9, 1, 1), profile, group.at("ORC", 9))
    requester = first_repetition(orc, 12) or first_repetition(obr, 16)
    if requester is not None:
        who = practitioner_reference(
            context, requester, source="ORC-12" if first_repetition(orc, 12) else "OBR-16"
        )
        if who:
            resource["requester"] = who
    reasons = [c for rep in (obr.field(31) if obr else []) if (c := codeable_concept(rep, profile))]
    for dg1 in [*diagnoses, *group.diagnoses]:
        reasons += [c for rep in dg1.field(3) if (c := codeable_concept(rep, profile))]
    if reasons:
        resource["reasonCode"] = reasons
    requisition = entity_id(context, first_repetition(orc, 4), "PGN")
    if requisition:
        resource["requisition"] = requisition
    annotations = notes(context, group.notes)
    if priority and priority.upper() not in PRIORITY:
        annotations.append({"text": f"Priority: {priority}"})
    if unknown_status:
        annotations.append({"text": f"Order status: {unknown_status}"})
    if annotations:
        resource["note"] = annotations
    reason = first_repetition(orc, 16)
    reason_concept = codeable_concept(reason, profile) if reason is not None else None
    if reason_concept:
        resource["extension"] = [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/request-statusReason",
                "valueCodeableConcept": reason_concept,
            }
        ]


def _priority(group: OrderGroup) -> str:
    sources = [
        *(tq1.get(9, 1, 1) for tq1 in group.timing),
        group.orc.get(7, 1, 6) if group.orc is not None else "",
        group.obr.get(27, 1, 6) if group.obr is not None else "",
        group.obr.get(5, 1, 1) if group.obr is not None else "",
    ]
    return next((s.strip() for s in sources if s.strip()), "")


def _occurrence(context: MappingContext, group: OrderGroup) -> Json:
    """TQ1-7/8, else ORC-7.4/.5, else OBR-27.4/.5, else OBR-36, else OBR-6."""
    profile = context.profile
    candidates: list[tuple[str, str, str, str]] = []
    for tq1 in group.timing:
        where = location(tq1, 1, 7)
        candidates.append((tq1.get(7, 1, 1), where, tq1.get(8, 1, 1), where[:-1] + "8"))
    for seg, occurrence, number in (
        (group.orc, group.orc_occurrence, 7),
        (group.obr, group.obr_occurrence, 27),
    ):
        if seg is not None:
            where = location(seg, occurrence, number)
            candidates.append(
                (seg.get(number, 1, 4, 1), f"{where}.4", seg.get(number, 1, 5, 1), f"{where}.5")
            )
    if group.obr is not None:
        for number in (36, 6):
            where = group.at("OBR", number)
            candidates.append((group.obr.get(number, 1, 1), where, "", where))
    for start_text, start_at, end_text, end_at in candidates:
        if not start_text:
            continue
        start = fhir_datetime(start_text, profile, start_at)
        end = fhir_datetime(end_text, profile, end_at) if end_text else None
        if end:
            return {"occurrencePeriod": {"start": start, "end": end}}
        return {"occurrenceDateTime": start}
    return {}
