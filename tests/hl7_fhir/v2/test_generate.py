"""The fake-message generators: valid, version-aware, realistic and reproducible."""

from __future__ import annotations

import base64
import importlib
import random
import re
from datetime import datetime
from typing import Any

import pytest
from hl7_fhir.v2 import Message, parse
from hl7_fhir.v2._generate import MESSAGE_KINDS, generate, generate_many
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

VERSIONS = ("2.3", "2.5.1")
SEEDS = (0, 1, 2)

_ORDER = ("PID", "PV1", "ORC", "OBR")
_ADT = ("EVN", "PID", "PV1")
_SIU = ("SCH", "PID", "RGS", "AIS", "AIL", "AIP")
_S12_TO_S15 = {"S12", "S13", "S14", "S15"}
# kind: message type, possible triggers, structure (MSH-9.3), segments it must hold
EXPECTED: dict[str, tuple[str, set[str], str, tuple[str, ...]]] = {
    "orm": ("ORM", {"O01"}, "ORM_O01", _ORDER),
    "oru": ("ORU", {"R01"}, "ORU_R01", (*_ORDER, "OBX")),
    "oru_lab": ("ORU", {"R01"}, "ORU_R01", (*_ORDER, "OBX")),
    "oru_rad": ("ORU", {"R01"}, "ORU_R01", (*_ORDER, "OBX")),
    "adt_a01": ("ADT", {"A01"}, "ADT_A01", _ADT),
    "adt_a04": ("ADT", {"A04"}, "ADT_A01", _ADT),
    "adt_a08": ("ADT", {"A08"}, "ADT_A01", _ADT),
    "adt_a40": ("ADT", {"A40"}, "ADT_A39", ("EVN", "PID", "MRG")),
    "siu": ("SIU", _S12_TO_S15, "SIU_S12", _SIU),
    "siu_s12": ("SIU", {"S12"}, "SIU_S12", _SIU),
    "siu_s13": ("SIU", {"S13"}, "SIU_S12", _SIU),
    "siu_s14": ("SIU", {"S14"}, "SIU_S12", _SIU),
    "siu_s15": ("SIU", {"S15"}, "SIU_S12", _SIU),
}
ALL = [(kind, version) for kind in MESSAGE_KINDS for version in VERSIONS]


def _hl7apy_segments(version: str) -> dict[str, Any]:
    module = importlib.import_module(f"hl7apy.v{version.replace('.', '_')}.segments")
    segments: dict[str, Any] = module.SEGMENTS
    return segments


def _many(kind: str, version: str = "2.5.1", count: int = 40) -> list[Message]:
    return [generate(kind, version=version, seed=seed) for seed in range(count)]


def test_message_kinds_are_pinned() -> None:
    assert set(MESSAGE_KINDS) == set(EXPECTED)
    assert len(MESSAGE_KINDS) == len(set(MESSAGE_KINDS))


# -- every kind, both versions -------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("kind", "version"), ALL)
def test_reparses_with_the_right_header_and_segments(kind: str, version: str, seed: int) -> None:
    msg = generate(kind, version=version, seed=seed)
    again = parse(msg.encode())
    assert again.to_er7() == msg.to_er7()
    message_type, triggers, structure, required = EXPECTED[kind]
    assert again.message_type == message_type
    assert again.trigger_event in triggers
    assert again.version == version
    assert again.structure == structure
    assert again["MSH-9.3"] == (structure if version == "2.5.1" else "")
    assert again.charset == ("utf-8" if version == "2.5.1" else "latin-1")
    names = [segment.name for segment in again]
    assert names[0] == "MSH"
    for name in required:
        assert name in names, f"{name} missing from {kind} {version}"
    assert again.timestamp is not None
    assert 0 < len(again.control_id) <= 20


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("kind", "version"), ALL)
def test_hl7apy_accepts_it_and_no_field_is_beyond_the_version(
    kind: str, version: str, seed: int
) -> None:
    msg = generate(kind, version=version, seed=seed)
    parse_message(msg.to_er7(), validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False)
    known = _hl7apy_segments(version)
    for segment in msg:
        if segment.name.startswith("Z"):
            continue
        assert segment.name in known, f"{segment.name} does not exist in v{version}"
        assert len(segment) <= len(known[segment.name][1]), f"{segment.name} too long in v{version}"


