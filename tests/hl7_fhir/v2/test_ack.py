"""Acknowledgements in original and enhanced mode, for good and broken messages."""

from __future__ import annotations

from datetime import datetime

import pytest
from hl7_fhir import v2

INBOUND = "MSH|^~\\&|RIS|RAD|EHR|HOSP|20250101120000||ORM^O01^ORM_O01|ORD-77|P|2.5.1\rPID|1||P1\r"


def test_original_mode_accept() -> None:
    ack = v2.build_ack(v2.parse(INBOUND), timestamp=datetime(2025, 1, 1, 12, 0, 1))
    assert [s.name for s in ack] == ["MSH", "MSA"]
    assert (ack["MSH-3"], ack["MSH-4"], ack["MSH-5"], ack["MSH-6"]) == ("EHR", "HOSP", "RIS", "RAD")
    assert ack["MSH-9"] == "ACK^O01^ACK"
    assert ack.control_id and ack.control_id != "ORD-77"
    assert ack["MSH-7"] == "20250101120001"
    assert (ack["MSA-1"], ack["MSA-2"]) == ("AA", "ORD-77")
    assert ack.version == "2.5.1"
    assert v2.parse(ack.encode()).to_er7() == ack.to_er7()


def test_control_ids_are_unique_and_short() -> None:
    ids = {v2.new_control_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert max(len(i) for i in ids) <= 20


def test_error_with_location_v25() -> None:
    ack = v2.build_ack(
        INBOUND, "AE", errors=[v2.ErrorDetail("101", "PID-3 is required", "PID-3", "E")]
    )
    assert ack["MSA-1"] == "AE"
    err = ack.segment("ERR")
    assert err is not None
    assert err.get(2) == "PID^1^3"
    assert err.get(3) == "101^Required field missing^HL70357"
    assert err.get(4) == "E"
    assert err.get(8) == "PID-3 is required"


def test_error_v23_uses_msa3_and_err1() -> None:
    inbound = INBOUND.replace("2.5.1", "2.3").replace("^ORM_O01", "")
    ack = v2.build_ack(inbound, "AR", errors=[v2.ErrorDetail("200", "ORM not supported", "MSH-9")])
    assert ack["MSH-9"] == "ACK^O01"
    assert ack["MSA-1"] == "AR"
    assert ack["MSA-3"] == "ORM not supported"
    assert ack["ERR-1"] == "MSH^1^9^200&ORM not supported&HL70357"


def test_negative_ack_without_details_gets_207() -> None:
    ack = v2.build_ack(INBOUND, "AE", text="database down")
    assert ack["ERR-3.1"] == "207"
    assert ack["ERR-8"] == "database down"


def test_enhanced_mode_maps_codes() -> None:
    inbound = INBOUND.replace("|P|2.5.1", "|P|2.5.1|||AL|NE")
    assert v2.build_ack(inbound, "AA")["MSA-1"] == "CA"
    assert v2.build_ack(inbound, "AE")["MSA-1"] == "CE"
    assert v2.build_ack(inbound, "AR")["MSA-1"] == "CR"
    assert v2.build_ack(inbound, "AA", enhanced=False)["MSA-1"] == "AA"
    assert v2.build_ack(INBOUND, "CA")["MSA-1"] == "AA"


def test_ack_copies_charset_and_keeps_delimiters() -> None:
    inbound = "MSH#$*/%#A#B#C#D#20250101##ADT$A01#9#P#2.5######UNICODE UTF-8\r"
    ack = v2.build_ack(inbound)
    assert ack.to_er7().startswith("MSH#$*/%#C#D#A#B#")
    assert ack.declared_charset == "UNICODE UTF-8"
    assert ack["MSA-2"] == "9"


@pytest.mark.parametrize(
    ("data", "control_id"),
    [
        (b"MSH|^~\\&|A|B|C|D|2025||ORU^R01|77|P|2.3\rPID|\xff\xfe", "77"),
        (b"garbage before MSH|^~\\&|A|B|C|D|x||ORU^R01|78|P|2.3\rOBX", "78"),
        (b"MSH|", ""),
        (b"\x00\x01 not hl7 at all", ""),
        (b"", ""),
    ],
)
def test_broken_inbound_still_gets_an_ack(data: bytes, control_id: str) -> None:
    ack = v2.build_ack(data, "AE", text="could not parse")
    again = v2.parse(ack.encode())
    assert again["MSA-1"] == "AE"
    assert again["MSA-2"] == control_id


def test_peek_control_id() -> None:
    assert v2.peek_control_id(INBOUND.encode()) == "ORD-77"
    assert v2.peek_control_id(b"MSH|^~\\&|short") is None
    assert v2.peek_control_id(b"nothing") is None


def test_bad_code_is_refused() -> None:
    with pytest.raises(ValueError):
        v2.build_ack(INBOUND, "OK")
