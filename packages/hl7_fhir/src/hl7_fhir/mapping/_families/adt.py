"""ADT: patient administration -> Patient (+ Encounter, Practitioners); A40 merges."""

from __future__ import annotations

from typing import Any

from ...errors import MappingError
from .._context import MappingContext
from .._datatypes import identifier
from .._encounter import map_encounter
from .._patient import map_patient, patient_key
from .._registry import register

__all__ = ["map_admit_update", "map_merge"]

Json = dict[str, Any]


@register("ADT^A01", "ADT^A04", "ADT^A08", "ADT^A28", "ADT^A31", "ADT^A05", "ADT^A13")
def map_admit_update(context: MappingContext) -> None:
    """Admit/register/update: the ADT message is the source of truth for demographics,
    so the Patient is a conditional update (not just a conditional create)."""
    map_patient(context, mode="upsert")
    map_encounter(context)


@register("ADT^A40", "ADT^A34", "ADT^A36", "ADT^A39")
def map_merge(context: MappingContext) -> None:
    """Merge: the surviving Patient (PID) ``replaces`` the merged one (MRG-1), which
    becomes ``active: false`` with ``link: replaced-by`` the survivor."""
    survivor = map_patient(context, mode="upsert")
    for occurrence, mrg in enumerate(context.message.segments("MRG"), start=1):
        where = "MRG-1" if occurrence == 1 else f"MRG[{occurrence}]-1"
        merged_ids: list[Json] = []
        for index, rep in enumerate(mrg.field(1), start=1):
            element = identifier(rep, context.profile, location=f"{where}[{index}]")
            if element:
                element.setdefault("system", context.default_system)
                merged_ids.append(element)
        key = patient_key(merged_ids)
        if key is None:
            raise MappingError("the merged patient has no identifier", location=where)
        merged: Json = {
            "resourceType": "Patient",
            "identifier": merged_ids,
            "active": False,
            "link": [{"other": {"reference": survivor}, "type": "replaced-by"}],
        }
        reference = context.bundle.add(merged, key=key, mode="upsert", source="MRG")
        surviving = next(r for r in context.bundle.resources("Patient") if r is not merged)
        surviving.setdefault("link", []).append(
            {"other": {"reference": reference}, "type": "replaces"}
        )
