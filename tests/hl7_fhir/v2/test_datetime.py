"""HL7 dates and times keep their precision and never invent an offset."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hl7_fhir import v2
from hl7_fhir.errors import ParseError


@pytest.mark.parametrize(
    ("text", "precision", "iso"),
    [
        ("2025", v2.Precision.YEAR, "2025"),
        ("202508", v2.Precision.MONTH, "2025-08"),
        ("20250819", v2.Precision.DAY, "2025-08-19"),
        ("2025081909", v2.Precision.HOUR, "2025-08-19T09:00"),
        ("202508190930", v2.Precision.MINUTE, "2025-08-19T09:30"),
        ("20250819093015", v2.Precision.SECOND, "2025-08-19T09:30:15"),
        ("20250819093015.12", v2.Precision.FRACTION, "2025-08-19T09:30:15.12"),
        ("20250819093015.1234-0500", v2.Precision.FRACTION, "2025-08-19T09:30:15.1234-05:00"),
        ("20250819093015+1000", v2.Precision.SECOND, "2025-08-19T09:30:15+10:00"),
        ("20250819^D", v2.Precision.DAY, "2025-08-19"),
    ],
)
def test_precision_and_iso(text: str, precision: v2.Precision, iso: str) -> None:
    parsed = v2.parse_datetime(text)
    assert parsed is not None
    assert parsed.precision == precision
    assert parsed.isoformat() == iso


def test_no_offset_means_naive() -> None:
    parsed = v2.parse_datetime("20250819093015")
    assert parsed is not None and parsed.value.tzinfo is None and not parsed.has_offset


def test_offset_is_kept() -> None:
    parsed = v2.parse_datetime("20250819093015-0330")
    assert parsed is not None
    assert parsed.value.utcoffset() == -timedelta(hours=3, minutes=30)


@pytest.mark.parametrize("text", ["", '""', "  "])
def test_empty_is_none(text: str) -> None:
    assert v2.parse_datetime(text) is None


@pytest.mark.parametrize(
    "text", ["2025-08-19", "20251301", "20250230", "abc", "2025081909301", "20250819+2500"]
)
def test_invalid_raises(text: str) -> None:
    with pytest.raises(ParseError):
        v2.parse_datetime(text)


def test_format_round_trip() -> None:
    value = datetime(2025, 8, 19, 9, 30, 15, tzinfo=timezone(timedelta(hours=10)))
    assert v2.format_datetime(value) == "20250819093015+1000"
    parsed = v2.parse_datetime(v2.format_datetime(value))
    assert parsed is not None and parsed.value == value


def test_message_datetime_names_the_path() -> None:
    msg = v2.parse("MSH|^~\\&|||||||ORU^R01|1|P|2.5\rOBR|1||||||notadate\r")
    with pytest.raises(ParseError) as info:
        msg.datetime("OBR-7")
    assert info.value.location == "OBR-7"