@pytest.mark.parametrize("version", ["2.3.1", "2.4", "2.5"])
@pytest.mark.parametrize("kind", MESSAGE_KINDS)
def test_other_supported_versions(kind: str, version: str) -> None:
    msg = generate(kind, version=version, seed=11)
    assert parse(msg.encode()).version == version
    assert msg["MSH-9.3"] == EXPECTED[kind][2]
    parse_message(msg.to_er7(), validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False)
    known = _hl7apy_segments(version)
    for segment in msg:
        if not segment.name.startswith("Z"):
            assert len(segment) <= len(known[segment.name][1]), segment.name


@pytest.mark.parametrize(("kind", "version"), ALL)
def test_same_seed_same_bytes(kind: str, version: str) -> None:
    first = generate(kind, version=version, seed=1234)
    second = generate(kind, version=version, seed=1234)
    assert first.encode() == second.encode()


@pytest.mark.parametrize("kind", MESSAGE_KINDS)
def test_different_seeds_differ(kind: str) -> None:
    one, two = generate(kind, seed=1), generate(kind, seed=2)
    assert one.encode() != two.encode()
    assert one.control_id != two.control_id


def test_version_2_3_has_no_tq1_and_declares_latin_1() -> None:
    for kind in ("orm", "siu_s12", "siu_s13"):
        msg = generate(kind, version="2.3", seed=3)
        assert not msg.segments("TQ1")
        assert msg["MSH-18"] == "8859/1"
    assert generate("siu_s12", version="2.5.1", seed=3).segments("TQ1")


@pytest.mark.parametrize("version", VERSIONS)
def test_text_fits_the_declared_charset(version: str) -> None:
    messages = generate_many(MESSAGE_KINDS, 150, version=version, seed=0)
    codec = "latin-1" if version == "2.3" else "utf-8"
    for msg in messages:
        assert msg.encode().decode(codec) == msg.to_er7()
        assert parse(msg.encode()).to_er7() == msg.to_er7()
    names = {m["PID-5.1"] + m["PID-5.2"] for m in messages}
    assert any(not name.isascii() for name in names)
    assert any("'" in name for name in names)


# -- radiology -------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_orm_order_identity_and_timing(version: str) -> None:
    for msg in _many("orm", version, 20):
        accession = msg["ORC-3.1"]
        assert accession and msg["OBR-3.1"] == accession == msg["OBR-18"]
        assert msg["ORC-1"] == "NW"
        assert msg["ORC-2"] == msg["OBR-2"]
        assert msg["ORC-12"] == msg["OBR-16"] != ""
        assert msg["OBR-4.3"] == "C4"
        assert msg["OBR-24"] in {"CT", "MR", "US", "XR", "NM"}
        assert msg["ORC-7.6"] in {"S", "A", "R"}
        ordered, scheduled = msg.datetime("ORC-9"), msg.datetime("ORC-7.4")
        assert ordered is not None and scheduled is not None
        assert scheduled.value > ordered.value
        assert msg["OBR-27.4"] == msg["ORC-7.4"]


@pytest.mark.parametrize("version", VERSIONS)
def test_oru_radiology_report(version: str) -> None:
    msg = generate("oru_rad", version=version, seed=8)
    assert msg["OBR-25"] == "F"
    assert msg["OBR-32.1.1"] and msg["OBR-32.1.2"]  # reading radiologist id & family
    types = [obx.get(2) for obx in msg.segments("OBX")]
    assert "TX" in types and "ED" in types
    ed = next(obx for obx in msg.segments("OBX") if obx.get(2) == "ED")
    assert ed.field_text(5).startswith("^application^rtf^Base64^")
    assert [ed.get(5, 1, n) for n in (1, 2, 3, 4)] == ["", "application", "rtf", "Base64"]
    rtf = base64.b64decode(ed.get(5, 1, 5), validate=True).decode("ascii")
    assert rtf.startswith("{\\rtf1")
    assert rtf.rstrip().endswith("}")
    depth = 0
    for char in re.sub(r"\\[\\{}]", "", rtf):
        depth += {"{": 1, "}": -1}.get(char, 0)
        assert depth >= 0
    assert depth == 0
    assert "IMPRESSION" in rtf
    performed, reported = msg.datetime("OBR-7"), msg.datetime("OBR-22")
    assert performed is not None and reported is not None and performed.value < reported.value


def test_rtf_escapes_non_ascii_names() -> None:
    for msg in _many("oru_rad", "2.5.1", 60):
        ed = next(obx for obx in msg.segments("OBX") if obx.get(2) == "ED")
        rtf = base64.b64decode(ed.get(5, 1, 5)).decode("ascii")
        if "Núñez" in msg["OBR-32.1.2"]:
            assert "N\\u250?\\u241?ez" in rtf
            return
    pytest.fail("no report read by Dr Núñez in 60 seeds")


