"""FHIR HumanName, practitioner References, Address and ContactPoint -> XPN, XCN, XAD, XTN."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ...v2._segment import Value
from ._common import Writer, hd, identifier_type_code, trim

__all__ = ["cnn", "name_parts", "preferred_name", "xad", "xcn", "xpn", "xtn"]

Json = dict[str, Any]
# HumanName.use -> table 0200 (the reverse of the IG NameType map the forward mapping uses).
NAME_USE = {
    "official": "L",
    "usual": "D",
    "maiden": "M",
    "nickname": "N",
    "anonymous": "S",
    "temp": "T",
    "old": "BAD",
}
# Address.use / Address.type -> table 0190 (reverse of the IG AddressType map).
ADDRESS_USE = {"home": "H", "work": "B", "temp": "C", "old": "BA", "billing": "BI"}
# ContactPoint.use -> table 0201, ContactPoint.system -> table 0202 (reverse of the IG maps).
TELECOM_USE = {"home": "PRN", "work": "WPN", "mobile": "PRN", "temp": "ORN"}
TELECOM_EQUIPMENT = {"phone": "PH", "fax": "FX", "pager": "BP", "sms": "CP"}
_GENERATIONAL = re.compile(r"^(JR|SR|I{1,3}|IV|V|VI{1,3})\.?$", re.IGNORECASE)


def split_suffixes(suffixes: Sequence[str]) -> tuple[str, str]:
    """(generational suffix, degree): ``Jr``/``III`` go to the suffix component, the
    rest (``MD``, ``MBBS``) to the degree, since FHIR keeps both in ``suffix``."""
    generational = [s for s in suffixes if _GENERATIONAL.match(s)]
    degrees = [s for s in suffixes if not _GENERATIONAL.match(s)]
    return " ".join(generational), " ".join(degrees)


def name_parts(name: Json | None, display: str = "") -> tuple[str, str, str, str, str, str]:
    """(family, given, middle, suffix, prefix, degree) of a HumanName.

    A name with only ``text`` (or only a Reference display) goes whole into family.
    """
    if not name:
        return (display, "", "", "", "", "")
    given = [str(g) for g in name.get("given", [])]
    family = str(name.get("family") or "")
    if not family and not given:
        family = str(name.get("text") or display)
    suffix, degree = split_suffixes([str(s) for s in name.get("suffix", [])])
    return (
        family,
        given[0] if given else "",
        " ".join(given[1:]),
        suffix,
        " ".join(str(p) for p in name.get("prefix", [])),
        degree,
    )


def xpn(name: Json) -> Value:
    """HumanName -> XPN: family^given^middle^suffix^prefix^degree^name type."""
    family, given, middle, suffix, prefix, degree = name_parts(name)
    if not family and not given:
        return ""
    return (family, given, middle, suffix, prefix, degree, NAME_USE.get(name.get("use", ""), ""))


def preferred_name(names: Sequence[Json]) -> Json | None:
    """The official (else usual, else first) HumanName."""
    for use in ("official", "usual"):
        for name in names:
            if name.get("use") == use:
                return name
    return names[0] if names else None


def xcn(writer: Writer, reference: Json | None, *, container: Json | None = None) -> Value:
    """A Reference to a Practitioner (or PractitionerRole) -> XCN.

    id^family^given^middle^suffix^prefix^degree^^authority^^^^identifier type. The
    Practitioner is looked up among the resources; an unresolvable Reference gives its
    ``identifier`` and ``display`` (the display whole in the family component).
    """
    if not reference:
        return ""
    target = writer.resources.resolve(reference, container)
    if target is not None and target.get("resourceType") == "PractitionerRole":
        target = writer.resources.resolve(target.get("practitioner"), target) or {
            "identifier": target.get("identifier", [])
        }
    identifiers = (target or {}).get("identifier") or (
        [reference["identifier"]] if reference.get("identifier") else []
    )
    ident: Json = next((i for i in identifiers if i.get("value")), {})
    name = preferred_name((target or {}).get("name", []))
    family, given, middle, suffix, prefix, degree = name_parts(
        name, str(reference.get("display") or "")
    )
    system = ident.get("system")
    authority = "" if system == writer.profile.system_for("practitioner") else system
    return (
        str(ident.get("value") or ""),
        family,
        given,
        middle,
        suffix,
        prefix,
        degree,
        "",
        hd(authority, writer.profile),
        "",
        "",
        "",
        identifier_type_code(ident) if ident else "",
    )


def cnn(writer: Writer, reference: Json | None) -> Value:
    """A Reference to a Practitioner -> NDL (OBR-32/33): the person as subcomponents
    of the first component (id&family&given&middle&suffix&prefix&degree&&authority)."""
    person = trim(xcn(writer, reference))
    if not person:
        return ""
    parts = person if isinstance(person, tuple) else (person,)
    subs: list[Value] = list(parts[:8])
    if len(parts) > 8:
        subs += list(parts[8]) if isinstance(parts[8], tuple) else [parts[8]]
    return (tuple(subs),)


def xad(address: Json) -> Value:
    """Address -> XAD: line 1^other lines^city^state^postal code^country^type^^district.

    Lines after the second join the second (XAD.2, other designation) with ``", "``;
    ``type: postal`` is a mailing address (``M``), otherwise the use decides.
    """
    lines = [str(line) for line in address.get("line", []) if line]
    kind = "M" if address.get("type") == "postal" else ADDRESS_USE.get(address.get("use", ""), "")
    street = lines[0] if lines else ""
    if not street and not lines and address.get("text") and not address.get("city"):
        street = str(address["text"])
    return (
        street,
        ", ".join(lines[1:]),
        str(address.get("city") or ""),
        str(address.get("state") or ""),
        str(address.get("postalCode") or ""),
        str(address.get("country") or ""),
        kind,
        "",
        str(address.get("district") or ""),
    )


def xtn(point: Json) -> tuple[str, Value]:
    """ContactPoint -> (use, XTN): number^use code^equipment^email.

    Email (and url) go to XTN.4 with ``NET^Internet``; a mobile is ``PRN^CP``, a pager
    ``BPN^BP``. The returned use is the FHIR one, so a caller can put work numbers in
    PID-14 and the rest in PID-13.
    """
    value = str(point.get("value") or "")
    use = str(point.get("use") or "")
    system = point.get("system")
    if not value:
        return use, ""
    if system in ("email", "url"):
        return use, ("", "NET", "Internet", value)
    equipment = TELECOM_EQUIPMENT.get(str(system), "")
    use_code = TELECOM_USE.get(use, "")
    if use == "mobile":
        equipment = "CP"
    if system == "pager":
        use_code = "BPN"
    return use, (value, use_code, equipment)
