"""Numbers, units (UCUM where possible), SN values, reference ranges and times from v2.

Is this unit UCUM? A small recogniser for the units results actually carry.

Senders often write UCUM without saying so (OBX-6 ``mg/dL`` with no coding system), or
near-UCUM spellings (``mg/dl``, ``mmHg``, ``x10E3/uL``). A Quantity may only carry a
UCUM ``system``/``code`` when the code is UCUM, so: known spellings are translated, and
anything else is accepted only when it parses as UCUM built from common atoms. What is
not recognised keeps its text in ``Quantity.unit`` and gets no code (never a wrong one).

>>> ucum_code("mg/dL"), ucum_code("mmHg"), ucum_code("x10E3/uL"), ucum_code("cells")
('mg/dL', 'mm[Hg]', '10*3/uL', None)
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import MappingError
from ..v2 import Repetition
from ._codes import code_system_uri
from ._datatypes import LOCAL_CODE_SYSTEM

__all__ = [
    "UCUM",
    "hl7_time",
    "parse_number",
    "quantity",
    "reference_range",
    "structured_number",
    "ucum_code",
    "unit_of",
]

UCUM = "http://unitsofmeasure.org"
Json = dict[str, Any]
_NUMBER = re.compile(r"^\s*(<=|>=|<|>)?\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*$")
_RANGE = re.compile(r"^\s*(-?(?:\d+\.?\d*|\.\d+))\s*(?:-|–|to)\s*(-?(?:\d+\.?\d*|\.\d+))\s*$")
_TIME = re.compile(r"^(\d{2})(\d{2})?(\d{2})?(\.\d{1,4})?([+-]\d{4})?$")
_BOUND = re.compile(r"^\s*(<=|>=|<|>)\s*(-?(?:\d+\.?\d*|\.\d+))\s*$")

# Common non-UCUM spellings -> the UCUM code.
_SPELLINGS = {
    "mg/dl": "mg/dL", "g/dl": "g/dL", "ug/dl": "ug/dL", "ng/dl": "ng/dL", "gm/dl": "g/dL",
    "mmol/l": "mmol/L", "umol/l": "umol/L", "nmol/l": "nmol/L", "pmol/l": "pmol/L",
    "meq/l": "meq/L", "mEq/L": "meq/L", "mEq/l": "meq/L", "u/l": "U/L", "iu/l": "[IU]/L",
    "IU/L": "[IU]/L", "IU/mL": "[IU]/mL", "mIU/mL": "m[IU]/mL", "mIU/L": "m[IU]/L",
    "uIU/mL": "u[IU]/mL", "IU": "[IU]", "beats/min": "/min", "bpm": "/min",
    "breaths/min": "/min", "/minute": "/min", "mmHg": "mm[Hg]", "mm Hg": "mm[Hg]",
    "cmH2O": "cm[H2O]", "degC": "Cel", "deg C": "Cel", "°C": "Cel", "degF": "[degF]",
    "deg F": "[degF]", "°F": "[degF]", "in": "[in_i]", "inch": "[in_i]", "inches": "[in_i]",
    "ft": "[ft_i]", "lb": "[lb_av]", "lbs": "[lb_av]", "oz": "[oz_av]", "sec": "s",
    "secs": "s", "seconds": "s", "hr": "h", "hrs": "h", "hours": "h", "yr": "a", "yrs": "a",
    "year": "a", "years": "a", "day": "d", "days": "d", "week": "wk", "weeks": "wk",
    "month": "mo", "months": "mo", "x10E3/uL": "10*3/uL", "x10E6/uL": "10*6/uL",
    "K/uL": "10*3/uL", "K/mm3": "10*3/mm3", "M/uL": "10*6/uL", "10^3/uL": "10*3/uL",
    "10^6/uL": "10*6/uL", "10^9/L": "10*9/L", "10^12/L": "10*12/L", "x10^9/L": "10*9/L",
    "x10^12/L": "10*12/L", "10E9/L": "10*9/L", "10E12/L": "10*12/L",
    "mL/min/1.73m2": "mL/min/{1.73_m2}", "mL/min/1.73 m2": "mL/min/{1.73_m2}",
    "percent": "%", "Percent": "%", "pct": "%", "gm": "g", "gram": "g", "grams": "g",
    "ml": "mL", "kg/m^2": "kg/m2", "cells/uL": "{cells}/uL", "ratio": "{ratio}",
}  # fmt: skip
# Atoms (with the prefixes below) that make up the units of lab results and vital signs.
_ATOMS = (
    "g|L|l|m|s|min|h|d|wk|mo|a|mol|eq|osm|U|\\[IU\\]|\\[iU\\]|%|Cel|\\[degF\\]|K|"
    "mm\\[Hg\\]|cm\\[H2O\\]|\\[in_i\\]|\\[ft_i\\]|\\[lb_av\\]|\\[oz_av\\]|Pa|bar|J|cal|W|V|A|"
    "Hz|kat|\\[pH\\]|\\[ppm\\]|\\[ppb\\]|\\[HPF\\]|\\[LPF\\]|\\[drp\\]|t|B|"
    "\\[arb'U\\]|\\[CFU\\]|\\[PFU\\]|\\[FFU\\]|\\[APL'U\\]|\\[GPL'U\\]|\\[MPL'U\\]"
)
_PREFIX = "(?:da|[YZEPTGMkhdcmunpfazy])?"
_COMPONENT = re.compile(
    rf"^(?:(?:{_PREFIX}(?:{_ATOMS}))[+-]?\d*(?:\{{\}})?|\d+|10\*[+-]?\d+|10\^[+-]?\d+|\{{\}})$"
)
_ANNOTATION = re.compile(r"\{[^{}]*\}")


def ucum_code(unit: str) -> str | None:
    """The UCUM code for a unit as senders write it, or None when it is not UCUM."""
    unit = unit.strip()
    if not unit:
        return None
    if unit in _SPELLINGS:
        return _SPELLINGS[unit]
    if unit.lower() in _SPELLINGS:
        return _SPELLINGS[unit.lower()]
    if " " in unit or "(" in unit:
        return None
    bare = _ANNOTATION.sub("{}", unit)
    parts = re.split(r"[./]", bare.removeprefix("/"))
    if all(part and _COMPONENT.match(part) for part in parts):
        return unit
    return None


def parse_number(text: str, where: str) -> tuple[str, int | float]:
    """``"<5"`` -> ``("<", 5)``; ``"6.80"`` -> ``("", 6.8)``.

    Raises:
        MappingError: not a number (``where`` is the location).
    """
    match = _NUMBER.match(text)
    if match is None:
        raise MappingError(f"not a number: {text!r}", location=where)
    comparator, number = match.group(1) or "", match.group(2)
    if re.fullmatch(r"[+-]?\d+", number):
        return comparator, int(number)
    return comparator, float(number)


def unit_of(rep: Repetition | None) -> Json:
    """OBX-6 (CE/CWE, or plain text before 2.5) -> Quantity unit/system/code."""
    if rep is None:
        return {}
    code, text, system_name = rep[1].strip(), rep[2].strip(), rep[3].strip()
    if not code and not text:
        return {}
    unit = text or code
    if system_name.upper() == "UCUM" and code:
        return {"unit": unit, "system": UCUM, "code": code}
    standard = ucum_code(code or text)
    if standard:
        return {"unit": unit, "system": UCUM, "code": standard}
    if system_name and code:
        system = code_system_uri(system_name) or LOCAL_CODE_SYSTEM.format(
            name=re.sub(r"[^A-Za-z0-9._-]", "-", system_name)
        )
        return {"unit": unit, "system": system, "code": code}
    return {"unit": unit}


def quantity(text: str, unit: Json, where: str, *, simple: bool = False) -> Json:
    comparator, number = parse_number(text, where)
    quantity: Json = {"value": number, **unit}
    if comparator and not simple:
        quantity["comparator"] = comparator
    return quantity


def reference_range(text: str, unit: Json) -> Json | None:
    """OBX-7: ``3.5-5.0``, ``<200``, ``>10`` -> low/high (same unit as the value), text kept."""
    text = text.strip()
    if not text:
        return None
    element: Json = {"text": text}
    quantity = {k: v for k, v in unit.items() if k in ("unit", "system", "code")}
    match = _RANGE.match(text)
    if match:
        low, high = (parse_number(g, "OBX-7")[1] for g in match.groups())
        element["low"] = {"value": low, **quantity}
        element["high"] = {"value": high, **quantity}
    elif (bound := _BOUND.match(text)) is not None:
        value = parse_number(bound.group(2), "OBX-7")[1]
        element["high" if bound.group(1).startswith("<") else "low"] = {"value": value, **quantity}
    return element


def structured_number(rep: Repetition, unit: Json, where: str) -> Json:
    """SN (comparator^num1^separator/suffix^num2) after the IG's conditions."""
    comparator, first, separator, second = (rep[i].strip() for i in (1, 2, 3, 4))
    if comparator and not first and comparator not in ("<", "<=", ">", ">=", "=", "<>"):
        comparator, first = "", comparator  # "<0.10" sent in SN.1: read as a number
    if comparator == "<>" or separator == "+" or (separator and separator not in ":/-"):
        return {"valueString": "".join(p for p in (comparator, first, separator, second) if p)}
    if separator in (":", "/"):
        numerator = quantity(comparator + first, unit, f"{where}.2")
        return {
            "valueRatio": {
                "numerator": numerator,
                "denominator": quantity(second, {}, f"{where}.4"),
            }
        }
    if separator == "-":
        return {
            "valueRange": {
                "low": quantity(first, unit, f"{where}.2", simple=True),
                "high": quantity(second, unit, f"{where}.4", simple=True),
            }
        }
    prefix = comparator if comparator in ("<", "<=", ">", ">=") else ""
    return {"valueQuantity": quantity(prefix + first, unit, f"{where}.2")}


def hl7_time(text: str, where: str) -> str:
    """TM (``HHMM[SS[.S]][+ZZZZ]``) -> FHIR time ``HH:MM:SS`` (FHIR times have no zone).

    Raises:
        MappingError: not a time.
    """
    match = _TIME.match(text.strip())
    if match is None:
        raise MappingError(f"not an HL7 time: {text!r}", location=where)
    hour, minute, second = (int(g or 0) for g in match.groups()[:3])
    if hour > 23 or minute > 59 or second > 59:
        raise MappingError(f"not an HL7 time: {text!r}", location=where)
    return f"{hour:02d}:{minute:02d}:{second:02d}"
