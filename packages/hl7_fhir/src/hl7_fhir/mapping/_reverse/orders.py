"""ServiceRequest -> ORM^O01: PID [PV1], then ORC + OBR (+ NTE) per ServiceRequest.

The reverse of the IG's ORC[ServiceRequest] and OBR[ServiceRequest] maps; ORC-1 (order
control) comes from ServiceRequest.status, see :data:`ORDER_CONTROL`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ...errors import MappingError
from ...v2 import Message
from ...v2._segment import Value
from .._profile import MappingProfile
from ._common import (
    BuildOptions,
    Writer,
    dtm,
    ei,
    identifier_type_codes,
    identifiers_typed,
    put,
    section_code,
    start_message,
    text_lines,
)
from ._people import xcn
from ._registry import register_builder
from .adt import write_pv1
from .patient import find_patient, write_pid

__all__ = ["ORDER_CONTROL", "PRIORITY", "OrderNumbers", "build_orm", "order_numbers"]

Json = dict[str, Any]
# ServiceRequest.status -> (ORC-1 order control, ORC-5 order status). ``active`` is a new
# order (NW), or XO (change) with ``update=True``; ``draft`` and ``unknown`` are not sent.
ORDER_CONTROL = {
    "active": ("NW", ""),
    "on-hold": ("HD", "HD"),
    "revoked": ("CA", "CA"),
    "entered-in-error": ("CA", "CA"),
    "completed": ("SC", "CM"),
}
# ServiceRequest.priority -> table 0485 (reverse of the IG map; v2 has no "urgent", the
# nearer of its neighbours that does not downgrade the request is ASAP).
PRIORITY = {"routine": "R", "urgent": "A", "asap": "A", "stat": "S"}
_ORDER_INTENTS = frozenset(
    {"order", "original-order", "reflex-order", "filler-order", "instance-order"}
)
_CONTROL_CODE = re.compile(r"^[A-Z]{2}$")
_DICOM_UID = "urn:dicom:uid"


@dataclass(frozen=True, slots=True)
class OrderNumbers:
    """The business identifiers of one order, as EI values, and the accession number."""

    placer: Value
    filler: Value
    accession: str
    requisition: Value


def order_numbers(writer: Writer, request: Json) -> OrderNumbers:
    """Placer (PLAC, else the first untyped identifier), filler (FILL), accession (ACSN)
    and placer group number (``requisition``) of a ServiceRequest."""
    identifiers = [i for i in request.get("identifier", []) if i.get("value")]
    placer = identifiers_typed(identifiers, "PLAC")
    untyped = [i for i in identifiers if not identifier_type_codes(i)]
    filler = identifiers_typed(identifiers, "FILL")
    accession = identifiers_typed(identifiers, "ACSN")
    profile = writer.profile
    return OrderNumbers(
        placer=ei((placer or untyped)[0], profile) if placer or untyped else "",
        filler=ei(filler[0], profile) if filler else "",
        accession=str(accession[0]["value"]) if accession else "",
        requisition=ei(request.get("requisition"), profile),
    )


def accession_field(writer: Writer, numbers: OrderNumbers) -> tuple[OrderNumbers, str]:
    """Where the accession number goes: the profile's ``accession_number`` path when it
    names OBR-18 or ORC-4, or OBR-2/OBR-3 when that slot is free; OBR-18 otherwise."""
    path = writer.profile.accession_number
    if not numbers.accession:
        return numbers, ""
    for slot, number in (("OBR-2", numbers.placer), ("OBR-3", numbers.filler)):
        value = number[0] if isinstance(number, tuple) else number
        if path == slot and value == numbers.accession:
            return numbers, ""  # already there
        if path == slot and not value:
            changed = {"placer" if slot == "OBR-2" else "filler": numbers.accession}
            return _replace(numbers, **changed), ""
    if path == "ORC-4":
        return _replace(numbers, requisition=numbers.accession), ""
    return numbers, numbers.accession


def _replace(numbers: OrderNumbers, **changes: Value) -> OrderNumbers:
    values: dict[str, Any] = {
        "placer": numbers.placer,
        "filler": numbers.filler,
        "accession": numbers.accession,
        "requisition": numbers.requisition,
        **changes,
    }
    return OrderNumbers(**values)


def timing_quantity(request: Json, *, location: str) -> tuple[str, str, str]:
    """(start, end, priority) of a ServiceRequest, for TQ (ORC-7/OBR-27).

    Raises:
        MappingError: an occurrenceTiming with a repeat rule (TQ cannot carry it here).
    """
    start = end = ""
    if request.get("occurrenceDateTime"):
        start = dtm(request["occurrenceDateTime"], f"{location}.occurrenceDateTime")
    elif request.get("occurrencePeriod"):
        period = request["occurrencePeriod"]
        start = dtm(period.get("start"), f"{location}.occurrencePeriod.start")
        end = dtm(period.get("end"), f"{location}.occurrencePeriod.end")
    elif request.get("occurrenceTiming"):
        timing = request["occurrenceTiming"]
        repeat = timing.get("repeat") or {}
        events = timing.get("event", [])
        bounds = repeat.get("boundsPeriod") or {}
        if set(repeat) - {"boundsPeriod"} or len(events) > 1:
            raise MappingError(
                "a repeating occurrenceTiming cannot be expressed in ORM^O01",
                location=f"{location}.occurrenceTiming",
            )
        start = dtm(events[0] if events else bounds.get("start"), f"{location}.occurrenceTiming")
        end = dtm(bounds.get("end"), f"{location}.occurrenceTiming")
    priority = request.get("priority", "")
    if priority and priority not in PRIORITY:
        raise MappingError(f"unknown priority {priority!r}", location=f"{location}.priority")
    return start, end, PRIORITY.get(priority, "")


def _order_control(request: Json, opts: BuildOptions, location: str) -> tuple[str, str]:
    control = str(opts.extra.get("order_control") or "")
    status = str(request.get("status", ""))
    if control:
        if not _CONTROL_CODE.match(control):
            raise MappingError("expected a table 0119 code such as NW", location="order_control")
        return control, ORDER_CONTROL.get(status, ("", ""))[1]
    intent = request.get("intent", "order")
    if intent not in _ORDER_INTENTS:
        raise MappingError(
            f"a {intent} is not an order; pass order_control= to send it anyway",
            location=f"{location}.intent",
        )
    if status not in ORDER_CONTROL:
        raise MappingError(
            f"a {status or 'status-less'} ServiceRequest is not sent; pass order_control=",
            location=f"{location}.status",
        )
    code, order_status = ORDER_CONTROL[status]
    if code == "NW" and opts.extra.get("update"):
        code = "XO"
    return code, order_status


def write_z_segments(writer: Writer, request: Json) -> None:
    """The profile's Z-segment rules in reverse: the identifier with the rule's system
    (on the ServiceRequest, its ImagingStudy or the Patient) goes back to the rule's path."""
    for rule in writer.profile.z_segments:
        kind = rule.target.split(".", 1)[0]
        owners = [request] if kind == "ServiceRequest" else writer.resources.of_type(kind)
        if kind == "ImagingStudy":
            owners = [
                s
                for s in owners
                if not s.get("basedOn")
                or any(writer.resources.resolve(b) is request for b in s["basedOn"])
            ]
        for owner in owners:
            found = [i for i in owner.get("identifier", []) if i.get("system") == rule.system]
            if found and found[0].get("value"):
                value = str(found[0]["value"])
                if rule.system == _DICOM_UID:
                    value = value.removeprefix("urn:oid:")
                writer.message[rule.path] = value
                break


