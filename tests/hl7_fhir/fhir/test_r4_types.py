"""The R4 types fhir.resources' R4B models get wrong are checked against the R4 table.

Found by posting the Microsoft FHIR server's R4 examples to the store: 17 valid R4
examples were refused as "unknown resource type" (types R4B dropped) and the R4 Evidence
example as invalid (R4B redefined Evidence).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hl7_fhir import fhir
from hl7_fhir.fhir import R4_ONLY_TYPES, is_r4_type, resource_model, validate_resource
from hl7_fhir.fhir._r4 import _datatype_model, _table

from tests.hl7_fhir.mapping.fhir_samples import FHIR_EXAMPLES

Json = dict[str, Any]

#: Corpus examples of types R4B dropped or redefined, by file name.
R4_ONLY_EXAMPLES = (
    "MedicinalProduct.json",
    "effectevidencesynthesis-example.json",
    "evidence-example.json",
    "evidencevariable-example.json",
    "medicinalproductauthorization-example.json",
    "medicinalproductindication-example.json",
    "medicinalproductingredient-example.json",
    "medicinalproductinteraction-example.json",
    "medicinalproductmanufactured-example.json",
    "medicinalproductpackaged-example.json",
    "medicinalproductpharmaceutical-example.json",
    "medicinalproductundesirableeffect-example.json",
    "riskevidencesynthesis-example.json",
    "substancenucleicacid-example.json",
    "substancespecification-example.json",
)


def _example(name: str) -> Json:
    data: Json = json.loads((FHIR_EXAMPLES / name).read_text(encoding="utf-8-sig"))
    return data


def _where(issues: list[fhir.Issue]) -> dict[str, str]:
    return {issue.expression: issue.code for issue in issues}


def medicinal_product(**extra: Any) -> Json:
    return {
        "resourceType": "MedicinalProduct",
        "name": [{"productName": "Aspirin 100 mg", "countryLanguage": []}],
        **extra,
    }


@pytest.mark.parametrize("name", R4_ONLY_EXAMPLES)
def test_r4_examples_of_types_r4b_dropped_or_redefined_are_valid(name: str) -> None:
    resource = _example(name)
    assert resource["resourceType"] in R4_ONLY_TYPES
    assert validate_resource(resource) == []


def test_the_r4b_model_alone_would_refuse_r4_evidence() -> None:
    """Why Evidence is in the table: R4B requires `variableDefinition`, R4 has no such thing."""
    errors = resource_model("Evidence").model_json_schema()["required"]
    assert "variableDefinition" in errors
    r4b_shaped = {"resourceType": "Evidence", "status": "active", "variableDefinition": []}
    assert _where(validate_resource(r4b_shaped)) == {
        "Evidence.variableDefinition": "structure",
        "Evidence.exposureBackground": "required",  # 1..1 in R4
    }


def test_dropped_types_are_r4_types() -> None:
    assert resource_model("MedicinalProduct") is None  # R4B does not know it...
    assert is_r4_type("MedicinalProduct")  # ...R4 does
    assert is_r4_type("SubstanceSpecification") and is_r4_type("Patient")
    assert not is_r4_type("MedicinalProductFoo") and not is_r4_type("patient")


def test_a_missing_required_element_is_found() -> None:
    issues = validate_resource(medicinal_product(name=[{"namePart": [{"part": "Aspirin"}]}]))
    assert _where(issues) == {
        "MedicinalProduct.name[0].productName": "required",
        "MedicinalProduct.name[0].namePart[0].type": "required",
    }


def test_an_unknown_element_and_a_wrong_cardinality_are_found() -> None:
    issues = validate_resource(medicinal_product(brand="Aspro", domain=[{"text": "Human"}]))
    assert _where(issues) == {
        "MedicinalProduct.brand": "structure",
        "MedicinalProduct.domain": "structure",
    }
    assert "Extra inputs" in issues[1].diagnostics or "Extra inputs" in issues[0].diagnostics


def test_primitive_formats_are_checked() -> None:
    resource = {
        "resourceType": "MedicinalProductAuthorization",
        "statusDate": "2015-02-30T10:00",  # a dateTime with a time needs seconds and a zone
        "restoreDate": "2015-02-07T13:28:17Z",
        "procedure": {"type": {"text": "x"}, "dateDateTime": 2015},
    }
    assert _where(validate_resource(resource)) == {
        "MedicinalProductAuthorization.statusDate": "value",
        "MedicinalProductAuthorization.procedure.dateDateTime": "value",
    }


def test_choice_groups_need_exactly_one_value_when_required() -> None:
    base = {"resourceType": "EvidenceVariable", "status": "draft"}
    missing = {**base, "characteristic": [{"description": "adults"}]}
    assert _where(validate_resource(missing)) == {
        "EvidenceVariable.characteristic[0].definition[x]": "required"
    }
    both = {
        **base,
        "characteristic": [{"definitionCanonical": "http://x", "definitionExpression": {}}],
    }
    found = validate_resource(both)
    assert "EvidenceVariable.characteristic[0].definition[x]" in _where(found)
    assert _where(validate_resource({**base})) == {"EvidenceVariable.characteristic": "required"}


def test_shared_data_types_are_checked_by_the_r4b_models() -> None:
    resource = medicinal_product(combinedPharmaceuticalDoseForm={"coding": [{"cod": "x"}]})
    assert _where(validate_resource(resource)) == {
        "MedicinalProduct.combinedPharmaceuticalDoseForm.coding[0].cod": "structure"
    }


def test_contained_resources_are_validated_with_their_location() -> None:
    resource = medicinal_product(contained=[{"resourceType": "Patient", "gender": "mal"}])
    assert _where(validate_resource(resource)) == {
        "MedicinalProduct.contained[0].gender": "code-invalid"
    }


def test_the_table_covers_every_root_and_names_only_checkable_types() -> None:
    roots, structures = _table()
    assert roots == R4_ONLY_TYPES and len(roots) == 20
    assert roots <= set(structures)
    primitives = {"string", "boolean", "integer", "decimal", "date", "dateTime", "instant"}
    for elements in structures.values():
        for element in elements:
            if element.type in structures or element.type in primitives | {"Resource", "time"}:
                continue
            assert _datatype_model(element.type) is not None, element


def test_exports() -> None:
    assert sorted(fhir.__all__) == [
        "Issue",
        "R4B_ONLY_TYPES",
        "R4_ONLY_TYPES",
        "REQUIRED_BINDINGS",
        "binding_violations",
        "is_r4_type",
        "is_valid",
        "resource_model",
        "validate_resource",
    ]
    for name in fhir.__all__:
        assert getattr(fhir, name) is not None


def test_types_r4b_added_are_not_r4() -> None:
    assert not fhir.is_r4_type("SubstanceDefinition")
    issues = fhir.validate_resource({"resourceType": "Citation", "status": "active"})
    assert [(i.code, i.expression) for i in issues] == [("not-supported", "Citation")]
