"""ADT -> Patient/Encounter/Practitioner, A08 updates and A40 merges, end to end."""

from __future__ import annotations

import pytest
from hl7_fhir import mapping, v2
from hl7_fhir.errors import MappingError
from hl7_fhir.fhir import validate_resource

from tests.corpus import CORPUS

from .memory_store import MemoryStore

RADIOLOGY = CORPUS / "radiology"


def radiology(name: str) -> v2.Message:
    return v2.parse((RADIOLOGY / name).read_bytes())


def entries(bundle: dict, resource_type: str) -> list[dict]:
    return [e for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]


def test_a08_patient_facts() -> None:
    bundle = mapping.to_fhir(radiology("adt_a08_v25_update.hl7"))
    (entry,) = entries(bundle, "Patient")
    patient = entry["resource"]
    assert entry["request"] == {
        "method": "PUT",
        "url": "Patient?identifier=urn:hl7v2:authority:AXIS|P001",
    }
    assert [i["value"] for i in patient["identifier"]] == ["P001", "4003123456"]
    assert patient["identifier"][0]["type"]["coding"][0]["code"] == "MR"
    assert patient["name"] == [{"family": "Doe", "given": ["John", "Andrew"]}]
    assert patient["birthDate"] == "1990-01-01"
    assert patient["gender"] == "male"
    assert patient["address"][0]["city"] == "Richmond"
    assert {"system": "phone", "value": "0499888777", "use": "mobile"} in patient["telecom"]
    assert patient["maritalStatus"]["coding"][0]["code"] == "M"


def test_profile_names_the_identifier_system() -> None:
    profile = mapping.MappingProfile(identifier_systems={"AXIS": "https://axis.example/mrn"})
    bundle = mapping.to_fhir(radiology("adt_a08_v25_update.hl7"), profile)
    (entry,) = entries(bundle, "Patient")
    assert entry["request"]["url"] == "Patient?identifier=https://axis.example/mrn|P001"


def test_a08_then_update_changes_phone_and_address_in_place() -> None:
    store = MemoryStore()
    store.transaction(mapping.to_fhir(radiology("orm_o01_v25_new_order.hl7")))
    before = {p["id"]: p for p in store.all("Patient")}
    assert len(before) == 1
    (old,) = before.values()
    assert old["address"][0]["city"] == "Melbourne"
    store.transaction(mapping.to_fhir(radiology("adt_a08_v25_update.hl7")))
    after = store.all("Patient")
    assert len(after) == 1, "the A08 must update the same patient, not add one"
    patient = after[0]
    assert patient["id"] == old["id"]
    assert patient["address"][0]["city"] == "Richmond"
    assert [t["value"] for t in patient["telecom"]] == ["0499888777"]


def test_replaying_a08_converges() -> None:
    store = MemoryStore()
    message = radiology("adt_a08_v25_update.hl7")
    for _ in range(3):
        store.transaction(mapping.to_fhir(message))
    assert len(store.all("Patient")) == 1
    assert len(store.all("Encounter")) <= 1


def test_a40_links_the_two_patients() -> None:
    store = MemoryStore()
    merged_adt = radiology("adt_a08_v25_update.hl7")
    merged_adt["PID-3"] = [("P777", "", "", "AXIS", "MR")]
    store.transaction(mapping.to_fhir(merged_adt))
    store.transaction(mapping.to_fhir(radiology("adt_a08_v25_update.hl7")))
    assert len(store.all("Patient")) == 2
    store.transaction(mapping.to_fhir(radiology("adt_a40_v25_merge.hl7")))
    patients = {p["identifier"][0]["value"]: p for p in store.all("Patient")}
    assert set(patients) == {"P001", "P777"}
    survivor, merged = patients["P001"], patients["P777"]
    assert merged["active"] is False
    assert merged["link"] == [
        {"other": {"reference": f"Patient/{survivor['id']}"}, "type": "replaced-by"}
    ]
    assert {"other": {"reference": f"Patient/{merged['id']}"}, "type": "replaces"} in survivor[
        "link"
    ]


