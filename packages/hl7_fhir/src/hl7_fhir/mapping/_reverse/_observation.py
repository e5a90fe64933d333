"""Observation -> OBX: value type and value (OBX-2/5), units, range, flags, status.

The reverse of the IG's OBX[Observation] map. Every Observation value type FHIR R4 has is
either written or refused with a :class:`MappingError`: a result is never dropped.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ...errors import MappingError
from ...v2._segment import Value
from .._datatypes import v2_system_name
from ._common import Writer, codeable_concept, dtm, put, text_lines
from ._people import xcn

__all__ = [
    "OBSERVATION_STATUS",
    "attachment_value",
    "number",
    "observation_value",
    "write_obx",
]

Json = dict[str, Any]
UCUM = "http://unitsofmeasure.org"
# Observation.status -> table 0085 (reverse of the IG ObservationResultStatus map).
OBSERVATION_STATUS = {
    "registered": "I",
    "preliminary": "P",
    "final": "F",
    "amended": "C",
    "corrected": "C",
    "cancelled": "X",
    "entered-in-error": "W",
}
_ST_LIMIT = 199  # longer text goes as TX


def number(value: Any, location: str) -> str:
    """A JSON number as NM text, without exponent (``1e-05`` -> ``0.00001``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise MappingError(f"not a number: {value!r}", location=location)
    try:
        decimal = Decimal(str(value))
    except ArithmeticError as exc:
        raise MappingError(f"not a number: {value!r}", location=location) from exc
    if not decimal.is_finite():
        raise MappingError(f"not a number: {value!r}", location=location)
    text = format(decimal, "f")
    return text


def _units(quantity: Json) -> Value:
    code = str(quantity.get("code") or "")
    unit = str(quantity.get("unit") or "")
    system = str(quantity.get("system") or "")
    if not code and not unit:
        return ""
    if not system:
        return (unit or code,)
    return (code or unit, unit, v2_system_name(system) if system != UCUM else "UCUM")


def _text(text: str) -> tuple[str, Value]:
    lines = text_lines(text)
    if len(lines) > 1:
        return "TX", list(lines)
    if len(text) > _ST_LIMIT:
        return "TX", text
    return "ST", text


def attachment_value(attachment: Json, location: str) -> tuple[str, Value]:
    """Attachment -> ED (``^type^subtype^Base64^data`` from the MIME type) or, when it
    only has a ``url``, RP (``url^^type^subtype``).

    The MIME type is split as sent (``application/rtf`` -> ``application^rtf``), the
    convention most receivers of PDF/RTF reports use; data is copied base64 as is.
    """
    content_type = str(attachment.get("contentType") or "application/octet-stream")
    kind, _, subtype = content_type.split(";", 1)[0].strip().partition("/")
    if attachment.get("data"):
        return "ED", ("", kind, subtype, "Base64", str(attachment["data"]))
    if attachment.get("url"):
        return "RP", (str(attachment["url"]), "", kind, subtype)
    raise MappingError("an attachment needs data or a url", location=location)


def observation_value(writer: Writer, source: Json, location: str) -> tuple[str, Value, Value]:
    """(OBX-2 value type, OBX-5 value, OBX-6 units) of an Observation or a component.

    Raises:
        MappingError: a value v2 cannot carry (SampledData) or a malformed one.
    """
    cwe = writer.since(2, 5)
    if "valueQuantity" in source:
        quantity = source["valueQuantity"]
        value = number(quantity.get("value"), f"{location}.valueQuantity.value")
        comparator = quantity.get("comparator")
        if comparator:
            return "SN", (str(comparator), value), _units(quantity)
        return "NM", value, _units(quantity)
    if "valueCodeableConcept" in source:
        concept = codeable_concept(source["valueCodeableConcept"], cwe=cwe)
        return ("CWE" if cwe else "CE"), concept, ""
    if "valueString" in source:
        kind, text = _text(str(source["valueString"]))
        return kind, text, ""
    if "valueBoolean" in source:
        flag = ("Y", "Yes") if source["valueBoolean"] else ("N", "No")
        return ("CWE" if cwe else "CE"), (*flag, "HL70136"), ""
    if "valueInteger" in source:
        return "NM", number(source["valueInteger"], f"{location}.valueInteger"), ""
    if "valueRange" in source:
        low, high = source["valueRange"].get("low") or {}, source["valueRange"].get("high") or {}
        where = f"{location}.valueRange"
        sn: Value = (
            "",
            number(low["value"], f"{where}.low") if "value" in low else "",
            "-",
            number(high["value"], f"{where}.high") if "value" in high else "",
        )
        return "SN", sn, _units(low or high)
    if "valueRatio" in source:
        ratio, where = source["valueRatio"], f"{location}.valueRatio"
        top, bottom = ratio.get("numerator") or {}, ratio.get("denominator") or {}
        ratio_value: Value = (
            "",
            number(top.get("value"), f"{where}.numerator"),
            ":",
            number(bottom.get("value"), f"{where}.denominator"),
        )
        return "SN", ratio_value, ""
    if "valueDateTime" in source:
        when = dtm(source["valueDateTime"], f"{location}.valueDateTime")
        return ("DTM" if cwe else "TS"), when, ""
    if "valueTime" in source:
        return "TM", str(source["valueTime"]).replace(":", ""), ""
    if "valuePeriod" in source:
        period, where = source["valuePeriod"], f"{location}.valuePeriod"
        start = dtm(period.get("start"), f"{where}.start")
        return "DR", (start, dtm(period.get("end"), f"{where}.end")), ""
    if "valueAttachment" in source:
        kind, attached = attachment_value(source["valueAttachment"], f"{location}.valueAttachment")
        return kind, attached, ""
    for key in source:
        if key.startswith("value"):
            raise MappingError(f"{key} cannot be sent in an OBX", location=f"{location}.{key}")
    return "", "", ""


def _range(reference_range: list[Json], location: str) -> str:
    """OBX-7: the first range's text, else ``low-high``, ``>=low`` or ``<=high``."""
    if not reference_range:
        return ""
    first = reference_range[0]
    if first.get("text"):
        return str(first["text"])
    low = (first.get("low") or {}).get("value")
    high = (first.get("high") or {}).get("value")
    where = f"{location}.referenceRange"
    if low is not None and high is not None:
        return f"{number(low, where)}-{number(high, where)}"
    if low is not None:
        return f">={number(low, where)}"
    if high is not None:
        return f"<={number(high, where)}"
    return ""


def _interpretations(observation: Json) -> list[str]:
    codes = []
    for concept in observation.get("interpretation", []):
        coding = next((c for c in concept.get("coding", []) if c.get("code")), None)
        if coding:
            codes.append(str(coding["code"]))
    return codes


def result_status(status: Any, location: str) -> str:
    """Observation.status -> OBX-11.

    Raises:
        MappingError: ``unknown`` or an invalid status (OBX-11 is required).
    """
    code = OBSERVATION_STATUS.get(str(status))
    if code is None:
        raise MappingError(f"no OBX-11 for status {status!r}", location=f"{location}.status")
    return code


def write_obx(
    writer: Writer,
    observation: Json,
    set_id: int,
    *,
    location: str,
    source: Json | None = None,
    sub_id: str = "",
) -> None:
    """Append an OBX for ``observation`` (or one of its components, ``source``)."""
    source = source or observation
    value_type, value, units = observation_value(writer, source, location)
    obx = writer.segment("OBX")
    obx.set(1, str(set_id))
    put(obx, 2, value_type)
    code = source.get("code")
    if not code:
        raise MappingError("OBX-3 needs the Observation's code", location=f"{location}.code")
    put(obx, 3, writer.coded(code))
    put(obx, 4, sub_id)
    put(obx, 5, value)
    put(obx, 6, units)
    put(obx, 7, _range(source.get("referenceRange", []), location))
    interpretations = _interpretations(source)
    put(obx, 8, interpretations if writer.since(2, 5) else interpretations[:1])
    obx.set(11, result_status(observation.get("status"), location))
    when = (
        observation.get("effectiveDateTime")
        or observation.get("effectiveInstant")
        or (observation.get("effectivePeriod") or {}).get("start")
    )
    put(obx, 14, dtm(when, f"{location}.effective"))
    people, organizations = [], []
    for reference in observation.get("performer", []):
        target = writer.resources.resolve(reference, observation)
        kind = (target or {}).get("resourceType") or reference.get("type", "")
        if kind == "Organization":
            organizations.append(str((target or {}).get("name") or reference.get("display", "")))
        else:
            people.append(xcn(writer, reference, container=observation))
    put(obx, 16, people if writer.since(2, 5) else people[:1])
    if writer.since(2, 5, 1):
        put(obx, 23, [o for o in organizations if o][:1])
