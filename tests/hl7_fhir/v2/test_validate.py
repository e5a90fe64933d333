"""Structural validation against hl7apy's reference data, over hand-made and corpus messages."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hl7_fhir import v2
from hl7_fhir.v2._reference import (
    datatype_components,
    field_definition,
    long_name,
    message_structure,
    reference_version,
    segment_definition,
    table_values,
)
from hl7_fhir.v2._validate import Problem, ValidationReport, validate

from tests.corpus import CORPUS, DELIBERATELY_BROKEN, hl7_files, relative

BROKEN = CORPUS / "trusted-intermediary" / "examples" / "Test" / "Message"

ADT = (
    "MSH|^~\\&|ADT|H|EHR|H|20250101120000||ADT^A01^ADT_A01|C1|P|2.5\r"
    "EVN|A01|20250101120000\r"
    "PID|1||P001^^^H^MR||Doe^John||19900101|M\r"
    "PV1|1|I\r"
)


def _problems(report: ValidationReport) -> dict[str, Problem]:
    return {p.location: p for p in report.problems}


# -- the dependency fence --------------------------------------------------------------


def test_importing_v2_and_the_validator_does_not_import_hl7apy() -> None:
    code = (
        "import sys, hl7_fhir.v2, hl7_fhir.v2._validate, hl7_fhir.cli;"
        "print('hl7apy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"


# -- reference data --------------------------------------------------------------------


def test_field_long_names_come_from_the_reference() -> None:
    assert field_definition("PID", 5, "2.5.1").long_name == "Patient Name"  # type: ignore[union-attr]
    assert long_name("PID-5", "2.5") == "Patient Name"
    assert long_name("PID-5.1", "2.5") == "Family Name"
    assert long_name("MSH-9.2", "2.3") == "Trigger Event"
    assert long_name("PID-7", "2.5") == "Date/Time of Birth"
    assert long_name("PID-6", "2.5") == "Mother's Maiden Name"
    assert long_name("ZZZ-1", "2.5") == ""
    assert long_name("not a path", "2.5") == ""


def test_field_definition_carries_type_optionality_repetition_and_table() -> None:
    pid = segment_definition("PID", "2.5")
    assert pid is not None
    pid3, pid8 = pid.field(3), pid.field(8)
    assert pid3 is not None and pid8 is not None
    assert (pid3.datatype, pid3.required, pid3.repeatable) == ("CX", True, True)
    assert (pid8.datatype, pid8.optionality, pid8.table, pid8.max_length) == (
        "IS",
        "optional",
        "0001",
        20,
    )
    assert pid.field(99) is None
    assert [c.long_name for c in datatype_components("HD", "2.5")] == [
        "Namespace ID",
        "Universal ID",
        "Universal ID Type",
    ]


def test_withdrawn_fields_keep_the_numbering() -> None:
    # hl7apy 2.8 leaves EVN-1 out of the segment; EVN-2 must stay EVN-2.
    evn = segment_definition("EVN", "2.8")
    assert evn is not None
    assert evn.field(1).optionality == "withdrawn"  # type: ignore[union-attr]
    assert evn.field(2).long_name == "Recorded Date/Time"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("asked", "used"),
    [
        ("2.5.1", "2.5.1"),
        ("2.7.1", "2.7"),
        ("2.9", "2.8.2"),
        ("2.0", "2.1"),
        ("", "2.5"),
        ("x", "2.5"),
    ],
)
def test_versions_map_to_the_nearest_supported_one(asked: str, used: str) -> None:
    assert reference_version(asked) == used


def test_message_structures_and_tables() -> None:
    adt = message_structure("ADT_A01", "2.5")
    assert adt is not None
    assert adt.required_segments == ("MSH", "EVN", "PID", "PV1")
    oru = message_structure("ORU_R01", "2.5.1")
    assert oru is not None and {"PID", "OBR", "OBX"} <= oru.segment_names
    assert message_structure("XYZ_Q99", "2.5") is None
    assert table_values("0008", "2.5") == frozenset({"AA", "AE", "AR", "CA", "CE", "CR"})
    assert table_values("HL70103", "2.3") is None  # hl7apy has no tables before 2.4
    assert segment_definition("ZPI", "2.5") is None


# -- hand-made messages ----------------------------------------------------------------


def test_a_conformant_message_has_no_problem() -> None:
    report = validate(v2.parse(ADT))
    assert report.problems == ()
    assert report.ok
    assert (report.structure, report.version, report.reference_version) == ("ADT_A01", "2.5", "2.5")


def test_missing_required_field_names_the_field_with_its_long_name() -> None:
    report = validate(v2.parse(ADT.replace("||Doe^John||", "||||")))
    problem = _problems(report)["PID-5"]
    assert (problem.code, problem.severity) == ("101", "warning")
    assert "PID-5 Patient Name" in problem.text
    assert report.ok  # outside MSH a missing field is a warning unless strict
    strict = validate(v2.parse(ADT.replace("||Doe^John", "||")), strict=True)
    assert _problems(strict)["PID-5"].severity == "error"
    assert not strict.ok


def test_msh_essentials_are_errors() -> None:
    text = "MSH|^~\\&|A|B|C|D|||ADT^A01|||\rEVN||20250101\rPID|1||X||Y\rPV1|1|I\r"
    report = validate(v2.parse(text))
    errors = {p.location: p.code for p in report.errors}
    assert errors == {"MSH-7": "101", "MSH-10": "101", "MSH-11": "101", "MSH-12": "101"}
    assert "MSH-10 Message Control ID" in _problems(report)["MSH-10"].text


@pytest.mark.parametrize(
    ("header", "location", "code", "severity"),
    [
        ("MSH|^~\\&|A|B|C|D|2025-01-01||ADT^A01|1|P|2.5", "MSH-7", "102", "error"),
        ("MSH|^~\\&|A|B|C|D|20250101||ADT^A01|1|X|2.5", "MSH-11", "202", "error"),
        ("MSH|^~\\&|A|B|C|D|20250101||ADT^A01|1|P|3.1", "MSH-12", "203", "error"),
        ("MSH|^~\\&|A|B|C|D|20250101||ADT^A01|1|P|2.9", "MSH-12", "203", "warning"),
        ("MSH|^~\\&|A|B|C|D|20250101||ADT|1|P|2.5", "MSH-9.2", "101", "error"),
        ("MSH|^~\\&|A|B|C|D|20250101||A+T^A01|1|P|2.5", "MSH-9.1", "200", "error"),
        ("MSH|^~\\&|A|B|C|D|20250101||ADT^Q99|1|P|2.5", "MSH-9.2", "201", "warning"),
    ],
)
def test_header_problems(header: str, location: str, code: str, severity: str) -> None:
    report = validate(v2.parse(header + "\rEVN||20250101\rPID|1||X||Y\rPV1|1|I\r"))
    problem = _problems(report)[location]
    assert (problem.code, problem.severity) == (code, severity)


def test_version_outside_hl7apy_is_checked_against_the_nearest() -> None:
    report = validate(v2.parse(ADT.replace("|P|2.5", "|P|2.9")))
    assert report.reference_version == "2.8.2"
    assert "checked against 2.8.2" in _problems(report)["MSH-12"].text


def test_datatypes_are_checked_down_to_components() -> None:
    text = (
        ADT.replace("19900101", "1990-01-01")
        + "OBX|1|NM|8867-4^Heart rate^LN||abc||||||F\r"
        + "OBX|x|DT|8867-4^Heart rate^LN||20250101|||||||||20250230\r"
    )
    problems = _problems(validate(v2.parse(text), strict=True))
    assert problems["PID-7.1"].code == "102"
    assert "PID-7 Date/Time of Birth" in problems["PID-7.1"].text
    assert problems["OBX-5"].code == "102"
    assert "not a number" in problems["OBX-5"].text
    assert problems["OBX[2]-1"].code == "102"  # SI
    assert problems["OBX[2]-14.1"].code == "102"  # 30 February
    assert "OBX[2]-5" not in problems  # a DT value typed by OBX-2


def test_obx5_follows_obx2_and_is_an_error_by_default() -> None:
    report = validate(v2.parse(ADT + "OBX|1|NM|1^HR^LN||12||||||F\rOBX|2|NM|1^HR^LN||n/a||||||F\r"))
    assert [(p.location, p.code, p.severity) for p in report.problems] == [
        ("OBX[2]-5", "102", "error")
    ]


def test_repetitions_and_components_are_located() -> None:
    text = ADT.replace("P001^^^H^MR", "P001^^^H^MR~P002^^^H^MR^^^2025-01-01")
    problem = _problems(validate(v2.parse(text), strict=True))["PID-3[2].8"]
    assert "PID-3 Patient Identifier List, Expiration Date" in problem.text


def test_lengths_tables_and_segments_are_warnings() -> None:
    text = ADT.replace("PV1|1|I", "PV1|1|I|" + "W" * 25) + "XYZ|1\rZPI|1|anything\rMSA|QQ|C1\r"
    report = validate(v2.parse(text))
    problems = _problems(report)
    assert report.ok
    assert problems["PV1-3.1"].code == "104"
    assert problems["XYZ"].code == "100"
    assert problems["MSA-1"].code == "103"
    assert problems["MSA"].text == "segment MSA is not expected in ADT_A01"
    assert not any(p.location.startswith("ZPI") for p in report.problems)


def test_required_segments_of_the_structure() -> None:
    report = validate(v2.parse(ADT.replace("PV1|1|I\r", "")))
    assert [(p.location, p.code, p.severity) for p in report.problems] == [("PV1", "100", "error")]


def test_report_renders_as_text_json_and_ack_errors() -> None:
    report = validate(v2.parse(ADT.replace("|C1|P|", "||P|")))
    text = report.to_text()
    assert "1 error(s)" in text and "MSH-10" in text and "Message Control ID" in text
    data = json.loads(report.to_json())
    assert data["ok"] is False
    assert data["problems"][0] == {
        "location": "MSH-10",
        "severity": "error",
        "code": "101",
        "text": "required field MSH-10 Message Control ID is missing",
    }
    ack = v2.build_ack(v2.parse(ADT), "AE", errors=report.error_details())
    assert ack["ERR-2"].startswith("MSH^1^10")
    assert ack["ERR-3.1"] == "101"


# -- the corpus ------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((CORPUS / "radiology").glob("*.hl7")), ids=lambda p: p.name)
def test_radiology_messages_have_no_errors(path: Path) -> None:
    for message in v2.parse_batch(path.read_bytes()):
        report = validate(message)
        assert report.ok, report.to_text()


@pytest.mark.parametrize(
    ("name", "location", "code"),
    [
        ("msh_present_but_missing_msh-9.hl7", "MSH-9", "101"),
        ("msh_present_but_missing_msh-10.hl7", "MSH-10", "101"),
        ("msh_present_but_missing_msh-2.hl7", "MSH-2", "101"),
        ("orm_obx-5_is_not_a_numeric_value.hl7", "OBX-5", "102"),
    ],
)
def test_deliberately_broken_messages_report_the_right_location(
    name: str, location: str, code: str
) -> None:
    (message,) = v2.parse_batch((BROKEN / name).read_bytes())
    report = validate(message)
    assert not report.ok
    problems = _problems(report)
    assert problems[location].code == code
    assert problems[location].severity == "error"


def test_optional_msh6_and_version_23_are_not_header_errors() -> None:
    for name in ("msh_present_but_missing_msh-6.hl7", "msh-12_has_value_2_3.hl7"):
        (message,) = v2.parse_batch((BROKEN / name).read_bytes())
        assert not [p for p in validate(message).problems if p.location.startswith("MSH")]


def test_the_whole_corpus_validates_without_raising_and_quickly() -> None:
    messages = []
    for path in hl7_files():
        if relative(path) in DELIBERATELY_BROKEN:
            continue
        messages.extend(v2.parse_batch(path.read_bytes()))
    assert len(messages) > 250
    for message in messages[:20]:  # load the reference libraries outside the timing
        validate(message)
    started = time.perf_counter()
    reports = [validate(message) for message in messages]
    elapsed = time.perf_counter() - started
    assert elapsed < 3.0, f"{len(messages)} messages took {elapsed:.2f}s"
    assert all(isinstance(r, ValidationReport) for r in reports)
