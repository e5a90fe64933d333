"""ORM^O01 / OML^O21 -> ServiceRequest (+ Patient, Encounter, supporting Observations)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from hl7_fhir import mapping, v2
from hl7_fhir.errors import MappingError, ParseError
from hl7_fhir.fhir import validate_resource

from tests.corpus import CORPUS, hl7_files, relative

from .memory_store import MemoryStore

RADIOLOGY = CORPUS / "radiology"
Json = dict[str, Any]
HEADER = "MSH|^~\\&|EHR|HOSP|RIS|HOSP|20250301120000||ORM^O01^ORM_O01|C1|P|2.5.1\r"
PATIENT = "PID|1||MRN1^^^HOSP^MR||Doe^Jane||19800101|F\r"
ORDER = "OBR|1|P1^EHR|F1^RIS|71046^XR CHEST 2 VIEWS^C4|||||||||||||||||||||XR"


def radiology(name: str) -> v2.Message:
    return v2.parse((RADIOLOGY / name).read_bytes())


def entries(bundle: Json, resource_type: str) -> list[Json]:
    return [e for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]


def resources(bundle: Json, resource_type: str) -> list[Json]:
    return [e["resource"] for e in entries(bundle, resource_type)]


def orm(*segments: str, header: str = HEADER) -> v2.Message:
    return v2.parse(header + PATIENT + "".join(s + "\r" for s in segments))


def single_request(message: v2.Message, profile: mapping.MappingProfile | None = None) -> Json:
    (request,) = resources(mapping.to_fhir(message, profile), "ServiceRequest")
    return request


def by_type(request: Json) -> dict[str, str]:
    return {
        i["type"]["coding"][0]["code"]: i["value"] for i in request["identifier"] if "type" in i
    }


def test_radiology_order_facts() -> None:
    bundle = mapping.to_fhir(radiology("orm_o01_v25_new_order.hl7"))
    (entry,) = entries(bundle, "ServiceRequest")
    request = entry["resource"]
    assert entry["request"] == {
        "method": "PUT",
        "url": "ServiceRequest?identifier=urn:hl7v2:authority:AXIS|ACC001",
    }
    assert by_type(request) == {"PLAC": "ORD001", "FILL": "ACC001", "ACSN": "ACC001"}
    assert {i["system"] for i in request["identifier"]} == {"urn:hl7v2:authority:AXIS"}
    assert (request["status"], request["intent"]) == ("active", "order")
    assert request["code"]["coding"] == [
        {"system": "http://www.ama-assn.org/go/cpt", "code": "71046", "display": "XR CHEST 2 VIEWS"}
    ]
    assert request["priority"] == "routine"
    assert request["occurrenceDateTime"] == "2025-08-18T09:00:00Z"  # ORC-7.4
    assert request["authoredOn"] == "2025-08-17T14:00:00Z"
    assert request["requester"]["display"] == "Dr Peter Jones"
    # This sender shifted OBR-24 into OBR-23: XR is still read as the modality.
    assert request["category"][0] == {
        "text": "XR",
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                "code": "RX",
                "display": "Radiograph",
            }
        ],
    }
    (patient,) = entries(bundle, "Patient")
    assert patient["request"]["method"] == "POST"  # ensure: ADT owns demographics
    assert request["subject"] == {"reference": patient["fullUrl"]}
    (encounter,) = entries(bundle, "Encounter")
    assert encounter["resource"]["identifier"][0]["value"] == "order:ACC001"
    assert request["encounter"] == {"reference": encounter["fullUrl"]}


def test_lf_and_batch_variants_give_the_same_order() -> None:
    reference = mapping.to_fhir(radiology("orm_o01_v25_new_order.hl7"))
    lf = mapping.to_fhir(radiology("orm_o01_v25_lf_line_endings.hl7"))
    batch = v2.parse_batch((RADIOLOGY / "batch_fhs_bhs_three_messages.hl7").read_bytes())
    in_batch = mapping.to_fhir(batch[0])
    urls = {json.dumps([e["request"] for e in b["entry"]]) for b in (reference, lf, in_batch)}
    assert len(urls) == 1


def test_v23_sender_with_the_accession_in_obr2() -> None:
    request = single_request(radiology("orm_o01_v23_medsynapse.hl7"))
    assert by_type(request) == {"PLAC": "ACC123456", "ACSN": "ACC123456"}
    # OBR-18 holds a room here (CT_ROOM1): auto mode does not take it as the accession.
    assert "CT_ROOM1" not in json.dumps(request)
    assert request["priority"] == "routine"  # OBR-5 "ROUTINE"
    assert request["occurrenceDateTime"] == "2023-06-14T13:20:30Z"  # OBR-36
    assert [c["code"] for c in request["category"][0]["coding"]] == ["CT", "CT"]
    assert request["code"]["coding"][0]["code"] == "CT123"


def test_accession_path_from_the_profile_is_taken_as_is() -> None:
    profile = mapping.MappingProfile(accession_number="OBR-18")
    request = single_request(radiology("orm_o01_v23_medsynapse.hl7"), profile)
    assert by_type(request)["ACSN"] == "CT_ROOM1"
    profile = mapping.MappingProfile(accession_number="ORC-4")
    request = single_request(radiology("orm_o01_v23_medsynapse.hl7"), profile)
    assert "ACSN" not in by_type(request)  # not sent there: keyed on the placer number


def test_orders_from_two_facilities_join_when_the_profile_says_so() -> None:
    """Order numbers without an assigning authority are scoped by the sending facility;
    the v2.3 pair below comes from FACILITY (ORM) and PACS_FACILITY (ORU)."""
    order = radiology("orm_o01_v23_medsynapse.hl7")
    report = radiology("oru_r01_v23_text_report.hl7")
    plain = mapping.MappingProfile()
    assert _order_key(order, plain) != _order_key(report, plain)
    joined = mapping.MappingProfile(
        identifier_systems={
            "FACILITY": "https://hospital.example/ids",
            "PACS_FACILITY": "https://hospital.example/ids",
        }
    )
    assert _order_key(order, joined) == _order_key(report, joined)
    assert _order_key(order, joined) == "identifier=https://hospital.example/ids|ACC123456"


def _order_key(message: v2.Message, profile: mapping.MappingProfile) -> str:
    (entry,) = entries(mapping.to_fhir(message, profile), "ServiceRequest")
    request = entry["request"]
    return str(request.get("ifNoneExist") or request["url"].split("?", 1)[1])


@pytest.mark.parametrize(
    ("control", "status", "expected"),
    [
        ("NW", "", "active"),
        ("NW", "SC", "active"),
        ("NW", "IP", "active"),
        ("CA", "", "revoked"),
        ("OC", "", "revoked"),
        ("CR", "", "revoked"),
        ("DC", "", "revoked"),
        ("HD", "", "on-hold"),
        ("XO", "", "active"),
        ("XX", "", "active"),
        ("SC", "CM", "completed"),
        ("SC", "CA", "revoked"),
        ("SC", "HD", "on-hold"),
        ("SC", "DC", "revoked"),
        ("SC", "ER", "entered-in-error"),
    ],
)
def test_order_status(control: str, status: str, expected: str) -> None:
    request = single_request(orm(f"ORC|{control}|P1^EHR|F1^RIS||{status}", ORDER))
    assert request["status"] == expected


def test_order_status_that_is_not_a_code_is_kept_as_a_note() -> None:
    request = single_request(orm("ORC|NW|P1^EHR|F1^RIS||UNKNOWN", ORDER))
    assert request["status"] == "active"
    assert {"text": "Order status: UNKNOWN"} in request["note"]


def test_unknown_order_control_is_a_mapping_error() -> None:
    with pytest.raises(MappingError) as info:
        mapping.to_fhir(orm("ORC|ZZ|P1^EHR", ORDER))
    assert info.value.location == "ORC-1"


@pytest.mark.parametrize(
    ("tq1", "orc7", "obr5", "expected"),
    [
        ("TQ1|1||||||20250302080000|20250302090000|S", "", "", "stat"),
        ("", "^^^20250302080000^^A", "", "asap"),
        ("", "", "P", "urgent"),
        ("", "^^^20250302080000^^T", "R", "urgent"),  # ORC-7.6 before OBR-5
    ],
)
def test_priority_and_timing(tq1: str, orc7: str, obr5: str, expected: str) -> None:
    segments = [f"ORC|NW|P1^EHR|F1^RIS||||{orc7}"]
    if tq1:
        segments.append(tq1)
    segments.append(f"OBR|1|P1^EHR|F1^RIS|71046^XR^C4|{obr5}")
    request = single_request(orm(*segments))
    assert request["priority"] == expected
    if tq1:
        assert request["occurrencePeriod"] == {
            "start": "2025-03-02T08:00:00Z",
            "end": "2025-03-02T09:00:00Z",
        }
    elif orc7:
        assert request["occurrenceDateTime"] == "2025-03-02T08:00:00Z"


def segment(name: str, fields: dict[int, str]) -> str:
    """A segment with the given fields set (1-based), the rest empty."""
    values = [""] * max(fields)
    for number, value in fields.items():
        values[number - 1] = value
    return "|".join([name, *values])


def test_order_details_reason_notes_requisition() -> None:
    request = single_request(
        orm(
            segment(
                "ORC",
                {
                    1: "NW",
                    2: "P1^EHR",
                    3: "F1^RIS",
                    4: "G7^EHR",
                    9: "20250301115900",
                    12: "77^Ordering^Olive^^^Dr",
                    16: "CH^Changed^L",
                },
            ),
            segment(
                "OBR", {1: "1", 2: "P1^EHR", 3: "F1^RIS", 4: "71046^XR^C4", 31: "R05^Cough^I10"}
            ),
            "NTE|1|P|Patient is claustrophobic",
            "DG1|1||J18.9^Pneumonia^I10",
        )
    )
    assert [c["coding"][0]["code"] for c in request["reasonCode"]] == ["R05", "J18.9"]
    assert request["note"] == [{"text": "Patient is claustrophobic"}]
    assert request["requisition"]["value"] == "G7"
    assert request["requisition"]["type"]["coding"][0]["code"] == "PGN"
    assert request["requester"]["display"] == "Dr Olive Ordering"
    assert request["authoredOn"] == "2025-03-01T11:59:00Z"
    assert request["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "CH"


def test_profile_code_maps_translate_the_procedure() -> None:
    profile = mapping.MappingProfile(
        code_maps={
            "C4": {"71046": mapping.CodeMapping("http://loinc.org", "36643-5", "XR Chest 2V")}
        }
    )
    request = single_request(radiology("orm_o01_v25_new_order.hl7"), profile)
    assert request["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "36643-5",
        "display": "XR Chest 2V",
    }
    assert request["code"]["coding"][1]["code"] == "71046"  # the sender's code is kept


def test_ask_at_order_entry_answers_support_the_request() -> None:
    bundle = mapping.to_fhir(
        orm(
            "ORC|NW|P1^EHR|F1^RIS",
            ORDER,
            "OBX|1|NM|8339-4^Birth weight^LN||3122|g^gram^UCUM||||||O",
            "OBX|2|CWE|57722-1^Plurality^LN||LA6112-2^Singleton^LN",
        )
    )
    (request,) = resources(bundle, "ServiceRequest")
    observations = entries(bundle, "Observation")
    assert request["supportingInfo"] == [{"reference": e["fullUrl"]} for e in observations]
    weight = observations[0]["resource"]
    assert weight["valueQuantity"]["code"] == "g"
    assert weight["status"] == "final"
    assert "basedOn" not in weight  # an answer about the order, not a result of it


def test_non_numeric_nm_value_is_a_mapping_error() -> None:
    """Decision: a value that contradicts OBX-2 is refused with its location, not
    turned into text (it would vanish from every numeric query and trend)."""
    message = orm("ORC|NW|P1^EHR", ORDER, "OBX|1|NM|8339-4^Birth weight^LN||NOVALUE|g||||||O")
    with pytest.raises(MappingError) as info:
        mapping.to_fhir(message)
    assert info.value.location == "OBX-5"
    assert "NOVALUE" in str(info.value)


def test_other_order_kinds_are_refused_not_dropped() -> None:
    with pytest.raises(MappingError) as info:
        mapping.to_fhir(orm("ORC|NW|P1^EHR", "RXO|00047040230^Ampicillin^NDC|2"))
    assert info.value.location == "RXO"


def test_orc_without_obr_is_a_status_only_request() -> None:
    request = single_request(orm("ORC|CA|P1^EHR|F1^RIS"))
    assert request["status"] == "revoked" and "code" not in request


def test_several_orders_in_one_message() -> None:
    message = orm(
        "ORC|NW|P1^EHR|F1^RIS",
        segment("OBR", {1: "1", 2: "P1^EHR", 3: "F1^RIS", 4: "71046^XR CHEST^C4", 18: "ACC9"}),
        "ORC|NW|P2^EHR|F2^RIS",
        segment("OBR", {1: "2", 2: "P2^EHR", 3: "F2^RIS", 4: "74150^CT ABDOMEN^C4", 18: "ACC9"}),
    )
    # Auto: OBR-18 repeats no order number, so it is not taken as the accession.
    urls = [e["request"]["url"] for e in entries(mapping.to_fhir(message), "ServiceRequest")]
    assert urls == [
        "ServiceRequest?identifier=urn:hl7v2:authority:RIS|F1",
        "ServiceRequest?identifier=urn:hl7v2:authority:RIS|F2",
    ]
    # A sender whose OBR-18 is the accession, one accession for two procedures: each
    # order gets its own (visibly synthetic) key instead of collapsing into one.
    profile = mapping.MappingProfile(accession_number="OBR-18")
    bundle = mapping.to_fhir(message, profile)
    urls = [e["request"]["url"] for e in entries(bundle, "ServiceRequest")]
    assert urls == [
        "ServiceRequest?identifier=urn:hl7v2:authority:HOSP:order-item|ACC9%2F71046",
        "ServiceRequest?identifier=urn:hl7v2:authority:HOSP:order-item|ACC9%2F74150",
    ]
    for request in resources(bundle, "ServiceRequest"):
        assert by_type(request)["ACSN"] == "ACC9"


def test_zsegment_rule_registers_the_imaging_study() -> None:
    profile = mapping.MappingProfile(
        z_segments=(mapping.ZSegmentRule("ZDS-1.1", "ImagingStudy.identifier"),)
    )
    message = v2.generate("orm", version="2.5.1", seed=2)
    bundle = mapping.to_fhir(message, profile)
    (entry,) = entries(bundle, "ImagingStudy")
    study = entry["resource"]
    assert study["status"] == "registered"
    assert entry["request"]["method"] == "POST"  # created only if new: the PACS owns it
    assert study["identifier"][0]["value"] == f"urn:oid:{message['ZDS-1.1']}"
    (request,) = entries(bundle, "ServiceRequest")
    assert study["basedOn"] == [{"reference": request["fullUrl"]}]


def test_replaying_an_order_converges() -> None:
    message = radiology("orm_o01_v25_new_order.hl7")
    first = mapping.to_fhir(message)
    assert json.dumps(mapping.to_fhir(message), sort_keys=True) == json.dumps(first, sort_keys=True)
    store = MemoryStore()
    for _ in range(3):
        store.transaction(mapping.to_fhir(message))
    assert len(store.all("ServiceRequest")) == 1
    assert len(store.all("Patient")) == 1
    assert len(store.all("Encounter")) == 1
    cancel = radiology("orm_o01_v25_new_order.hl7")
    cancel["ORC-1"] = "CA"
    cancel["ORC-5"] = ""
    store.transaction(mapping.to_fhir(cancel))
    (request,) = store.all("ServiceRequest")
    assert request["status"] == "revoked"


@pytest.mark.parametrize("version", ["2.3", "2.4", "2.5.1"])
def test_generated_orders_map_and_validate(version: str) -> None:
    for seed in range(40):
        bundle = mapping.to_fhir(v2.generate("orm", version=version, seed=seed))
        assert validate_resource(bundle) == []
        (request,) = resources(bundle, "ServiceRequest")
        assert request["status"] == "active" and by_type(request)["ACSN"]


def test_every_corpus_order_maps_or_fails_with_a_location(
    capsys: pytest.CaptureFixture[str],
) -> None:
    outcomes: Counter[str] = Counter()
    failures = []
    for path in hl7_files():
        try:
            messages = v2.parse_batch(path.read_bytes())
        except ParseError:
            continue
        for message in messages:
            event = f"{message.message_type}^{message.trigger_event}"
            if event not in ("ORM^O01", "OML^O21"):
                continue
            try:
                bundle = mapping.to_fhir(message)
            except MappingError as exc:
                assert exc.location, f"{relative(path)}: {exc}"
                outcomes[f"{event} refused"] += 1
                failures.append(f"{relative(path)}: {exc}")
                continue
            assert resources(bundle, "ServiceRequest"), relative(path)
            outcomes[f"{event} mapped"] += 1
    with capsys.disabled():
        print(f"\norder corpus: {dict(sorted(outcomes.items()))}")
        for failure in failures:
            print(f"  refused {failure}")
    assert outcomes["ORM^O01 mapped"] >= 30
    assert outcomes["OML^O21 mapped"] >= 19