def write_order(writer: Writer, request: Json, index: int, opts: BuildOptions) -> None:
    """Append ORC, OBR and NTE for one ServiceRequest."""
    where = f"ServiceRequest[{index}]" if index else "ServiceRequest"
    control, order_status = _order_control(request, opts, where)
    numbers, obr18 = accession_field(writer, order_numbers(writer, request))
    start, end, priority = timing_quantity(request, location=where)
    timing: Value = ("", "", "", start, end, priority)
    requester_ref = request.get("requester")
    requester = writer.resources.resolve(requester_ref, request)
    organization = (requester or {}).get("resourceType") == "Organization"
    orderer = "" if organization else xcn(writer, requester_ref, container=request)
    code = request.get("code")
    if not code:
        raise MappingError("OBR-4 needs the ServiceRequest's code", location=f"{where}.code")
    orc = writer.segment("ORC")
    orc.set(1, control)
    put(orc, 2, numbers.placer)
    put(orc, 3, numbers.filler)
    put(orc, 4, numbers.requisition)
    put(orc, 5, order_status)
    put(orc, 7, timing)
    put(orc, 9, dtm(request.get("authoredOn"), f"{where}.authoredOn"))
    put(orc, 12, orderer)
    if organization and requester is not None:
        # The ordering organisation: ORC-21 (XON) from v2.4, ORC-17 (CE) before.
        name = str(requester.get("name") or "")
        if writer.since(2, 4):
            put(orc, 21, name)
        else:
            ident: Json = next(iter(requester.get("identifier", [])), {})
            put(orc, 17, (str(ident.get("value") or ""), name))
    obr = writer.segment("OBR")
    obr.set(1, str(index + 1))
    put(obr, 2, numbers.placer)
    put(obr, 3, numbers.filler)
    put(obr, 4, writer.coded(code))
    put(obr, 5, priority)
    put(obr, 16, orderer)
    put(obr, 18, obr18)
    put(obr, 24, section_code(request.get("category", [])))
    put(obr, 27, timing)
    put(obr, 31, [writer.coded(c) for c in request.get("reasonCode", [])])
    write_notes(writer, request.get("note", []))


