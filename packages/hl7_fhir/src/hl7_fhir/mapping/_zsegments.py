"""Profile Z-segment rules: a value in a local segment -> an identifier in FHIR.

``ZSegmentRule("ZDS-1.1", "ImagingStudy.identifier")`` takes the DICOM study instance
UID a RIS/PACS puts in ZDS-1 and writes an ImagingStudy identified by it (system
``urn:dicom:uid``, value ``urn:oid:<uid>`` as DICOM-in-FHIR does), for the patient,
``basedOn`` the message's ServiceRequests, with the order's accession number beside
the UID. An order message registers the study (``registered``, created only if new);
a result message makes it ``available`` (conditional update). ``ServiceRequest`` and
``Patient`` targets add the value as one more identifier of those resources.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import MappingError
from ._context import MappingContext
from ._order_codes import DICOM_MODALITIES, DICOM_SYSTEM, section_code
from ._order_common import OrderGroup

__all__ = ["apply_z_segments"]

Json = dict[str, Any]
_UID = re.compile(r"^(0|[1-9]\d*)(\.(0|[1-9]\d*))+$")


def _identifier_value(system: str, value: str, path: str) -> str:
    """DICOM UIDs as ``urn:oid:<uid>``; other systems take the value as sent.

    Raises:
        MappingError: a value for ``urn:dicom:uid`` that is not a DICOM UID.
    """
    if system != "urn:dicom:uid":
        return value
    uid = value.removeprefix("urn:oid:")
    if len(uid) > 64 or not _UID.match(uid):
        raise MappingError(f"not a DICOM UID: {value!r}", location=path)
    return f"urn:oid:{uid}"


def _imaging_study(
    context: MappingContext,
    identifier: Json,
    mapped: list[tuple[OrderGroup, str]],
    *,
    results: bool,
    source: str,
) -> None:
    study: Json = {
        "resourceType": "ImagingStudy",
        "identifier": [identifier],
        "status": "available" if results else "registered",
        "subject": {"reference": context.patient},
    }
    requests = [{"reference": reference} for _, reference in mapped]
    if requests:
        study["basedOn"] = requests
    if context.encounter:
        study["encounter"] = {"reference": context.encounter}
    modalities: list[Json] = []
    for group, _ in mapped:
        if group.accession is not None and group.accession not in study["identifier"]:
            study["identifier"].append(group.accession)
        code = section_code(group.obr).upper()
        coding = {"system": DICOM_SYSTEM, "code": code, "display": DICOM_MODALITIES.get(code)}
        if code in DICOM_MODALITIES and coding not in modalities:
            modalities.append(coding)
    if modalities:
        study["modality"] = modalities
    first = mapped[0][0].obr if mapped else None
    if first is not None and first.get(4, 1, 2):
        study["description"] = first.get(4, 1, 2)
    key = {"system": identifier["system"], "value": identifier["value"]}
    context.bundle.add(study, key=key, mode="upsert" if results else "ensure", source=source)


def apply_z_segments(
    context: MappingContext, mapped: list[tuple[OrderGroup, str]], *, results: bool
) -> None:
    """Apply the profile's Z-segment rules to this message (nothing when none match).

    ``mapped`` pairs each order group with its ServiceRequest reference; ``results``
    says whether the message reports results (ORU) or places orders (ORM/OML).

    Raises:
        MappingError: a value that does not fit its target (``location`` is the rule's path).
    """
    for rule in context.profile.z_segments:
        value = context.message[rule.path].strip()
        if not value:
            continue
        identifier = {
            "system": rule.system,
            "value": _identifier_value(rule.system, value, rule.path),
        }
        segment = rule.path.split("-", 1)[0]
        if rule.target == "ImagingStudy.identifier":
            _imaging_study(context, identifier, mapped, results=results, source=segment)
        elif rule.target == "ServiceRequest.identifier":
            for resource in context.bundle.resources("ServiceRequest"):
                if identifier not in resource.setdefault("identifier", []):
                    resource["identifier"].append(dict(identifier))
        elif rule.target == "Patient.identifier":
            for resource in context.bundle.resources("Patient")[:1]:
                if identifier not in resource.setdefault("identifier", []):
                    resource["identifier"].append(dict(identifier))
