"""What ORM, OML and ORU share: order groups, the order's identity, the ServiceRequest.

An order is recognised across messages by one business identifier, its *key*: the
accession number (where the profile says it lives), else the placer order number, else
the filler order number. ORM upserts the ServiceRequest on that key and ORU refers to
it (and ensures a stub) with the same key, so a report lands on its order whichever
message arrives first. docs/mapping.md (Orders and results) has the rules and the tables.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..errors import MappingError
from ..v2 import Message, Repetition, Segment
from ._context import MappingContext, location
from ._datatypes import codeable_concept, entity_identifier, identifier, identifier_type
from ._order_codes import ORDER_CONTROL, ORDER_STATUS, section_code, service_category
from ._profile import ACCESSION_LOCATIONS
from ._report_text import text_value

__all__ = [
    "ObservationItem",
    "OrderGroup",
    "accession_identifier",
    "assign_keys",
    "entity_id",
    "first_repetition",
    "notes",
    "order_groups",
    "order_status",
    "sender_system",
    "service_request",
    "synthetic_system",
]

Json = dict[str, Any]
TEXT_TYPES = frozenset({"ST", "TX", "FT"})
# Order detail segments of other order kinds (pharmacy, diet, supply): not ServiceRequests.
_OTHER_ORDERS = frozenset({"RXO", "RXE", "ODS", "ODT", "RQD", "RQ1"})
_EI_FIELDS = frozenset({("OBR", 2), ("OBR", 3), ("ORC", 2), ("ORC", 3), ("ORC", 4), ("IPC", 1)})


@dataclass
class ObservationItem:
    """One OBX (plus the TX/FT lines that continue it) and the NTEs after it."""

    obx: Segment
    occurrence: int
    notes: list[Segment] = field(default_factory=list)
    continuations: list[Segment] = field(default_factory=list)

    @property
    def where(self) -> str:
        return "OBX" if self.occurrence == 1 else f"OBX[{self.occurrence}]"


@dataclass
class OrderGroup:
    """One order: its ORC (possibly shared with earlier OBRs), OBR and what follows."""

    index: int
    orc: Segment | None = None
    orc_occurrence: int = 0
    obr: Segment | None = None
    obr_occurrence: int = 0
    timing: list[Segment] = field(default_factory=list)
    notes: list[Segment] = field(default_factory=list)
    diagnoses: list[Segment] = field(default_factory=list)
    observations: list[ObservationItem] = field(default_factory=list)
    identifiers: list[Json] = field(default_factory=list)
    key: Json = field(default_factory=dict)
    accession: Json | None = None

    @property
    def where(self) -> str:
        """The group's OBR (else ORC) for error messages: ``OBR[2]``."""
        if self.obr is not None:
            return "OBR" if self.obr_occurrence == 1 else f"OBR[{self.obr_occurrence}]"
        return "ORC" if self.orc_occurrence <= 1 else f"ORC[{self.orc_occurrence}]"

    def at(self, name: str, field_number: int) -> str:
        """Location of a field of this group's ORC/OBR, for error messages."""
        if name == "ORC" and self.orc is not None:
            return location(self.orc, self.orc_occurrence, field_number)
        if self.obr is not None:
            return location(self.obr, self.obr_occurrence, field_number)
        return f"{name}-{field_number}"


def _continues(previous: ObservationItem, obx: Segment) -> bool:
    """A TX/FT/ST OBX with the same identifier and sub-id as the previous one is a
    further line of the same observation (how v2 senders split long text)."""
    first = previous.obx
    return (
        not previous.notes
        and obx.get(2, 1, 1) in TEXT_TYPES
        and first.get(2, 1, 1) in TEXT_TYPES
        and obx.get(3, 1, 1) == first.get(3, 1, 1)
        and obx.get(3, 1, 3) == first.get(3, 1, 3)
        and obx.get(4) == first.get(4)
        and bool(obx.get(3, 1, 1))
    )


