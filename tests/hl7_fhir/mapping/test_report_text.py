"""RTF -> plain text, TX/FT text assembly and ED payloads (the report a clinician reads)."""

from __future__ import annotations

import base64

import pytest
from hl7_fhir import v2
from hl7_fhir.errors import MappingError
from hl7_fhir.mapping._report_text import (
    content_type,
    decode_ed,
    is_rtf,
    normalise_text,
    rtf_to_text,
    text_value,
)

from tests.corpus import CORPUS

RADIOLOGY = CORPUS / "radiology"


def _corpus_rtf() -> bytes:
    message = v2.parse((RADIOLOGY / "oru_r01_v25_rtf_report.hl7").read_bytes())
    return base64.b64decode(message["OBX[2]-5.5"])


def test_corpus_rtf_report_reads_as_text() -> None:
    text = rtf_to_text(_corpus_rtf())
    assert text.splitlines() == [
        "CLINICAL HISTORY: Cough for 3 weeks.",
        "TECHNIQUE: PA and lateral chest radiographs.",
        "FINDINGS: The lungs are clear. No pleural effusion or pneumothorax. Heart size is normal.",
        "IMPRESSION: No acute cardiopulmonary abnormality.",
        "Reported by Dr. Sarah Smith, FRANZCR",
    ]
    assert "Arial" not in text  # the font table is not text


@pytest.mark.parametrize("seed", range(12))
def test_generated_rtf_reports_render_without_markup(seed: int) -> None:
    message = v2.generate("oru_rad", version="2.5.1", seed=seed)
    ed = next(obx for obx in message.segments("OBX") if obx.get(2) == "ED")
    text = rtf_to_text(base64.b64decode(ed.get(5, 1, 5)))
    assert "IMPRESSION" in text
    assert "\\" not in text and "{" not in text and "}" not in text
    assert "Arial" not in text and "fswiss" not in text


@pytest.mark.parametrize(
    ("rtf", "expected"),
    [
        (rb"{\rtf1\ansi Caf\'e9 cr\'e8me}", "Café crème"),
        (rb"{\rtf1\ansi\ansicpg1251 \'cf\'f0\'e8\'e2\'e5\'f2}", "Привет"),
        (rb"{\rtf1\ansi\ansicpg1252 Price \u8364? 5}", "Price € 5"),
        (rb"{\rtf1 \uc2 A\u8364XYB}", "A€B"),
        (rb"{\rtf1 \uc0 A\u233 B}", "AéB"),
        (rb"{\rtf1 \u-3913?}", "\uf0b7"),  # negative \uN is a 16-bit value
        (rb"{\rtf1 smile \u-10179?\u-8704?!}", "smile \U0001f600!"),  # a surrogate pair
        (rb"{\rtf1 lone \u-10179?half}", "lone half"),
        (rb"{\rtf1 huge \u9999999999?x}", "huge x"),
        (rb"{\rtf1 one\par two\line three\tab four}", "one\ntwo\nthree\tfour"),
        (rb"{\rtf1 braces \{ \} and \\ backslash}", "braces { } and \\ backslash"),
        (rb"{\rtf1 non\~breaking and \endash  \emdash}", "non\u00a0breaking and \u2013 \u2014"),
        (rb"{\rtf1 {\*\generator Msftedit 5.41;}{\*\unknown skip me}kept}", "kept"),
        (rb"{\rtf1{\fonttbl{\f0\fswiss Arial;}{\f1 Times;}}{\colortbl;\red0\green0\blue0;}x}", "x"),
        (rb"{\rtf1{\stylesheet{\s0 Normal;}}{\info{\title T}{\author A}}body}", "body"),
        (
            rb"{\rtf1 {\field{\*\fldinst HYPERLINK \"http://x\"}{\fldrslt link text}} end}",
            "link text end",
        ),
        (rb"{\rtf1 before{\pict\pngblip 89504e47}after}", "beforeafter"),
        (rb"{\rtf1 a\bin4 \x00\x01}\x02b}", "ab"),
        (rb"{\rtf1 line one\par\par\par\par line two}", "line one\n\nline two"),
        (rb"{\rtf1 \b bold\b0  and {\i italic}}", "bold and italic"),
        (b"{\\rtf1 broken {group never closed", "broken group never closed"),
        (b"{\\rtf1 extra}} closing} braces}", "extra closing braces"),
        (b"{\\rtf1 trailing backslash \\", "trailing backslash"),
        (b"", ""),
        (b"{\\rtf1\\ansi raw \xe9 byte}", "raw é byte"),
        (b"{\\rtf1 windows\r\nline\r\nbreaks are not text}", "windowslinebreaks are not text"),
    ],
)
def test_rtf_edge_cases(rtf: bytes, expected: str) -> None:
    assert rtf_to_text(rtf) == expected


