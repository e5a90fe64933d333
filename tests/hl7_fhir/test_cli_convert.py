"""`hl7fhir to-fhir` and `hl7fhir from-fhir` from the shell's point of view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hl7_fhir import v2
from hl7_fhir.cli import main

from tests.corpus import CORPUS

ORM = CORPUS / "radiology" / "orm_o01_v25_new_order.hl7"


def test_to_fhir_prints_a_transaction_bundle(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["to-fhir", str(ORM)]) == 0
    bundle = json.loads(capsys.readouterr().out)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "ServiceRequest"} <= kinds


def test_to_fhir_with_profile_and_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"identifier_systems": {"AXIS": "https://axis.example/id"}}))
    assert main(["to-fhir", str(ORM), "--profile", str(profile), "--bundle-type", "batch"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    assert bundle["type"] == "batch"
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    assert patient["identifier"][0]["system"] == "https://axis.example/id"


def test_bad_profile_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"default_timezone": "Mars/Olympus"}))
    assert main(["to-fhir", str(ORM), "--profile", str(profile)]) == 2
    assert "default_timezone" in capsys.readouterr().err


def test_unsupported_message_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.hl7"
    path.write_bytes(b"MSH|^~\\&|A|B|C|D|20250101||ZZZ^Z01|1|P|2.5\r")
    assert main(["to-fhir", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hl7fhir: error: MSH-9") and err.count("\n") == 1


def test_from_fhir_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["to-fhir", str(ORM)]) == 0
    bundle_file = tmp_path / "bundle.json"
    bundle_file.write_text(capsys.readouterr().out)
    assert main(["from-fhir", str(bundle_file), "--message", "ORM^O01"]) == 0
    message = v2.parse(capsys.readouterr().out)
    assert message.message_type == "ORM"
    assert message["OBR-18"] == "ACC001"
    assert message["PID-3.1"] == "P001"


def test_from_fhir_unknown_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"resourceType": "Patient"}))
    assert main(["from-fhir", str(path), "--message", "MFN^M02"]) == 1
    assert "supported" in capsys.readouterr().err