def order_groups(message: Message) -> tuple[list[OrderGroup], list[ObservationItem], list[Segment]]:
    """Split a message into order groups; also OBXs outside any order, and DG1s
    before the first order (they apply to every order of the message).

    Raises:
        MappingError: a second patient (PID), or an order kind that is not a
            ServiceRequest (RXO, RXE, ODS, ODT, RQD, RQ1).
    """
    groups: list[OrderGroup] = []
    loose: list[ObservationItem] = []
    shared_diagnoses: list[Segment] = []
    counts: Counter[str] = Counter()
    group: OrderGroup | None = None
    item: ObservationItem | None = None
    for seg in message.segments():
        name = seg.name
        counts[name] += 1
        occurrence = counts[name]
        if name == "PID" and occurrence > 1:
            raise MappingError(
                "more than one patient in one message is not supported",
                location=f"PID[{occurrence}]",
            )
        if name == "ORC":
            group = OrderGroup(len(groups) + 1, orc=seg, orc_occurrence=occurrence)
            groups.append(group)
            item = None
        elif name == "OBR":
            if group is None or group.obr is not None:
                orc = group.orc if group is not None else None
                orc_occurrence = group.orc_occurrence if group is not None else 0
                group = OrderGroup(len(groups) + 1, orc=orc, orc_occurrence=orc_occurrence)
                groups.append(group)
            group.obr, group.obr_occurrence = seg, occurrence
            item = None
        elif name in _OTHER_ORDERS:
            where = name if occurrence == 1 else f"{name}[{occurrence}]"
            raise MappingError(
                f"{name} orders (pharmacy, diet, supply) are not mapped to ServiceRequest",
                location=where,
            )
        elif name == "TQ1" and group is not None:
            group.timing.append(seg)
        elif name == "DG1":
            (group.diagnoses if group is not None else shared_diagnoses).append(seg)
        elif name == "NTE":
            if item is not None:
                item.notes.append(seg)
            elif group is not None:
                group.notes.append(seg)
        elif name == "OBX":
            target = group.observations if group is not None else loose
            if target and target[-1] is item and item is not None and _continues(item, seg):
                item.continuations.append(seg)
            else:
                item = ObservationItem(seg, occurrence)
                target.append(item)
        elif name in ("SPM", "SAC", "TQ2", "CTI", "FT1", "BLG"):
            item = None
    return groups, loose, shared_diagnoses


# -- identity ------------------------------------------------------------------------


def entity_id(context: MappingContext, rep: Repetition | None, type_code: str) -> Json | None:
    if rep is None:
        return None
    element = entity_identifier(rep, context.profile, type_code=type_code)
    if element is not None:
        element.setdefault("system", sender_system(context))
    return element


def first_repetition(seg: Segment | None, field_number: int) -> Repetition | None:
    if seg is None:
        return None
    reps = seg.field(field_number).repetitions
    return reps[0] if reps else None


def _number(
    context: MappingContext, group: OrderGroup, field_number: int, code: str
) -> Json | None:
    """OBR-n, else ORC-n (placer 2 / filler 3) as an identifier."""
    return entity_id(context, first_repetition(group.obr, field_number), code) or entity_id(
        context, first_repetition(group.orc, field_number), code
    )


def _at_path(context: MappingContext, group: OrderGroup, path: str) -> Json | None:
    name, _, rest = path.partition("-")
    parts = [int(p) for p in rest.split(".")]
    seg = {"OBR": group.obr, "ORC": group.orc}.get(name) or context.message.segment(name)
    if seg is None:
        return None
    if len(parts) == 1 and (name, parts[0]) in _EI_FIELDS:
        return entity_id(context, first_repetition(seg, parts[0]), "ACSN")
    value = seg.get(parts[0], 1, *(parts[1:] or [1]))
    if not value:
        return None
    return {"type": identifier_type("ACSN"), "system": sender_system(context), "value": value}


def accession_identifier(context: MappingContext, group: OrderGroup) -> Json | None:
    """The accession number of an order, typed ACSN, or None.

    With a path in the profile that field is it. With ``"auto"`` the first of
    :data:`ACCESSION_LOCATIONS` that is sent; OBR-18 (placer field 1) and ORC-4
    (placer group number) are free-use fields some senders fill with other things (a
    room, a group number), so in auto mode they count only when they repeat one of the
    order's numbers or when the order has no number at all.
    """
    path = context.profile.accession_number
    if path != "auto":
        return _at_path(context, group, path)
    numbers = {
        value
        for seg in (group.obr, group.orc)
        if seg is not None
        for value in (seg.get(2, 1, 1), seg.get(3, 1, 1))
        if value
    }
    for candidate in ACCESSION_LOCATIONS:
        element = _at_path(context, group, candidate)
        if element is None:
            continue
        if candidate in ("OBR-18", "ORC-4") and numbers and element["value"] not in numbers:
            continue
        return element
    return None


def _alternate_placer_numbers(context: MappingContext, group: OrderGroup) -> list[Json]:
    """OBR-53, else ORC-33 (alternate placer order numbers, CX) typed PLAC, as the IG maps them."""
    for seg, number in ((group.obr, 53), (group.orc, 33)):
        if seg is None or not seg.field(number):
            continue
        found = []
        for index, rep in enumerate(seg.field(number), start=1):
            where = group.at(seg.name, number) + (f"[{index}]" if index > 1 else "")
            element = identifier(rep, context.profile, location=where, type_code="PLAC")
            if element is not None:
                element.setdefault("system", sender_system(context))
                found.append(element)
        return found
    return []


