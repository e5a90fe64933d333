"""Escaping: known sequences, and the round trip for any text (hypothesis)."""

from __future__ import annotations

from hl7_fhir import v2
from hypothesis import given
from hypothesis import strategies as st

ENCODINGS = [v2.Encoding(), v2.Encoding("#", "$", "*", "/", "%"), v2.Encoding(truncation="#")]


@given(st.text(), st.sampled_from(ENCODINGS))
def test_unescape_inverts_escape(text: str, encoding: v2.Encoding) -> None:
    assert v2.unescape(v2.escape(text, encoding), encoding) == text


@given(st.text(), st.sampled_from(ENCODINGS))
def test_escaped_text_holds_no_delimiter(text: str, encoding: v2.Encoding) -> None:
    escaped = v2.escape(text, encoding)
    for delimiter in (
        encoding.field,
        encoding.component,
        encoding.repetition,
        encoding.subcomponent,
    ):
        assert delimiter not in escaped
    assert "\r" not in escaped and "\n" not in escaped


@given(st.text(alphabet=st.characters(blacklist_characters="|^~\\&\r\n")))
def test_plain_text_is_left_alone(text: str) -> None:
    assert v2.escape(text) == text
    assert v2.unescape(text) == text


@given(st.text())
def test_unescape_never_raises(text: str) -> None:
    v2.unescape(text)


def test_standard_sequences() -> None:
    assert v2.unescape(r"a\F\b\S\c\T\d\R\e\E\f") == "a|b^c&d~e\\f"
    assert v2.unescape(r"line1\.br\line2") == "line1\nline2"
    assert v2.unescape(r"x\.sp 2\y") == "x\n\ny"
    assert v2.unescape(r"\H\bold\N\ text") == "bold text"
    assert v2.unescape("\\X0D0A\\") == "\r\n"
    assert v2.unescape("caf\\XC3A9\\") == "café"
    assert v2.unescape("caf\\XE9\\", charset="latin-1") == "café"


def test_unknown_and_malformed_sequences_are_kept() -> None:
    assert v2.unescape(r"\Zlocal\ text") == r"\Zlocal\ text"
    assert v2.unescape(r"\C2842\x") == r"\C2842\x"
    assert v2.unescape(r"\XZZ\ ") == r"\XZZ\ "
    assert v2.unescape("dangling \\ escape") == "dangling \\ escape"


def test_truncation_character_only_escaped_from_v27() -> None:
    assert v2.escape("#1") == "#1"
    assert v2.escape("#1", v2.Encoding(truncation="#")) == r"\P\1"