def write_notes(writer: Writer, notes: list[Json], *, source: str = "L") -> None:
    """One NTE per Annotation: NTE-1 set id, NTE-2 source, NTE-3 the lines as repetitions."""
    for number, note in enumerate((n for n in notes if text_lines(n.get("text", ""))), 1):
        nte = writer.segment("NTE")
        nte.set(1, str(number))
        nte.set(2, source)
        nte.set(3, text_lines(str(note["text"])))


@register_builder("ORM", "ORM^O01")
def build_orm(
    resources: list[Json], message_type: str, profile: MappingProfile, options: dict[str, Any]
) -> Message:
    """Every ServiceRequest among the resources as one ORM^O01 (one ORDER group each).

    Options: ``order_control`` (a table 0119 code such as ``XO`` or ``DC``, overriding
    the one derived from the status) and ``update=True`` (send ``XO`` instead of ``NW``
    for an active order the receiver already has).

    Raises:
        MappingError: no ServiceRequest, requests for different patients, an unknown
            patient, a status or intent that is not an order, no code.
    """
    opts = BuildOptions.read(options, {"order_control": "", "update": False})
    writer = start_message(resources, "ORM", "O01", profile, opts)
    requests = writer.resources.of_type("ServiceRequest")
    if not requests:
        raise MappingError("no ServiceRequest among the resources", location="ServiceRequest")
    patient = find_patient(writer, requests[0].get("subject"), location="ServiceRequest.subject")
    for index, request in enumerate(requests[1:], 1):
        other = find_patient(
            writer, request.get("subject"), location=f"ServiceRequest[{index}].subject"
        )
        if other is not patient and other != patient:
            raise MappingError(
                "one ORM^O01 carries one patient; these ServiceRequests have several",
                location=f"ServiceRequest[{index}].subject",
            )
    if patient is not None:
        write_pid(writer, patient)
        encounter = writer.resources.resolve(requests[0].get("encounter"))
        if encounter is not None:
            write_pv1(writer, encounter)
    for index, request in enumerate(requests):
        write_order(writer, request, index, opts)
    write_z_segments(writer, requests[0])
    return writer.finish()
