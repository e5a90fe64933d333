"""XCN (a person in a v2 field) -> a Practitioner entry, or a display-only reference."""

from __future__ import annotations

from typing import Any

from ..v2 import Repetition
from ._context import MappingContext
from ._datatypes import identifier_type, person_name, system_for_hd

__all__ = ["practitioner_reference"]

Json = dict[str, Any]


def practitioner_reference(context: MappingContext, rep: Repetition, *, source: str) -> Json | None:
    """A Reference to the Practitioner in ``rep`` (an XCN), adding it to the bundle.

    With an id (XCN.1) the Practitioner is conditionally created on that identifier
    (system from XCN.9, else the profile's ``practitioner`` authority); with a name
    only, the reference carries just a display (nothing to match it on later).
    """
    name = person_name(rep)
    ident_value = rep[1]
    if not ident_value and name is None:
        return None
    display = _display(name) if name else ident_value
    if not ident_value:
        return {"display": display}
    system = system_for_hd(rep[9, 1], rep[9, 2], context.profile) or context.profile.system_for(
        "practitioner"
    )
    key: Json = {"system": system, "value": ident_value}
    kind = identifier_type(rep[13])
    resource: Json = {
        "resourceType": "Practitioner",
        "identifier": [{**({"type": kind} if kind else {}), **key}],
    }
    if name:
        resource["name"] = [name]
    reference = context.bundle.add(resource, key=key, mode="ensure", source=source)
    return {"reference": reference, "display": display}


def _display(name: Json) -> str:
    parts = [*name.get("prefix", []), *name.get("given", []), name.get("family", "")]
    return " ".join(p for p in parts if p)
