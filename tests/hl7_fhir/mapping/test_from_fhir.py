"""FHIR R4 -> HL7 v2: ADT, ORM and SIU builders on hand-written resources and public
examples (ORU: test_from_fhir_results.py; the round trip: test_round_trip.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hl7_fhir import mapping
from hl7_fhir.errors import MappingError
from hl7_fhir.mapping._reverse._common import dtm

from .fhir_samples import (
    Json,
    build,
    bundle_resources,
    fhir_example,
    patient,
    practitioner,
    service_request,
    typed,
)

# -- datatypes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fhir", "hl7"),
    [
        ("1990", "1990"),
        ("1990-01", "199001"),
        ("1990-01-02", "19900102"),
        ("2025-08-18T09:00:00Z", "20250818090000+0000"),
        ("2025-08-18T09:00:00+10:00", "20250818090000+1000"),
        ("2025-08-18T09:00:00.123456-05:30", "20250818090000.1234-0530"),
        ("2025-08-18T09:00:00", "20250818090000"),
    ],
)
def test_dates_keep_precision_and_offset(fhir: str, hl7: str) -> None:
    assert dtm(fhir, "x") == hl7


def test_a_bad_date_names_the_element() -> None:
    with pytest.raises(MappingError) as caught:
        build(patient(birthDate="01/02/1990"), "ADT^A08")
    assert caught.value.args[0].startswith("Patient.birthDate")


# -- ADT -----------------------------------------------------------------------------


def test_patient_to_adt_a08() -> None:
    profile = mapping.MappingProfile(identifier_systems={"HOSP": "https://hospital.example/ids"})
    msg = build(patient(), "ADT^A08", profile)
    assert msg["MSH-9"] == "ADT^A08^ADT_A01"
    assert (msg["MSH-3"], msg["MSH-7"], msg["MSH-10"], msg["MSH-12"]) == (
        "EHR",
        "20250820103000",
        "T1",
        "2.5.1",
    )
    assert (msg["EVN-1"], msg["EVN-2"]) == ("A08", "20250820103000")
    pid = msg.segment("PID")
    assert pid is not None
    ids = [(r[1], r[4, 1], r[4, 2], r[4, 3], r[5]) for r in pid.field(3)]
    assert ids == [
        ("P001", "AXIS", "", "", "MR"),
        ("4003123456", "", "1.2.36.146.595.217.0.1", "ISO", ""),
        ("H-9", "HOSP", "", "", ""),
    ]
    assert msg["PID-19"] == "123-45-6789"
    official, nickname = pid.field(5).repetitions
    assert [official[n] for n in range(1, 8)] == [
        "O'Brien|Smith",
        "John",
        "Andrew Paul",
        "Jr",
        "Dr",
        "MD",
        "L",
    ]
    assert (nickname[2], nickname[7]) == ("Jack", "N")
    assert (msg["PID-7"], msg["PID-8"]) == ("199001", "M")
    home, postal = pid.field(11).repetitions
    assert [home[n] for n in range(1, 8)] == [
        "45 New Rd",
        "Unit 2, Rear",
        "Richmond",
        "VIC",
        "3121",
        "AU",
        "H",
    ]
    assert (postal[1], postal[7]) == ("PO Box 9", "M")
    assert [str(r) for r in pid.field(13)] == [
        "(03) 9000 1234^PRN^PH",
        "0412 345 678^PRN^CP",
        "^NET^Internet^john@example.org",
    ]
    assert msg["PID-14"] == "(03) 9555 0000^WPN^PH"
    assert (msg["PID-15"], msg["PID-16"]) == ("en^^ISO639", "M^^HL70002")
    assert msg["PV1-2"] == "N"


def test_adt_round_trips_through_to_fhir() -> None:
    """What the builder writes, the v2 -> FHIR mapping reads back to the same Patient."""
    source = patient()
    del source["identifier"][2:]  # the SSN and a URI-system id are not in PID-3 as such
    bundle = mapping.to_fhir(build(source, "ADT^A08"))
    (back,) = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    sent = [(i["system"], i["value"]) for i in source["identifier"]]
    assert [(i["system"], i["value"]) for i in back["identifier"]][:2] == sent
    assert back["identifier"][0]["type"]["coding"][0]["code"] == "MR"
    assert back["name"][0]["family"] == "O'Brien|Smith"
    assert back["name"][0]["given"] == ["John", "Andrew Paul"]
    assert "john@example.org" in [t["value"] for t in back["telecom"] if t["system"] == "email"]
    assert {"system": "phone", "value": "0412 345 678", "use": "mobile"} in back["telecom"]
    assert back["birthDate"] == "1990-01"


@pytest.mark.parametrize(
    ("message_type", "header"),
    [("ADT", "ADT^A08^ADT_A01"), ("ADT^A04", "ADT^A04^ADT_A01"), ("adt^a28", "ADT^A28^ADT_A05")],
)
def test_adt_triggers(message_type: str, header: str) -> None:
    msg = build(patient(), message_type)
    assert msg["MSH-9"] == header
    assert msg["EVN-1"] == header.split("^")[1]


def test_adt_with_an_encounter_fills_pv1_and_pv2() -> None:
    encounter = {
        "resourceType": "Encounter",
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
        "identifier": [typed("VN", "urn:hl7v2:authority:AXIS", "V42")],
        "subject": {"reference": "Patient/p1"},
        "period": {"start": "2025-08-19T08:15:00+10:00"},
        "location": [{"location": {"display": "5W / 529 / B (AXIS)"}}],
        "serviceType": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0069", "code": "MED"}]
        },
        "participant": [
            {
                "type": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "ATND",
                            }
                        ]
                    }
                ],
                "individual": {"reference": "Practitioner/d1"},
            },
        ],
        "reasonCode": [{"text": "Chest pain"}],
    }
    doctor = {
        "resourceType": "Practitioner",
        "id": "d1",
        "identifier": [{"system": "urn:hl7v2:authority:AUSHICPR", "value": "1234"}],
        "name": [{"family": "Jones", "given": ["Peter"], "prefix": ["Dr"]}],
    }
    msg = build([patient(), encounter, doctor], "ADT^A01")
    assert (msg["PV1-2"], msg["PV1-3.9"], msg["PV1-10"]) == ("I", "5W / 529 / B (AXIS)", "MED")
    assert msg["PV1-7"] == "1234^Jones^Peter^^^Dr^^^AUSHICPR"
    assert (msg["PV1-19"], msg["PV1-44"]) == ("V42^^^AXIS^VN", "20250819081500+1000")
    assert msg["PV2-3"] == "^Chest pain"


def test_non_ascii_text_is_declared_utf8() -> None:
    named = patient(name=[{"family": "Peña", "given": ["Zoë"]}])
    msg = build(named, "ADT^A08")
    assert (msg["MSH-18"], msg["PID-5"]) == ("UNICODE UTF-8", "Peña^Zoë")
    assert build(patient(), "ADT^A08")["MSH-18"] == ""
    assert build(named, "ADT^A08", charset="8859/1")["MSH-18"] == "8859/1"


def test_references_by_full_url_and_contained() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:1", "resource": {**patient(), "id": None}},
            {
                "fullUrl": "urn:uuid:2",
                "resource": service_request(
                    subject={"reference": "urn:uuid:1"},
                    requester={"reference": "#dr"},
                    contained=[{**practitioner(), "id": "dr"}],
                ),
            },
        ],
    }
    msg = build(bundle, "ORM^O01")
    assert (msg["PID-3[1].1"], msg["ORC-12.2"]) == ("P001", "Jones")


def test_adt_in_version_2_3() -> None:
    msg = build(patient(), "ADT^A08", version="2.3")
    assert (msg["MSH-9"], msg["MSH-12"], msg["PID-16"]) == ("ADT^A08", "2.3", "M")


def test_adt_errors() -> None:
    with pytest.raises(MappingError, match="needs an Encounter"):
        build(patient(), "ADT^A01")
    with pytest.raises(MappingError, match="2 Patients"):
        build([patient(), patient(id="p2")], "ADT^A08")
    with pytest.raises(MappingError, match="no identifier") as caught:
        build(patient(identifier=[]), "ADT^A08")
    assert caught.value.location == "Patient"
    with pytest.raises(MappingError, match="unknown option") as caught:
        build(patient(), "ADT^A08", colour="blue")
    assert caught.value.location == "colour"
    with pytest.raises(MappingError, match="cannot build version"):
        build(patient(), "ADT^A08", version="3.0")
    with pytest.raises(MappingError, match="cannot build MDM"):
        mapping.from_fhir(patient(), "MDM^T02")


def test_public_patient_examples_as_adt() -> None:
    leak = fhir_example("SmartCompartmentLeak.json")
    parent = next(p for p in bundle_resources(leak, "Patient") if p.get("identifier"))
    msg = build(parent, "ADT^A04")
    assert msg["PID-3"] == "PARENT-SSN-000-00-1234^^^&http://example.org/mrn&URI"
    assert msg["PID-5.1"] == parent["name"][0]["family"]
    assert msg["PID-7"] == parent["birthDate"].replace("-", "")
    # A patient without any identifier cannot be sent: the receiver could not match it.
    with pytest.raises(MappingError, match="no identifier"):
        build(fhir_example("SmartPatientA.json"), "ADT^A08")


# -- ORM -----------------------------------------------------------------------------


def test_service_request_to_orm() -> None:
    msg = build([patient(), practitioner(), service_request()], "ORM^O01")
    assert msg["MSH-9"] == "ORM^O01^ORM_O01"
    assert msg["PID-3[1].1"] == "P001"
    assert (msg["ORC-1"], msg["ORC-2"], msg["ORC-3"], msg["ORC-5"]) == (
        "NW",
        "ORD001^EHR",
        "F-77^RIS",
        "",
    )
    assert msg["ORC-7"] == "^^^20250818090000+1000^^S"
    assert msg["ORC-9"] == "20250817140000+1000"
    assert msg["ORC-12"] == "1234^Jones^Peter^^^Dr^MBBS^^AUSHICPR"
    assert (msg["OBR-2"], msg["OBR-3"], msg["OBR-18"]) == ("ORD001^EHR", "F-77^RIS", "ACC001")
    assert msg["OBR-4"] == "71046^XR CHEST 2 VIEWS^C4"
    assert (msg["OBR-5"], msg["OBR-24"], msg["OBR-27"]) == ("S", "RX", msg["ORC-7"])
    assert msg["OBR-16"] == msg["ORC-12"]
    assert msg["OBR-31"] == "R05^Cough^I10"
    assert msg["NTE-3"] == "Patient is claustrophobic~Needs a chaperone"
    assert not msg.segments("PV1")


@pytest.mark.parametrize(
    ("status", "options", "control", "order_status"),
    [
        ("active", {}, "NW", ""),
        ("active", {"update": True}, "XO", ""),
        ("revoked", {}, "CA", "CA"),
        ("entered-in-error", {}, "CA", "CA"),
        ("on-hold", {}, "HD", "HD"),
        ("completed", {}, "SC", "CM"),
        ("active", {"order_control": "DC"}, "DC", ""),
    ],
)
def test_order_control_follows_the_status(
    status: str, options: Json, control: str, order_status: str
) -> None:
    msg = build([patient(), service_request(status=status)], "ORM", **options)
    assert (msg["ORC-1"], msg["ORC-5"]) == (control, order_status)


def test_orders_that_are_not_sent() -> None:
    with pytest.raises(MappingError) as caught:
        build([patient(), service_request(status="draft")], "ORM^O01")
    assert caught.value.location == "ServiceRequest.status"
    with pytest.raises(MappingError) as caught:
        build([patient(), service_request(intent="plan")], "ORM^O01")
    assert caught.value.location == "ServiceRequest.intent"
    with pytest.raises(MappingError, match="not among the resources"):
        build([service_request()], "ORM^O01")
    with pytest.raises(MappingError, match="no ServiceRequest"):
        build([patient()], "ORM^O01")
    other = patient(id="p2", identifier=[typed("MR", "urn:hl7v2:authority:AXIS", "P002")])
    second = service_request(id="sr2", subject={"reference": "Patient/p2"})
    with pytest.raises(MappingError, match="one patient"):
        build([patient(), other, service_request(), second], "ORM^O01")
    repeating = service_request(occurrenceTiming={"repeat": {"frequency": 2, "period": 1}})
    del repeating["occurrenceDateTime"]
    with pytest.raises(MappingError, match="repeating") as caught:
        build([patient(), repeating], "ORM^O01")
    assert caught.value.location == "ServiceRequest.occurrenceTiming"


def test_accession_number_goes_where_the_profile_says() -> None:
    resources = [patient(), service_request()]
    msg = build(resources, "ORM^O01", mapping.MappingProfile(accession_number="ORC-4"))
    assert (msg["ORC-4"], msg["OBR-18"]) == ("ACC001", "")
    no_filler = service_request(identifier=service_request()["identifier"][::2])
    profile = mapping.MappingProfile(accession_number="OBR-3")
    msg = build([patient(), no_filler], "ORM^O01", profile)
    assert (msg["OBR-3"], msg["ORC-3"], msg["OBR-18"]) == ("ACC001", "ACC001", "")


def test_orm_in_version_2_3_with_an_organisation_requester_and_a_z_segment() -> None:
    hospital = {
        "resourceType": "Organization",
        "id": "o1",
        "name": "Bayside GP",
        "identifier": [{"value": "BAYGP"}],
    }
    study = {
        "resourceType": "ImagingStudy",
        "status": "registered",
        "subject": {"reference": "Patient/p1"},
        "basedOn": [{"reference": "ServiceRequest/sr1"}],
        "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:2.25.1234"}],
    }
    request = service_request(requester={"reference": "Organization/o1"})
    rule = mapping.ZSegmentRule(path="ZDS-1.1", target="ImagingStudy.identifier")
    profile = mapping.MappingProfile(z_segments=(rule,))
    msg = build([patient(), hospital, request, study], "ORM^O01", profile, version="2.3")
    assert (msg["MSH-9"], msg["ORC-12"], msg["ORC-17"]) == ("ORM^O01", "", "BAYGP^Bayside GP")
    assert msg["ZDS-1"] == "2.25.1234"
    assert build([patient(), hospital, request], "ORM^O01")["ORC-21"] == "Bayside GP"


def test_public_service_request_example_as_orm() -> None:
    example = fhir_example("servicerequest-example.json")
    subject = patient(id="example")
    msg = build([subject, example], "ORM^O01", order_control="SC")
    assert msg["OBR-4"] == "303653007^Computed tomography of head^SCT"
    assert (msg["ORC-1"], msg["ORC-5"]) == ("SC", "CM")
    assert msg["OBR-24"] == "103693007"
    # Without an order control the completed request is sent as a status change too.
    assert build([subject, example], "ORM^O01")["ORC-1"] == "SC"


# -- SIU -----------------------------------------------------------------------------


def appointment(**extra: Any) -> Json:
    return {
        "resourceType": "Appointment",
        "id": "a1",
        "status": "booked",
        "identifier": [
            typed("PLAC", "urn:hl7v2:authority:EHR", "A-1"),
            typed("FILL", "urn:hl7v2:authority:RIS", "8317581"),
        ],
        "serviceType": [
            {
                "coding": [
                    {
                        "system": "http://www.ama-assn.org/go/cpt",
                        "code": "74177",
                        "display": "CT ABDOMEN & PELVIS",
                    }
                ]
            }
        ],
        "reasonCode": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0276", "code": "ROUTINE"}
                ]
            }
        ],
        "start": "2025-05-19T08:15:00+10:00",
        "end": "2025-05-19T08:45:00+10:00",
        "minutesDuration": 30,
        "comment": "Prep: nothing by mouth | bring prior imaging",
        "basedOn": [{"reference": "ServiceRequest/sr1"}],
        "participant": [
            {"actor": {"reference": "Patient/p1"}, "status": "accepted"},
            {
                "actor": {"reference": "Practitioner/dr-1234"},
                "status": "accepted",
                "type": [{"coding": [{"code": "RAD", "display": "Radiologist"}]}],
            },
            {"actor": {"reference": "Location/l1"}, "status": "accepted"},
            {
                "actor": {"display": "Dr Filler Contact"},
                "status": "accepted",
                "type": [{"text": "filler contact person"}],
            },
        ],
        **extra,
    }


ROOM = {
    "resourceType": "Location",
    "id": "l1",
    "name": "CT Scanner 2",
    "identifier": [{"value": "CT2"}],
    "type": [{"coding": [{"code": "D", "display": "Department"}]}],
}


def test_appointment_to_siu_s12() -> None:
    resources = [patient(), practitioner(), ROOM, service_request(), appointment()]
    msg = build(resources, "SIU")
    assert msg["MSH-9"] == "SIU^S12^SIU_S12"
    assert (msg["SCH-1"], msg["SCH-2"], msg["SCH-6"]) == (
        "A-1^EHR",
        "8317581^RIS",
        "NEW^New appointment booked",
    )
    assert (msg["SCH-7"], msg["SCH-9"], msg["SCH-10"]) == (
        "ROUTINE^^HL70276",
        "30",
        "min^minutes^UCUM",
    )
    assert msg["SCH-11"] == "^^M30^20250519081500+1000^20250519084500+1000"
    assert (msg["SCH-16"], msg["SCH-25"]) == ("^Dr Filler Contact", "Booked^Booked^HL70278")
    assert (msg["SCH-26"], msg["SCH-27"]) == ("ORD001^EHR", "F-77^RIS")
    assert (msg["TQ1-7"], msg["TQ1-8"], msg["TQ1-13"]) == (
        "20250519081500+1000",
        "20250519084500+1000",
        "30^min&minutes&UCUM",
    )
    assert msg["NTE-3"] == "Prep: nothing by mouth | bring prior imaging"
    assert msg["PID-3[1].1"] == "P001"
    assert (msg["RGS-2"], msg["AIS-2"], msg["AIS-3"]) == (
        "A",
        "A",
        r"74177^CT ABDOMEN \T\ PELVIS^C4",
    )
    assert msg["AIS-3.2"] == "CT ABDOMEN & PELVIS"
    assert (msg["AIS-4"], msg["AIS-7"], msg["AIS-10"]) == (
        "20250519081500+1000",
        "30",
        msg["SCH-25"],
    )
    assert (msg["AIL-3"], msg["AIL-4"]) == ("CT2^^^^^^^^CT Scanner 2", "D^Department")
    assert (msg["AIP-3"], msg["AIP-4"]) == (
        "1234^Jones^Peter^^^Dr^MBBS^^AUSHICPR",
        "RAD^Radiologist",
    )
    assert [s.name for s in msg.segments()] == [
        "MSH",
        "SCH",
        "TQ1",
        "NTE",
        "PID",
        "RGS",
        "AIS",
        "AIL",
        "AIP",
    ]


@pytest.mark.parametrize(
    ("status", "message_type", "trigger", "action", "word"),
    [
        ("cancelled", "SIU", "S15", "D", "Cancelled"),
        ("noshow", "SIU", "S26", "U", "Noshow"),
        ("entered-in-error", "SIU", "S17", "D", "Deleted"),
        ("booked", "SIU^S13", "S13", "U", "Booked"),
        ("pending", "SIU^S14", "S14", "U", "Pending"),
        ("cancelled", "SIU^S17", "S17", "D", "Cancelled"),
    ],
)
def test_siu_trigger_follows_the_status(
    status: str, message_type: str, trigger: str, action: str, word: str
) -> None:
    resources = [patient(), practitioner(), ROOM, appointment(status=status)]
    msg = build(resources, message_type)
    assert (msg["MSH-9.2"], msg["RGS-2"], msg["SCH-25.1"]) == (trigger, action, word)


def test_siu_cancel_reason_and_version_2_3() -> None:
    reason = {"coding": [{"code": "PATREQ", "display": "Patient request"}]}
    cancelled = appointment(status="cancelled", cancelationReason=reason)
    msg = build([patient(), practitioner(), ROOM, cancelled], "SIU^S15", version="2.3")
    assert (msg["MSH-9"], msg["SCH-6"], msg["SCH-26"]) == ("SIU^S15", "PATREQ^Patient request", "")
    assert not msg.segments("TQ1")


def test_siu_errors() -> None:
    with pytest.raises(MappingError, match="does not fit") as caught:
        build([patient(), appointment(status="cancelled")], "SIU^S12")
    assert caught.value.location == "Appointment.status"
    with pytest.raises(MappingError, match="does not fit"):
        build([patient(), appointment()], "SIU^S15")
    with pytest.raises(MappingError, match="found 0"):
        build([patient()], "SIU")
    with pytest.raises(MappingError, match="not among the resources"):
        build([appointment()], "SIU")


def test_public_appointment_example_as_siu() -> None:
    example = fhir_example("appointment-example.json")
    msg = build([example, patient(id="example")], "SIU")
    assert (msg["MSH-9.2"], msg["SCH-25.1"]) == ("S12", "Booked")
    assert msg["SCH-7"] == "FOLLOWUP^A follow up visit from a previous appointment^HL70276"
    assert msg["SCH-11"] == "^^^20131210090000+0000^20131210110000+0000"
    assert msg["NTE-3"] == example["comment"]
    assert msg["NTE[2]-3"] == example["description"]
    assert msg["AIS-3"] == "52^General Discussion"
    assert (msg["AIP-3"], msg["AIL-3.9"]) == ("^Dr Adam Careful", "South Wing, second floor")
