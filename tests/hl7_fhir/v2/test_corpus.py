"""Every corpus message parses and re-serialises to the text it came from."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hl7_fhir import v2
from hl7_fhir.errors import ParseError

from tests.corpus import CORPUS, DELIBERATELY_BROKEN, hl7_files, relative

FILES = hl7_files()


def _normalised_messages(raw: bytes) -> list[str]:
    """The corpus text the way the parser promises to give it back: CR only, no blanks."""
    out = []
    for chunk in v2.split_messages(raw):
        decoded = (
            chunk.decode("utf-8", errors="strict") if _is_utf8(chunk) else chunk.decode("latin-1")
        )
        lines = [line for line in decoded.split("\r") if line.strip()]
        out.append("\r".join(lines) + "\r")
    return out


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_the_corpus_is_there() -> None:
    assert len(FILES) > 250, f"expected the shared corpus at {CORPUS}"


@pytest.mark.parametrize("path", FILES, ids=relative)
def test_corpus_file_parses_and_reserialises(path: Path) -> None:
    raw = path.read_bytes()
    if relative(path) in DELIBERATELY_BROKEN:
        with pytest.raises(ParseError):
            v2.parse_batch(raw) if raw.strip() else v2.parse(raw)
        return
    messages = v2.parse_batch(raw)
    assert messages, "no message found"
    expected = _normalised_messages(raw)
    assert [m.to_er7() for m in messages] == expected
    for message in messages:
        if "missing_msh-9" not in path.name:
            assert message.message_type, "MSH-9.1 is empty"
        names = [segment.name for segment in message]
        assert names[0] == "MSH"
        # Touch every field of every segment: lazy splitting must not lose anything.
        for segment in message:
            rebuilt = [segment.field_text(n) for n in range(1, len(segment) + 1)]
            assert len(rebuilt) == len(segment)
        assert message.encode().decode(message.charset) == message.to_er7()


def _radiology(name: str) -> v2.Message:
    return v2.parse((CORPUS / "radiology" / name).read_bytes())


def test_radiology_order_accession_number_in_obr18_and_orc3() -> None:
    msg = _radiology("orm_o01_v25_new_order.hl7")
    assert msg.structure == "ORM_O01"
    assert msg["ORC-3"] == "ACC001"
    assert msg["OBR-18"] == "ACC001"
    assert msg["OBR-4.1"] == "71046"
    assert msg["OBR-4.2"] == "XR CHEST 2 VIEWS"
    assert msg["PID-3.4"] == "AXIS"
    assert msg["PID-13[2].1"] == "0412345678"
    assert msg["PID-13[2].3"] == "CP"


def test_v23_order_keeps_accession_in_obr2() -> None:
    msg = _radiology("orm_o01_v23_medsynapse.hl7")
    assert msg.version == "2.3"
    assert msg["OBR-2"] == "ACC123456"
    assert msg.structure == "ORM_O01"


def test_rtf_report_attachment_decodes() -> None:
    msg = _radiology("oru_r01_v25_rtf_report.hl7")
    ed = [obx for obx in msg.segments("OBX") if obx[2] == "ED"]
    assert len(ed) == 1
    obx5 = ed[0].field(5)
    assert (obx5[2], obx5[3]) == ("TEXT", "RTF")
    assert obx5[4].lower() == "base64"
    rtf = base64.b64decode(obx5[5]).decode("latin-1")
    assert rtf.startswith("{\\rtf1")
    # The corpus README says OBR-32, but the sender wrote the radiologist one field later
    # (OBR-33); the parser reports what was sent and the mapping profile must cope.
    assert msg["OBR-32"] == ""
    assert msg["OBR-33.1.2"] == "Smith"


def test_text_report_unescapes_hex_line_breaks() -> None:
    msg = _radiology("oru_r01_v23_text_report.hl7")
    assert msg["OBX-5"] == "Normal study with no significant findings.\r\nLungs are clear."


def test_utf8_names_repeats_zsegment_and_enhanced_mode() -> None:
    msg = _radiology("oru_r01_v251_zsegment_utf8.hl7")
    assert msg.charset == "utf-8"
    assert msg.declared_charset == "UNICODE UTF-8"
    assert msg["PID-5.1"] == "Chalmérs"
    assert msg["PID-5.2"] == "Zoë"
    assert msg["PID-3[1].1"] == "NS-4411"
    assert msg["PID-3[2].1"] == "NS-OLD-12"
    assert [rep[1] for rep in msg.segment("PID").field(3)] == ["NS-4411", "NS-OLD-12"]  # type: ignore[union-attr]
    assert msg["PID-11.1"] == "Flat 2|B"
    assert msg.accept_ack_type == "AL"
    assert msg.application_ack_type == "NE"
    assert msg.enhanced_ack_mode
    zds = msg.segment("ZDS")
    assert zds is not None
    assert zds.get(1, 1, 1).startswith("1.2.840.")
    timestamp = msg.timestamp
    assert timestamp is not None and timestamp.isoformat() == "2025-09-01T08:30:00+10:00"


def test_lf_terminated_file_parses_like_cr() -> None:
    lf = _radiology("orm_o01_v25_lf_line_endings.hl7")
    assert [s.name for s in lf] == ["MSH", "PID", "PV1", "ORC", "OBR"]
    assert lf["OBR-18"] == "ACC001"


def test_batch_splits_into_three() -> None:
    raw = (CORPUS / "radiology" / "batch_fhs_bhs_three_messages.hl7").read_bytes()
    messages = v2.parse_batch(raw)
    assert len(messages) == 3
    assert len({m.control_id for m in messages}) == 3
    with pytest.raises(ParseError, match="batch"):
        v2.parse(raw)


def test_merge_has_mrg() -> None:
    msg = _radiology("adt_a40_v25_merge.hl7")
    assert msg.structure == "ADT_A39"
    assert msg["MRG-1.1"] == "P777"


def test_schedule_messages() -> None:
    for name, event, status in [
        ("siu_s12_v25_book.hl7", "S12", "Booked"),
        ("siu_s15_v25_cancel.hl7", "S15", "Cancelled"),
    ]:
        msg = _radiology(name)
        assert msg.trigger_event == event
        assert msg.structure == "SIU_S12"
        # Written one field late (SCH-26 instead of SCH-25 filler status) by this sender.
        assert msg["SCH-26"] == status