@pytest.mark.parametrize("version", VERSIONS)
def test_oru_lab_numeric_results(version: str) -> None:
    msg = generate("oru_lab", version=version, seed=4)
    observations = msg.segments("OBX")
    assert observations
    for obx in observations:
        assert obx.get(2) == "NM"
        assert obx.get(3, 1, 3) == "LN"
        value = float(obx.get(5))
        assert obx.get(6, 1, 1)
        if version == "2.5.1":
            assert obx.get(6, 1, 3) == "UCUM"
        assert obx.get(8) in {"N", "H", "L", "HH", "LL"}
        assert obx.get(11) == "F"
        low, _, high = obx.get(7).lstrip("<>").partition("-")
        reference = obx.get(7)
        if obx.get(8) == "N" and high:
            assert float(low) <= value <= float(high)
        elif obx.get(8) == "N" and reference.startswith("<"):
            assert value <= float(low)
        elif obx.get(8) == "N":
            assert value >= float(low)


def test_lab_flags_vary() -> None:
    flags = {obx.get(8) for msg in _many("oru_lab", count=60) for obx in msg.segments("OBX")}
    assert {"N", "H", "L"} <= flags


def test_oru_alias_gives_both_reports_and_siu_alias_every_trigger() -> None:
    kinds = {
        "ED" if any(o.get(2) == "ED" for o in m.segments("OBX")) else "NM" for m in _many("oru")
    }
    assert kinds == {"ED", "NM"}
    assert {m.trigger_event for m in _many("siu")} == _S12_TO_S15


# -- ADT -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["adt_a01", "adt_a04", "adt_a08"])
def test_adt_patient_identity(kind: str) -> None:
    for msg in _many(kind, count=20):
        pid = msg.segment("PID")
        assert pid is not None
        mrn, national = pid.field(3).repetitions
        assert mrn[1] and mrn[4] == msg.sending_facility and mrn[5] == "MR"
        assert (national[4], national[5]) in {("USSSA", "SS"), ("AUSHIC", "MC")}
        assert msg["PID-13[1].2"] == "PRN" and msg["PID-13[1].3"] == "PH"
        born, sent = msg.datetime("PID-7"), msg.timestamp
        assert born is not None and sent is not None
        assert 0 <= (sent.value - born.value).days / 365.25 < 100
        assert msg["PID-8"] in {"F", "M", "U"}
        assert msg["EVN-1"] == msg.trigger_event


def test_adt_mobile_phones_and_deaths_occur() -> None:
    messages = _many("adt_a08", count=60)
    assert any(m["PID-13[2].3"] == "CP" for m in messages)
    deceased = [m for m in messages if m["PID-30"] == "Y"]
    assert deceased
    for msg in deceased:
        died, born = msg.datetime("PID-29"), msg.datetime("PID-7")
        assert died is not None and born is not None and died.value.date() > born.value.date()


@pytest.mark.parametrize("version", VERSIONS)
def test_adt_a40_merge(version: str) -> None:
    msg = generate("adt_a40", version=version, seed=6)
    assert msg["MRG-1.1"]
    assert msg["MRG-1.1"] != msg["PID-3.1"]
    assert msg["MRG-1.5"] == "MR"
    assert msg["MRG-1.4"] == msg["PID-3.4"]


# -- scheduling ------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_siu_s15_is_cancelled(version: str) -> None:
    msg = generate("siu_s15", version=version, seed=9)
    assert msg["SCH-25"] == "Cancelled"
    assert msg["AIS-10"] == "Cancelled"
    assert msg["RGS-2"] == "D"


def test_siu_s12_is_booked_and_s13_moves_the_time() -> None:
    booked = generate("siu_s12", seed=9)
    assert booked["SCH-25"] == "Booked" and booked["RGS-2"] == "A"
    moved = generate("siu_s13", seed=9)
    note = moved["NTE-3"]
    assert note.startswith("Moved from ")
    assert note[len("Moved from ") :][:16] != _iso_minutes(moved["SCH-11.4"])


def _iso_minutes(dtm: str) -> str:
    return f"{dtm[:4]}-{dtm[4:6]}-{dtm[6:8]} {dtm[8:10]}:{dtm[10:12]}"


