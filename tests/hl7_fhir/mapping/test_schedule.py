"""SIU -> Appointment (+ Patient, Practitioners, Locations, Encounter), end to end.

The proof the issue asks for: S12 books, S13 moves, S14 modifies and S15 cancels the same
Appointment; plus every SIU of the corpus and generated ones map to valid bundles.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hl7_fhir import mapping, v2
from hl7_fhir.errors import MappingError

from tests.corpus import CORPUS

from .memory_store import MemoryStore

Json = dict[str, Any]
RADIOLOGY = CORPUS / "radiology"
CONVERTER = CORPUS / "fhir-converter" / "data" / "SampleData" / "Hl7v2"
IG_SAMPLE = CORPUS / "v2-to-fhir-ig" / "extracted_from_input" / "pagecontent"
IG_SAMPLE = IG_SAMPLE / "test_conversions.md" / "SIU_S12.hl7"
STATUS_OF_EVENT = {
    "S12": "booked",
    "S13": "booked",
    "S14": "booked",
    "S15": "cancelled",
    "S16": "cancelled",
    "S17": "entered-in-error",
    "S26": "noshow",
}


def load(path: Path) -> v2.Message:
    return v2.parse_batch(path.read_bytes())[0]


def radiology(event: str) -> v2.Message:
    (path,) = RADIOLOGY.glob(f"siu_{event.lower()}_*.hl7")
    return load(path)


def entries(bundle: Json, resource_type: str) -> list[Json]:
    return [e for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]


def appointment_entry(bundle: Json) -> Json:
    (entry,) = entries(bundle, "Appointment")
    return entry


def appointment(bundle: Json) -> Json:
    return appointment_entry(bundle)["resource"]


def check_invariants(resource: Json) -> None:
    """The Appointment invariants fhir.resources does not check (app-1 .. app-4)."""
    assert ("start" in resource) == ("end" in resource), "app-2: start and end, or neither"
    if resource["status"] not in ("proposed", "cancelled", "waitlist"):
        assert "start" in resource, "app-3: only proposed/cancelled/waitlist may lack times"
    if "start" in resource:
        assert resource["start"] <= resource["end"] or resource["start"][-1] != resource["end"][-1]
    assert resource["participant"], "participant is 1..*"
    assert all("type" in p or "actor" in p for p in resource["participant"]), "app-1"
    if "cancelationReason" in resource:
        assert resource["status"] in ("cancelled", "noshow"), "app-4"
    assert resource.get("minutesDuration", 1) >= 1, "minutesDuration is a positiveInt"


# -- the radiology workflow ----------------------------------------------------------


def test_s12_to_s15_book_move_modify_and_cancel_the_same_appointment() -> None:
    store = MemoryStore()
    urls = set()
    seen = []
    for event in ("S12", "S13", "S14", "S15"):
        bundle = mapping.to_fhir(radiology(event))
        urls.add(appointment_entry(bundle)["request"]["url"])
        store.transaction(bundle)
        (stored,) = store.all("Appointment")
        seen.append((stored["status"], stored["start"], stored["end"], stored["minutesDuration"]))
        assert len(store.all("Patient")) == 1
    assert urls == {"Appointment?identifier=urn:hl7v2:authority:MEMORIAL|1234"}
    assert seen == [
        ("booked", "2024-01-15T10:00:00Z", "2024-01-15T10:30:00Z", 30),
        ("booked", "2024-01-16T14:00:00Z", "2024-01-16T14:30:00Z", 30),  # moved
        ("booked", "2024-01-16T14:00:00Z", "2024-01-16T14:45:00Z", 45),  # longer
        ("cancelled", "2024-01-16T14:00:00Z", "2024-01-16T14:45:00Z", 45),
    ]
    (stored,) = store.all("Appointment")
    assert store.versions[("Appointment", stored["id"])] == 4


def test_s12_books_with_patient_radiologist_and_service() -> None:
    bundle = mapping.to_fhir(radiology("S12"))
    resource = appointment(bundle)
    assert resource["identifier"] == [
        {
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                        "code": "FILL",
                        "display": "Filler Identifier",
                    }
                ]
            },
            "value": "1234",
            "system": "urn:hl7v2:authority:MEMORIAL",
        }
    ]
    assert resource["serviceType"] == [
        {
            "coding": [{"code": "MRI001", "display": "MRI BRAIN W/O CONTRAST"}],
            "text": "MRI BRAIN W/O CONTRAST",
        }
    ]
    assert resource["description"] == "MRI BRAIN W/O CONTRAST"
    assert resource["reasonCode"][0]["coding"][0]["code"] == "ROUTINE"
    assert resource["appointmentType"]["coding"][0]["code"] == "Normal"
    patient, radiologist = resource["participant"]
    (patient_entry,) = entries(bundle, "Patient")
    assert patient == {
        "actor": {"reference": patient_entry["fullUrl"]},
        "required": "required",
        "status": "accepted",
    }
    assert patient_entry["request"]["method"] == "POST"  # ensure: ADT owns demographics
    assert radiologist["actor"]["display"] == "MD JANE DOE"  # MD sent as XCN.6 prefix
    assert radiologist["type"] == [{"coding": [{"code": "RADIOLOGIST"}], "text": "RADIOLOGIST"}]
    (practitioner,) = entries(bundle, "Practitioner")
    assert radiologist["actor"]["reference"] == practitioner["fullUrl"]
    assert "basedOn" not in resource, "this sender's SCH-26 holds the status, not an order"


def test_s14_carries_the_note_and_s15_the_cancellation() -> None:
    assert appointment(mapping.to_fhir(radiology("S14")))["comment"] == (
        "Patient requests female technologist"
    )
    cancelled = appointment(mapping.to_fhir(radiology("S15")))
    assert cancelled["status"] == "cancelled"
    assert "comment" not in cancelled


def test_times_without_offset_take_the_profile_zone() -> None:
    profile = mapping.MappingProfile(default_timezone="Australia/Melbourne")
    resource = appointment(mapping.to_fhir(radiology("S13"), profile))
    assert (resource["start"], resource["end"]) == (
        "2024-01-16T14:00:00+11:00",
        "2024-01-16T14:30:00+11:00",
    )


# -- status --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sch25", "expected"),
    [
        ("Pending", "pending"),
        ("WAITLIST", "waitlist"),
        ("Overbook", "booked"),
        ("Started", "checked-in"),
        ("Complete", "fulfilled"),
        ("Noshow", "noshow"),
    ],
)
def test_filler_status_refines_a_booking(sch25: str, expected: str) -> None:
    message = radiology("S12")
    message["SCH-25"] = sch25
    assert appointment(mapping.to_fhir(message))["status"] == expected


def test_the_event_decides_a_cancellation() -> None:
    message = radiology("S15")
    message["SCH-25"] = "Booked"
    assert appointment(mapping.to_fhir(message))["status"] == "cancelled"


def test_standard_position_wins_over_the_late_one() -> None:
    message = radiology("S12")  # "Booked" in SCH-26
    message["SCH-25"] = "Pending"
    resource = appointment(mapping.to_fhir(message))
    assert resource["status"] == "pending"
    assert "basedOn" not in resource, "a status word is never an order number"


def test_unknown_filler_status_is_an_error_unless_the_profile_maps_it() -> None:
    message = radiology("S12")
    message["SCH-25"] = "CONFIRMED"
    with pytest.raises(MappingError) as caught:
        mapping.to_fhir(message)
    assert caught.value.location == "SCH-25"
    target = {"system": "http://hl7.org/fhir/appointmentstatus", "code": "booked"}
    profile = mapping.MappingProfile.from_dict({"code_maps": {"HL70278": {"CONFIRMED": target}}})
    assert appointment(mapping.to_fhir(message, profile))["status"] == "booked"


# -- the other corpora ---------------------------------------------------------------

CORPUS_SIU = [
    *sorted(RADIOLOGY.glob("siu_*.hl7")),
    *sorted(CONVERTER.glob("SIU-*.hl7")),
    IG_SAMPLE,
]


@pytest.mark.parametrize("path", CORPUS_SIU, ids=[p.name for p in CORPUS_SIU])
def test_every_corpus_siu_maps_to_a_valid_bundle(path: Path) -> None:
    message = load(path)
    bundle = mapping.to_fhir(message)  # validates every resource, or raises
    resource = appointment(bundle)
    check_invariants(resource)
    assert resource["status"] == STATUS_OF_EVENT[message.trigger_event]
    assert entries(bundle, "Patient")
    assert (
        resource["participant"][0]["actor"]["reference"] == entries(bundle, "Patient")[0]["fullUrl"]
    )


def test_the_corpus_counts() -> None:
    """All 21 SIU files of the corpus but one map; SIU_12.hl7 is not an SIU at all."""
    files = [*RADIOLOGY.glob("siu_*.hl7"), *CONVERTER.glob("SIU*.hl7"), IG_SAMPLE]
    mapped = 0
    for path in files:
        try:
            mapping.to_fhir(load(path))
            mapped += 1
        except MappingError as exc:
            assert path.name == "SIU_12.hl7"
            assert exc.location == "MSH-9"  # MSH-9 says ADT^A60 (adverse reaction)
    assert (mapped, len(files)) == (20, 21)


def test_converter_sample_details() -> None:
    bundle = mapping.to_fhir(load(CONVERTER / "SIU-S12-01.hl7"))
    resource = appointment(bundle)
    # TQ1-7/8 win over the (older, disagreeing) SCH-11 times; the sender's offset is kept.
    assert (resource["start"], resource["end"]) == (
        "2021-09-24T09:30:00+02:15",
        "2021-09-24T10:20:00+02:15",
    )
    assert resource["minutesDuration"] == 1  # SCH-9/10: 60 s, as sent
    assert [i["value"] for i in resource["identifier"]] == ["12345", "36996"]
    assert resource["serviceType"][0]["coding"][0] == {
        "system": "http://snomed.info/sct",
        "code": "76164006",
        "display": "Biopsy of colon (procedure)",
    }
    displays = [p.get("actor", {}).get("display") for p in resource["participant"]]
    assert "EVIS X12 Video Colonoscope" in displays  # AIG
    assert "055 / Room01, GH Clinic" in displays  # AIL, display only: PL has no PL.10
    assert not entries(bundle, "Location")
    lines = resource["comment"].split("\n")
    assert lines[0] == "Appointment booked for emergency procedure"
    assert "055 / Room01, GH Clinic: Location ready and disinfected before procedure" in lines
    (encounter,) = entries(bundle, "Encounter")  # PV1-19 identifies the visit
    assert encounter["request"]["method"] == "POST"  # ensure: ADT owns the visit
    assert encounter["resource"]["appointment"] == [
        {"reference": appointment_entry(bundle)["fullUrl"]}
    ]


def test_ig_sample_is_based_on_its_order() -> None:
    resource = appointment(mapping.to_fhir(load(IG_SAMPLE)))
    (order,) = resource["basedOn"]
    assert order["type"] == "ServiceRequest"
    assert (order["identifier"]["system"], order["identifier"]["value"]) == (
        "urn:oid:1.2.3.4.5.2",
        "12345",
    )
    contacts = [p for p in resource["participant"] if p["required"] == "information-only"]
    assert [p["type"][0]["text"] for p in contacts] == [
        "placer contact person",
        "filler contact person",
    ]


# -- generated messages --------------------------------------------------------------

GENERATED = [
    (kind, version, seed)
    for kind in ("siu_s12", "siu_s13", "siu_s14", "siu_s15")
    for version in ("2.3", "2.5.1")
    for seed in range(25)
]


@pytest.mark.parametrize(("kind", "version", "seed"), GENERATED)
def test_generated_messages_map(kind: str, version: str, seed: int) -> None:
    message = v2.generate(kind, version=version, seed=seed)
    bundle = mapping.to_fhir(message)
    resource = appointment(bundle)
    check_invariants(resource)
    assert resource["status"] == STATUS_OF_EVENT[message.trigger_event]
    sch = message.segment("SCH")
    assert sch is not None
    assert appointment_entry(bundle)["request"]["url"].endswith(f"|{sch.get(2, 1, 1)}")
    assert resource["serviceType"][0]["coding"][0]["code"] == message["AIS-3.1"]
    kinds = [
        p.get("type", [{}])[0].get("coding", [{}])[0].get("code") for p in resource["participant"]
    ]
    assert "LOC" in kinds  # the AIL room
    if version == "2.5.1":
        (order,) = resource["basedOn"]
        assert order["identifier"]["value"] == message["SCH-26.1"]
    else:
        assert "basedOn" not in resource  # SCH-26/27 arrived in v2.4
    if resource["status"] == "cancelled":
        assert resource["cancelationReason"]["coding"][0]["code"] == "CANCEL"
    (encounter,) = entries(bundle, "Encounter")
    assert encounter["resource"]["status"] in ("planned", "in-progress", "cancelled")


def test_replay_converges() -> None:
    message = v2.generate("siu_s12", version="2.5.1", seed=5)
    first, second = mapping.to_fhir(message), mapping.to_fhir(message)
    assert first == second
    store = MemoryStore()
    store.transaction(first)
    counts = {kind: len(store.all(kind)) for kind in ("Appointment", "Patient", "Encounter")}
    store.transaction(second)
    assert (
        {kind: len(store.all(kind)) for kind in counts}
        == counts
        == {
            "Appointment": 1,
            "Patient": 1,
            "Encounter": 1,
        }
    )


def test_a_generated_s12_then_s15_cancel_one_appointment() -> None:
    store = MemoryStore()
    booked = v2.generate("siu_s12", version="2.5.1", seed=3)
    cancelled = v2.generate("siu_s15", version="2.5.1", seed=3)
    assert booked["SCH-2"] == cancelled["SCH-2"]
    store.transaction(mapping.to_fhir(booked))
    store.transaction(mapping.to_fhir(cancelled))
    (stored,) = store.all("Appointment")
    assert stored["status"] == "cancelled"


# -- errors and edge cases -----------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "location"),
    [
        ("TQ1-7", "2024-13-45", "TQ1-7"),
        ("SCH-11.4", "20241345", "SCH-11.4"),
        ("AIS-4", "yesterday", "AIS-4"),
        ("AIP-6", "2024011", "AIP-6"),
    ],
)
def test_a_broken_date_names_its_field(path: str, value: str, location: str) -> None:
    message = v2.generate("siu_s12", version="2.5.1", seed=1)
    message[path] = value
    with pytest.raises(MappingError) as caught:
        mapping.to_fhir(message)
    assert caught.value.location == location


def test_a_booking_without_a_time_is_an_error_a_cancellation_is_not() -> None:
    for event, ok in (("S12", False), ("S15", True)):
        message = radiology(event)
        message["SCH-11"] = ""
        for ais in message.segments("AIS"):
            ais[4] = ""
        if ok:
            resource = appointment(mapping.to_fhir(message))
            assert "start" not in resource and "end" not in resource
            check_invariants(resource)
        else:
            with pytest.raises(MappingError) as caught:
                mapping.to_fhir(message)
            assert caught.value.location == "SCH-11"


def test_end_is_start_plus_duration_when_only_a_start_is_sent() -> None:
    message = radiology("S12")
    message["SCH-11"] = ("", "", "", "20240115100000")
    message["SCH-9"] = "2"
    message["SCH-10"] = "HR"
    resource = appointment(mapping.to_fhir(message))
    assert (resource["start"], resource["end"], resource["minutesDuration"]) == (
        "2024-01-15T10:00:00Z",
        "2024-01-15T12:00:00Z",
        120,
    )


def test_unknown_duration_unit_is_an_error() -> None:
    message = radiology("S12")
    message["SCH-10"] = "FORTNIGHT"
    with pytest.raises(MappingError) as caught:
        mapping.to_fhir(message)
    assert caught.value.location == "SCH-10"


def test_no_sch_or_no_appointment_id() -> None:
    message = radiology("S12")
    message["SCH-2"] = ""
    with pytest.raises(MappingError) as caught:
        mapping.to_fhir(message)
    assert caught.value.location == "SCH-2"
    sch = message.segment("SCH")
    assert sch is not None
    message.remove_segment(sch)
    with pytest.raises(MappingError) as caught:
        mapping.to_fhir(message)
    assert caught.value.location == "SCH"


def test_placer_id_is_the_key_without_a_filler_id() -> None:
    message = radiology("S12")
    message["SCH-1"] = ("A77", "EHR")
    message["SCH-2"] = ""
    url = appointment_entry(mapping.to_fhir(message))["request"]["url"]
    assert url == "Appointment?identifier=urn:hl7v2:authority:EHR|A77"


def test_profile_accession_number_is_the_order_reference() -> None:
    message = v2.generate("siu_s12", version="2.5.1", seed=2)
    profile = mapping.MappingProfile(accession_number="SCH-27")
    (order,) = appointment(mapping.to_fhir(message, profile))["basedOn"]
    assert order["identifier"]["value"] == message["SCH-27.1"]
    assert order["identifier"]["type"]["coding"][0]["code"] == "ACSN"


def test_locations_with_an_identifier_become_location_resources() -> None:
    message = v2.generate("siu_s12", version="2.5.1", seed=2)
    message["AIL-3"] = ("RAD", "CT2", "", "AXIS", "", "", "", "", "CT Scanner 2", ("CT2", "AXIS"))
    bundle = mapping.to_fhir(message)
    (place,) = entries(bundle, "Location")
    assert place["request"] == {
        "method": "POST",
        "url": "Location",
        "ifNoneExist": "identifier=urn:hl7v2:authority:AXIS|CT2",
    }
    assert place["resource"]["name"] == "CT Scanner 2 (RAD / CT2, AXIS)"
    (room,) = [
        p
        for p in appointment(bundle)["participant"]
        if p["actor"].get("reference") == place["fullUrl"]
    ]
    assert room["type"][0]["coding"][0]["code"] == "LOC"


def test_aip_role_and_filler_status() -> None:
    message = radiology("S12")
    message["AIP-4"] = ("AT", "Attending", "HL70443")
    message["AIP-12"] = "Pending"
    resource = appointment(mapping.to_fhir(message))
    person = resource["participant"][1]
    assert person["type"][0]["coding"][0]["code"] == "ATND"
    assert person["status"] == "tentative"


def test_deleted_and_no_show() -> None:
    deleted = mapping.to_fhir(load(CONVERTER / "SIU-S17-01.hl7"))
    no_show = mapping.to_fhir(load(CONVERTER / "SIU-S26-01.hl7"))
    assert appointment(deleted)["status"] == "entered-in-error"
    assert appointment(no_show)["status"] == "noshow"
    assert "cancelationReason" not in appointment(no_show)
