"""MSH -> MessageHeader and EVN -> Provenance, as the IG describes them (optional output)."""

from __future__ import annotations

from typing import Any

from ._codes import v2_table_uri
from ._context import MappingContext

__all__ = ["add_message_header", "add_provenance"]

Json = dict[str, Any]


def _endpoint(application: str, facility: str) -> str:
    name = "-".join(p for p in (application, facility) if p) or "unknown"
    return f"urn:hl7v2:endpoint:{name.replace(' ', '-')}"


def add_message_header(context: MappingContext) -> str:
    """A MessageHeader for MSH: event, source (MSH-3/4), destination (MSH-5/6), focus."""
    msg = context.message
    focus = [{"reference": e.full_url} for e in context.bundle.entries[:1]]
    resource: Json = {
        "resourceType": "MessageHeader",
        "eventCoding": {"system": v2_table_uri("0003"), "code": msg.trigger_event},
        "source": {
            "name": msg.sending_application or "unknown",
            "endpoint": _endpoint(msg.sending_application, msg.sending_facility),
        },
        "destination": [
            {
                "name": msg.receiving_application or "unknown",
                "endpoint": _endpoint(msg.receiving_application, msg.receiving_facility),
            }
        ],
    }
    if focus:
        resource["focus"] = focus
    key = {
        "system": "urn:hl7v2:message-control-id",
        "value": f"{msg.sending_application}|{msg.control_id}",
    }
    reference = context.bundle.add(resource, key=key, mode="create", source="MSH")
    # The header leads a message bundle.
    entries = context.bundle.entries
    entries.insert(0, entries.pop())
    return reference


def add_provenance(context: MappingContext) -> str | None:
    """A Provenance for EVN (or MSH-7): when, why, by whom, for every produced resource."""
    msg = context.message
    targets = [
        {"reference": e.full_url}
        for e in context.bundle.entries
        if e.resource["resourceType"] not in ("MessageHeader", "Provenance")
    ]
    if not targets:
        return None
    evn = msg.segment("EVN")
    recorded = None
    if evn is not None and evn.get(2):
        recorded = context.instant("EVN-2")
    recorded = recorded or context.instant("MSH-7")
    if recorded is None:
        return None
    resource: Json = {
        "resourceType": "Provenance",
        "target": targets,
        "recorded": recorded,
        "activity": {
            "coding": [
                {"system": v2_table_uri("0003"), "code": msg.trigger_event or msg.message_type}
            ]
        },
        "agent": [
            {"who": {"display": msg.sending_application or msg.sending_facility or "unknown"}}
        ],
    }
    if evn is not None and evn.get(4, 1, 1):
        resource["reason"] = [
            {"coding": [{"system": v2_table_uri("0062"), "code": evn.get(4, 1, 1)}]}
        ]
    return context.bundle.add(resource, mode="create", source="EVN" if evn is not None else "MSH")