def _key(element: Json) -> Json:
    return {"system": element["system"], "value": element["value"]}


def assign_keys(context: MappingContext, groups: list[OrderGroup]) -> None:
    """Give every group its identifiers and its key (ACSN, else PLAC, else FILL).

    Keys must be unique within a message, or two orders would collapse into one entry:
    when orders share their key (one accession or placer number for several OBRs), each
    gets a visibly synthetic key ``<base value>/<OBR-4 code>`` instead (system
    ``<sender>:order-item``). An order without any number is keyed on the message
    (MSH-10 and its position), which converges on replays of that same message only.
    """
    bases: list[Json | None] = []
    for group in groups:
        placer = _number(context, group, 2, "PLAC")
        filler = _number(context, group, 3, "FILL")
        group.accession = accession_identifier(context, group)
        group.identifiers = [e for e in (placer, filler, group.accession) if e is not None]
        group.identifiers += _alternate_placer_numbers(context, group)
        base = group.accession or placer or filler
        bases.append(_key(base) if base else None)
    seen = Counter((b["system"], b["value"]) for b in bases if b)
    synthetic = synthetic_system(context, "order-item")
    taken: set[str] = set()
    for group, base in zip(groups, bases, strict=True):
        if base is not None and seen[(base["system"], base["value"])] == 1:
            group.key = base
            continue
        code = group.obr.get(4, 1, 1) if group.obr is not None else ""
        if base is not None:
            value = f"{base['value']}/{code or group.index}"
        else:
            value = f"{context.message.control_id or 'message'}/{group.index}"
        if value in taken:
            value = f"{value}/{group.index}"
        taken.add(value)
        group.key = {"system": synthetic, "value": value}
        group.identifiers.append({"use": "secondary", **group.key})


# -- ServiceRequest ------------------------------------------------------------------


def order_status(group: OrderGroup) -> tuple[str, str]:
    """ServiceRequest.status from ORC-5 (order status), else ORC-1 (order control), and
    the ORC-5 text when it is not a table 0038 code (kept as a note, never dropped).

    Raises:
        MappingError: an ORC-1 that is not a table 0119 code.
    """
    orc = group.orc
    if orc is None:
        return "active", ""
    status = orc.get(5, 1, 1).strip().upper()
    if status in ORDER_STATUS:
        return ORDER_STATUS[status], ""
    control = orc.get(1, 1, 1).strip().upper()
    if not control:
        return "active", status
    if control not in ORDER_CONTROL:
        raise MappingError(f"unknown order control code {control!r}", location=group.at("ORC", 1))
    return ORDER_CONTROL[control], orc.get(5, 1, 1).strip()


def notes(context: MappingContext, segments: list[Segment]) -> list[Json]:
    """NTE-3 (all repetitions, one Annotation per NTE) -> Annotation list."""
    message = context.message
    notes = []
    for nte in segments:
        text = text_value(nte.field(3).repetitions, message.encoding, message.charset)
        if text:
            notes.append({"text": text})
    return notes


def service_request(context: MappingContext, group: OrderGroup) -> Json:
    """What every order message knows about an order: identifiers, status, intent,
    subject, code, category, encounter (an ORU's stub; ORM adds the order details)."""
    obr = group.obr
    resource: Json = {
        "resourceType": "ServiceRequest",
        "identifier": [dict(i) for i in group.identifiers],
        "status": order_status(group)[0],
        "intent": "reflex-order" if obr is not None and obr.get(11) == "G" else "order",
        "subject": {"reference": context.patient},
    }
    code_reps = obr.field(4).repetitions if obr is not None else []
    code = codeable_concept(code_reps[0], context.profile) if code_reps else None
    if code:
        resource["code"] = code
    category = service_category(section_code(obr))
    if category:
        resource["category"] = [category]
    if context.encounter:
        resource["encounter"] = {"reference": context.encounter}
    return resource


def sender_system(context: MappingContext) -> str:
    """``context.default_system``, worked out once per message."""
    system = context.extras.get("default_system")
    if system is None:
        system = context.extras["default_system"] = context.default_system
    return str(system)


def synthetic_system(context: MappingContext, kind: str) -> str:
    """The system of a visibly synthetic identifier of ``kind`` for this sender:
    ``<sender system>:<kind>`` (``urn:hl7v2:<kind>:<oid>`` for an OID sender, whose
    URN could not be extended)."""
    base = sender_system(context)
    if base.startswith("urn:oid:"):
        return f"urn:hl7v2:{kind}:{base.removeprefix('urn:oid:')}"
    if base.startswith(("http://", "https://")):
        return f"{base.rstrip('/')}/{kind}"
    return f"{base}:{kind}"