@pytest.mark.parametrize("kind", ["adt_a01", "adt_a04", "adt_a08", "adt_a40"])
@pytest.mark.parametrize("version", ["2.3", "2.5.1"])
def test_generated_adt_maps_and_validates(kind: str, version: str) -> None:
    for seed in range(15):
        message = v2.generate(kind, version=version, seed=seed)
        bundle = mapping.to_fhir(message)
        assert validate_resource(bundle) == []
        assert entries(bundle, "Patient")


def test_encounter_with_visit_number_and_practitioners() -> None:
    message = v2.generate("adt_a01", seed=3)
    message["PV1-19"] = ("V123", "", "", "AXIS", "VN")
    message["PV1-7"] = ("1234", "Jones", "Peter", "", "", "Dr")
    bundle = mapping.to_fhir(message)
    (encounter,) = entries(bundle, "Encounter")
    assert encounter["request"]["url"] == "Encounter?identifier=urn:hl7v2:authority:AXIS|V123"
    participant = encounter["resource"]["participant"][0]
    assert participant["type"][0]["coding"][0]["code"] == "ATND"
    practitioners = entries(bundle, "Practitioner")
    assert any(p["resource"]["name"][0]["family"] == "Jones" for p in practitioners)


def test_bad_birth_date_names_the_field() -> None:
    message = radiology("adt_a08_v25_update.hl7")
    message["PID-7"] = "19901399"
    with pytest.raises(MappingError) as info:
        mapping.to_fhir(message)
    assert info.value.location == "PID-7"


def test_missing_pid_is_a_mapping_error() -> None:
    message = v2.parse("MSH|^~\\&|A|B|C|D|20250101||ADT^A08|1|P|2.5\rEVN|A08\r")
    with pytest.raises(MappingError) as info:
        mapping.to_fhir(message)
    assert info.value.location == "PID"


def test_unsupported_event() -> None:
    message = v2.parse("MSH|^~\\&|A|B|C|D|20250101||ZZZ^Z99|1|P|2.5\r")
    with pytest.raises(MappingError) as info:
        mapping.to_fhir(message)
    assert info.value.location == "MSH-9"


def test_deterministic_ids_and_batch() -> None:
    profile = mapping.MappingProfile(deterministic_ids=True, organization="org-a")
    first = mapping.to_fhir(radiology("adt_a08_v25_update.hl7"), profile)
    again = mapping.to_fhir(radiology("adt_a08_v25_update.hl7"), profile)
    other_org = mapping.to_fhir(
        radiology("adt_a08_v25_update.hl7"),
        mapping.MappingProfile(deterministic_ids=True, organization="org-b"),
    )
    patient = entries(first, "Patient")[0]
    assert patient["request"]["url"] == f"Patient/{patient['resource']['id']}"
    assert entries(again, "Patient")[0]["resource"]["id"] == patient["resource"]["id"]
    assert entries(other_org, "Patient")[0]["resource"]["id"] != patient["resource"]["id"]
    batch = mapping.to_fhir(radiology("adt_a08_v25_update.hl7"), bundle_type="batch")
    assert batch["type"] == "batch"
    assert all(e["request"]["method"] == "PUT" for e in batch["entry"])


def test_message_bundle_has_header_first_and_provenance() -> None:
    profile = mapping.MappingProfile(include_provenance=True)
    bundle = mapping.to_fhir(radiology("adt_a08_v25_update.hl7"), profile, bundle_type="message")
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds[0] == "MessageHeader"
    assert "Provenance" in kinds
    assert all("request" not in e for e in bundle["entry"])
    header = bundle["entry"][0]["resource"]
    assert header["eventCoding"]["code"] == "A08"


def test_birth_time_goes_into_the_birth_time_extension() -> None:
    message = radiology("adt_a08_v25_update.hl7")
    message["PID-7"] = "199001010830+1000"
    patient = entries(mapping.to_fhir(message), "Patient")[0]["resource"]
    assert patient["birthDate"] == "1990-01-01"
    extension = patient["_birthDate"]["extension"][0]
    assert extension["url"].endswith("patient-birthTime")
    assert extension["valueDateTime"] == "1990-01-01T08:30:00+10:00"
    date_only = entries(mapping.to_fhir(radiology("adt_a08_v25_update.hl7")), "Patient")[0][
        "resource"
    ]
    assert "_birthDate" not in date_only