def test_rtf_from_text_and_detection() -> None:
    assert rtf_to_text("{\\rtf1 from str}") == "from str"
    assert is_rtf(b"\xef\xbb\xbf  {\\rtf1 x}")
    assert not is_rtf(b"plain text")


def test_rtf_reader_never_raises_on_junk() -> None:
    junk = bytes(range(256)) * 4 + b"\\'zz\\u\\uc-5{\\*}}}{{{\\bin999999"
    assert isinstance(rtf_to_text(junk), str)


def _reps(er7_field: str) -> tuple[list[v2.Repetition], v2.Encoding]:
    message = v2.parse(f"MSH|^~\\&|A|B|C|D|20250101||ORU^R01|1|P|2.5\rOBX|1|TX|X||{er7_field}\r")
    obx = message.segment("OBX")
    assert obx is not None
    return obx.field(5).repetitions, message.encoding


def test_text_value_joins_repetitions_and_decodes_escapes() -> None:
    reps, encoding = _reps(r"Line one~Line two \T\ more~Third\.br\Fourth\X0D\\X0A\Fifth")
    assert text_value(reps, encoding, "utf-8") == "Line one\nLine two & more\nThird\nFourth\nFifth"


def test_text_value_keeps_an_unescaped_component_separator() -> None:
    reps, encoding = _reps("Ratio 1^2 noted")
    assert text_value(reps, encoding, "utf-8") == "Ratio 1^2 noted"


def test_normalise_text() -> None:
    assert normalise_text("a  \r\nb\r\r\r\r\rc\n\n") == "a\nb\n\nc"


@pytest.mark.parametrize(
    ("kind", "subtype", "expected"),
    [
        ("TEXT", "RTF", "application/rtf"),
        ("application", "pdf", "application/pdf"),
        ("AP", "PDF", "application/pdf"),
        ("IM", "JPEG", "image/jpeg"),
        ("TEXT", "html", "text/html"),
        ("NS", "Octet-stream", "application/octet-stream"),
        ("TEXT", "", "text/plain"),
        ("image", "webp", "image/webp"),
        ("", "application/x-custom", "application/x-custom"),
        ("XX", "??", "application/octet-stream"),
    ],
)
def test_content_type(kind: str, subtype: str, expected: str) -> None:
    assert content_type(kind, subtype) == expected


def _ed(value: str) -> v2.Repetition:
    reps, _ = _reps(value)
    return reps[0]


def test_decode_ed_base64_hex_and_text() -> None:
    data = decode_ed(_ed("App^TEXT^RTF^Base64^e1xydGYxIHh9"), "utf-8", location="OBX-5")
    assert (
        data is not None and data.content_type == "application/rtf" and data.data == b"{\\rtf1 x}"
    )
    assert data.base64 == "e1xydGYxIHh9"
    unpadded = decode_ed(_ed("^TEXT^PLAIN^Base64^aGk"), "utf-8", location="OBX-5")
    assert unpadded is not None and unpadded.data == b"hi"
    hexed = decode_ed(_ed("^application^pdf^Hex^255044462D"), "utf-8", location="OBX-5")
    assert hexed is not None and hexed.data == b"%PDF-" and hexed.base64 == "JVBERi0="
    text = decode_ed(_ed("^TEXT^^A^Plain words"), "utf-8", location="OBX-5")
    assert text is not None and text.data == b"Plain words" and text.content_type == "text/plain"
    assert decode_ed(_ed("^TEXT^RTF^Base64^"), "utf-8", location="OBX-5") is None


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ("^TEXT^RTF^Base64^not*base64!", "OBX[2]-5.5"),
        ("^TEXT^RTF^Hex^XYZ", "OBX[2]-5.5"),
        ("^TEXT^RTF^Uuencode^abc", "OBX[2]-5.4"),
    ],
)
def test_decode_ed_rejects_data_that_is_not_what_it_claims(value: str, where: str) -> None:
    with pytest.raises(MappingError) as info:
        decode_ed(_ed(value), "utf-8", location="OBX[2]-5")
    assert info.value.location == where
