"""Reading by path, header helpers, editing, charsets and terminators."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hl7_fhir import v2
from hl7_fhir.errors import ParseError, PathError

ORU = (
    "MSH|^~\\&|LIS|LAB|EHR|HOSP|20250101120000+0100||ORU^R01|CTRL1|P|2.5.1\r"
    "PID|1||P1^^^HOSP^MR~S2^^^SSA^SS||Doe^Jane^Q||19800101|F\r"
    "OBR|1|PL1|FI1|24331-1^Lipid panel^LN\r"
    "OBX|1|NM|2093-3^Cholesterol^LN||182|mg/dL^^UCUM|<200|N|||F\r"
    "OBX|2|NM|2571-8^Triglyceride^LN||155|mg/dL|<150|H|||F\r"
    "OBX|3|ST|8247-4^Note^LN||a\\F\\b \\T\\ c||||||F\r"
    "ZXT|custom^value\r"
)


@pytest.fixture
def oru() -> v2.Message:
    return v2.parse(ORU)


def test_paths(oru: v2.Message) -> None:
    assert oru["PID-3"] == "P1^^^HOSP^MR~S2^^^SSA^SS"
    assert oru["PID-3[2].1"] == "S2"
    assert oru["PID-3[2].5"] == "SS"
    assert oru["PID-3.4"] == "HOSP"
    assert oru["OBX[2]-5"] == "155"
    assert oru["OBX[3]-5"] == "a|b & c"
    assert oru["OBX[9]-5"] == ""
    assert oru["PV1-2"] == ""
    assert oru["PID-3[5].1"] == ""
    assert oru["ZXT-1.2"] == "value"
    assert oru["MSH-1"] == "|"
    assert oru["MSH-2"] == "^~\\&"
    assert oru["PID"].startswith("PID|1|")
    assert oru.get("PV1-2", "none") == "none"


@pytest.mark.parametrize("bad", ["PID-", "PID-0", "pid-x", "P-1", "PID[0]-3", ""])
def test_malformed_paths_raise(oru: v2.Message, bad: str) -> None:
    with pytest.raises(PathError):
        oru[bad]


def test_header_helpers(oru: v2.Message) -> None:
    assert (oru.message_type, oru.trigger_event, oru.structure) == ("ORU", "R01", "ORU_R01")
    assert oru.control_id == "CTRL1"
    assert oru.version == "2.5.1" and oru.version_tuple == (2, 5, 1)
    assert oru.processing_id == "P"
    assert oru.sending_application == "LIS" and oru.sending_facility == "LAB"
    assert oru.receiving_application == "EHR" and oru.receiving_facility == "HOSP"
    assert not oru.enhanced_ack_mode
    ts = oru.timestamp
    assert ts is not None
    assert ts.value == datetime(2025, 1, 1, 12, tzinfo=timezone(timedelta(hours=1)))


def test_structure_from_event_table() -> None:
    msg = v2.parse("MSH|^~\\&|||||||ADT^A08|1|P|2.5\r")
    assert msg.structure == "ADT_A01"
    assert v2.parse("MSH|^~\\&|||||||SIU^S15|1|P|2.5\r").structure == "SIU_S12"


def test_segments_and_views(oru: v2.Message) -> None:
    assert [s.name for s in oru] == ["MSH", "PID", "OBR", "OBX", "OBX", "OBX", "ZXT"]
    assert len(oru.segments("OBX")) == 3
    pid = oru.segment("PID")
    assert pid is not None
    ids = pid.field(3)
    assert [r[1] for r in ids] == ["P1", "S2"]
    assert ids[4] == "HOSP"
    assert pid.get(5, 1, 2) == "Jane"
    assert len(pid) == 8


def test_unedited_message_keeps_its_text(oru: v2.Message) -> None:
    oru.segments()
    assert oru.to_er7() == ORU


def test_editing_escapes_and_grows(oru: v2.Message) -> None:
    oru["PID-5.1"] = "O'Brien|Smith"
    oru["PID-13[2].1"] = "0412 345 678"
    oru["OBX[4]-5"] = "new & appended"
    oru["PID-3"] = [("P9", "", "", "HOSP", "MR"), ("X1", "", "", ("AUTH", "1.2.3", "ISO"))]
    text = oru.to_er7()
    assert "O'Brien\\F\\Smith" in text
    again = v2.parse(text)
    assert again["PID-5.1"] == "O'Brien|Smith"
    assert again["PID-5.2"] == "Jane"
    assert again["PID-13[2].1"] == "0412 345 678"
    assert again["OBX[4]-5"] == "new & appended"
    assert again["PID-3[2].4.2"] == "1.2.3"
    assert again["PID-3[1].1"] == "P9"


def test_editing_header_keeps_rest(oru: v2.Message) -> None:
    oru["MSH-10"] = "NEW"
    assert oru.to_er7() == ORU.replace("CTRL1", "NEW")


def test_assigning_to_a_far_segment_is_refused(oru: v2.Message) -> None:
    with pytest.raises(PathError):
        oru["OBX[7]-1"] = "x"
    with pytest.raises(PathError):
        oru["MSH-2"] = "^~"


def test_new_message_builder() -> None:
    msg = v2.new_message(
        "ADT^A08^ADT_A01",
        sending_application="EHR",
        control_id="42",
        timestamp=datetime(2025, 1, 2, 3, 4, 5),
    )
    msg["EVN-1"] = "A08"
    msg["PID-5"] = ("Núñez", "José")
    msg["PID-7"] = date(1990, 1, 1)
    again = v2.parse(msg.encode())
    assert again.structure == "ADT_A01"
    assert again.control_id == "42"
    assert again["MSH-7"] == "20250102030405"
    assert again["PID-5.1"] == "Núñez"
    assert again["PID-7"] == "19900101"
    assert [s.name for s in again] == ["MSH", "EVN", "PID"]


def test_terminators_and_bom_are_normalised() -> None:
    crlf = ORU.replace("\r", "\r\n").encode()
    lf = b"\xef\xbb\xbf" + ORU.replace("\r", "\n").encode() + b"\n\n"
    for data in (crlf, lf, ("\n" + ORU + "\r\r").encode()):
        assert v2.parse(data).to_er7() == ORU


def test_latin1_declared_and_fallbacks() -> None:
    text = "MSH|^~\\&|||||||ADT^A08|1|P|2.5||||||8859/1\rPID|1||1||Müller\r"
    msg = v2.parse(text.encode("latin-1"))
    assert msg["PID-5"] == "Müller" and not msg.charset_fallback
    assert msg.encode() == text.encode("latin-1")
    undeclared = v2.parse(text.replace("8859/1", "").encode("latin-1"))
    assert undeclared["PID-5"] == "Müller" and undeclared.charset_fallback
    wrong = v2.parse(text.replace("8859/1", "UNICODE UTF-8").encode("latin-1"))
    assert wrong["PID-5"] == "Müller" and wrong.charset_fallback


@pytest.mark.parametrize(
    ("data", "location"),
    [
        (b"", "segment 1"),
        (b"PID|1||x\r", "segment 1"),
        (b"MSH|\r", "MSH"),
        (b"MSH|^^\\&|A\r", "MSH-2"),
    ],
)
def test_bad_headers_raise_parse_error_with_location(data: bytes, location: str) -> None:
    with pytest.raises(ParseError) as info:
        v2.parse(data)
    assert info.value.location == location


def test_custom_delimiters() -> None:
    msg = v2.parse("MSH#$*/%#A#B#####ADT$A01#1#P#2.5\rPID#1##X1$$$AUTH%1.2#")
    assert msg.encoding.field == "#"
    assert msg.message_type == "ADT"
    assert msg["PID-3.4.2"] == "1.2"


def test_plain_concatenation_splits() -> None:
    data = (ORU + ORU.replace("CTRL1", "CTRL2")).encode()
    assert [m.control_id for m in v2.parse_batch(data)] == ["CTRL1", "CTRL2"]
    with pytest.raises(ParseError):
        v2.parse_batch(b"junk\rMSH|^~\\&|||||||ADT^A01|1|P|2.5\r")


def test_text_that_does_not_fit_the_declared_charset_is_relabelled() -> None:
    msg = v2.new_message("ADT^A08", version="2.3", charset="8859/1")
    msg["PID-5"] = ("Łukasz",)
    again = v2.parse(msg.encode())
    assert again["PID-5"] == "Łukasz"
    assert again.declared_charset == "UNICODE UTF-8"
    assert not again.charset_fallback


def test_setting_msh18_changes_the_encoding() -> None:
    msg = v2.new_message("ADT^A08", version="2.5")
    msg["MSH-18"] = "8859/1"
    msg["PID-5"] = ("Zoë",)
    data = msg.encode()
    assert "Zoë".encode("latin-1") in data
    again = v2.parse(data)
    assert again["PID-5"] == "Zoë" and again.charset == "latin-1"