@pytest.mark.parametrize("kind", ["siu_s12", "siu_s13", "siu_s14", "siu_s15"])
def test_appointments_fall_in_business_hours(kind: str) -> None:
    for msg in _many(kind, count=25):
        start = msg.datetime("AIS-4")
        sent = msg.timestamp
        assert start is not None and sent is not None
        assert start.value.weekday() < 5 and 8 <= start.value.hour < 17
        assert start.value > sent.value
        assert msg["SCH-11.4"] == msg["AIS-4"] == msg["AIL-6"] == msg["AIP-6"] == msg["TQ1-7"]
        assert msg["SCH-11.3"] == f"M{msg['SCH-9']}" and msg["AIS-7"] == msg["SCH-9"]


# -- escaping --------------------------------------------------------------------------


def test_values_with_delimiters_survive_a_round_trip() -> None:
    tricky = "Smith & Sons | O'Brien ^ Zoë~Chalmérs \\ Núñez"
    paths: dict[str, Any] = {"PID-5.1": tricky}  # paths that are not identifiers go in a dict
    msg = generate("adt_a08", seed=1, **paths)
    assert "\\T\\" in str(msg) and "\\F\\" in str(msg)
    assert msg["PID-5.1"] == tricky
    assert parse(msg.encode())["PID-5.1"] == tricky


def test_generated_values_exercise_escaping() -> None:
    found: set[str] = set()
    for seed in range(80):
        msg = generate("orm", seed=seed)
        entering = msg["ORC-17.2"]
        if "&" in entering:
            assert "\\T\\" in msg.segment("ORC").to_er7()  # type: ignore[union-attr]
            found.add("&")
        note = msg["NTE-3"]
        if "|" in note:
            assert parse(msg.encode())["NTE-3"] == note
            found.add("|")
    assert found == {"&", "|"}


# -- options ---------------------------------------------------------------------------


def test_overrides() -> None:
    when = datetime(2025, 3, 4, 10, 30, 15)
    paths: dict[str, Any] = {"PID-3[1].1": "MRN42"}
    msg = generate(
        "adt_a04",
        seed=2,
        sending_application="MYEHR",
        receiving_facility="LAB1",
        control_id="CTRL-1",
        timestamp=when,
        PID_5_1="Doe",
        **paths,
    )
    assert msg.sending_application == "MYEHR"
    assert msg.receiving_facility == "LAB1"
    assert msg.control_id == "CTRL-1"
    assert msg["MSH-7"] == msg["EVN-2"] == "20250304103015"
    assert msg["PID-5.1"] == "Doe" and msg["PID-3[1].1"] == "MRN42"
    assert msg["PID-3[2].5"] in {"SS", "MC"}  # the rest of the patient is untouched


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown message kind"):
        generate("adt_a99")
    with pytest.raises(ValueError, match="unsupported version"):
        generate("orm", version="2.2")
    with pytest.raises(ValueError, match="seed or rng"):
        generate("orm", seed=1, rng=random.Random(1))
    with pytest.raises(TypeError, match="unexpected override"):
        generate("orm", sending_app="X")
    with pytest.raises(TypeError, match="must be a datetime"):
        generate("orm", timestamp="20250101")


def test_rng_is_drawn_from_and_advanced() -> None:
    a, b = random.Random(77), random.Random(77)
    assert generate("orm", rng=a).encode() == generate("orm", rng=b).encode()
    assert generate("orm", rng=a).encode() != generate("orm", seed=77).encode()


def test_generate_many_round_robin_deterministic_unique() -> None:
    kinds = ["orm", "oru_rad", "adt_a08", "siu_s12"]
    messages = generate_many(kinds, 10, seed=5)
    assert [m.message_type for m in messages] == ["ORM", "ORU", "ADT", "SIU"] * 2 + ["ORM", "ORU"]
    assert len({m.control_id for m in messages}) == 10
    again = generate_many(kinds, 10, seed=5)
    assert [m.encode() for m in messages] == [m.encode() for m in again]
    assert [m.encode() for m in generate_many(kinds, 10, seed=6)] != [m.encode() for m in again]
    assert all(m.version == "2.3" for m in generate_many(kinds, 4, version="2.3", seed=5))
    assert generate_many(["orm"], 0) == []


def test_generate_many_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        generate_many([], 3)
    with pytest.raises(ValueError, match="unknown"):
        generate_many(["orm", "nope"], 3)
    with pytest.raises(ValueError, match="negative"):
        generate_many(["orm"], -1)
