"""Regenerate `hl7_fhir/fhir/_r4_structures.json` from fhirclient's FHIR R4 (4.0.1) models.

fhir.resources only ships R4B models, which lack 17 R4 resource types and define Evidence
and EvidenceVariable differently; fhirclient 4.x is generated from the R4 4.0.1
StructureDefinitions, so its element lists are the R4 truth for those types. Only a
development tool (fhirclient is not a dependency of the library):

    uv run --with fhirclient==4.4.0 python -m tests.hl7_fhir.fhir.r4_structures_gen
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import hl7_fhir.fhir

#: R4 types whose R4B model is missing or differs (see _r4.py's docstring).
ROOTS = (
    "EffectEvidenceSynthesis",
    "Evidence",
    "EvidenceVariable",
    "MedicinalProduct",
    "MedicinalProductAuthorization",
    "MedicinalProductContraindication",
    "MedicinalProductIndication",
    "MedicinalProductIngredient",
    "MedicinalProductInteraction",
    "MedicinalProductManufactured",
    "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect",
    "RiskEvidenceSynthesis",
    "SubstanceNucleicAcid",
    "SubstancePolymer",
    "SubstanceProtein",
    "SubstanceReferenceInformation",
    "SubstanceSourceMaterial",
    "SubstanceSpecification",
)
TARGET = Path(hl7_fhir.fhir.__file__).with_name("_r4_structures.json")
_PRIMITIVES = {
    "str": "string",
    "bool": "boolean",
    "int": "integer",
    "float": "decimal",
    "FHIRDate": "date",
    "FHIRDateTime": "dateTime",
    "FHIRInstant": "instant",
    "FHIRTime": "time",
    "FHIRReference": "Reference",  # fhirclient's name for the Reference data type
}


def _r4b_datatype(name: str) -> bool:
    try:
        module = importlib.import_module(f"fhir.resources.R4B.{name.lower()}")
    except ImportError:
        return False
    return hasattr(module, name)


def generate() -> dict[str, Any]:
    from fhirclient.models.fhirabstractbase import FHIRAbstractBase  # type: ignore[import-not-found]

    structures: dict[str, list[list[Any]]] = {}

    def add(cls: Any) -> None:
        name = cls.__name__
        if name in structures:
            return
        elements: list[list[Any]] = []
        structures[name] = elements
        for _, jsname, typ, is_list, of_many, required in cls().elementProperties():
            kind = _PRIMITIVES.get(typ.__name__, typ.__name__)
            elements.append([jsname, kind, bool(is_list), bool(required), of_many])
            if (
                issubclass(typ, FHIRAbstractBase)
                and kind != "Resource"
                and (kind in ROOTS or not _r4b_datatype(kind))
            ):
                add(typ)

    for root in ROOTS:
        module = importlib.import_module(f"fhirclient.models.{root.lower()}")
        add(getattr(module, root))
    return {
        "source": "fhirclient 4.4.0 models (FHIR R4 4.0.1)",
        "roots": list(ROOTS),
        "structures": structures,
    }


if __name__ == "__main__":
    TARGET.write_text(json.dumps(generate(), indent=None, separators=(",", ":")) + "\n")
    print(f"wrote {TARGET}")
