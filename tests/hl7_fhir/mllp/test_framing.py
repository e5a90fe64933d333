"""MLLP framing: pure bytes, every split point, junk, oversized frames."""

from __future__ import annotations

import pytest
from hl7_fhir.errors import MessageTooLargeError
from hl7_fhir.mllp import CARRIAGE_RETURN, END_BLOCK, START_BLOCK, FrameDecoder, frame
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import radiology

ORDER = radiology("orm_o01_v25_new_order.hl7")
REPORT = radiology("oru_r01_v25_rtf_report.hl7")


def decode_all(chunks: list[bytes], max_size: int = 10 * 1024 * 1024) -> tuple[list[bytes], bytes]:
    decoder = FrameDecoder(max_size)
    frames: list[bytes] = []
    junk = b""
    for chunk in chunks:
        frames += decoder.feed(chunk)
        junk += decoder.take_junk()
    return frames, junk


def test_constants_are_the_mllp_bytes() -> None:
    assert (START_BLOCK, END_BLOCK, CARRIAGE_RETURN) == (b"\x0b", b"\x1c", b"\r")


def test_frame_wraps_the_payload() -> None:
    assert frame(ORDER) == b"\x0b" + ORDER + b"\x1c\r"


def test_one_frame_round_trips() -> None:
    assert FrameDecoder().feed(frame(REPORT)) == [REPORT]


def test_several_frames_in_one_read() -> None:
    assert FrameDecoder().feed(frame(ORDER) + frame(REPORT) + frame(b"")) == [ORDER, REPORT, b""]


def test_a_frame_split_at_any_byte() -> None:
    data = frame(ORDER)
    for split in range(1, len(data)):
        assert decode_all([data[:split], data[split:]]) == ([ORDER], b""), split


def test_one_byte_at_a_time() -> None:
    data = frame(ORDER) + frame(REPORT)
    assert decode_all([data[i : i + 1] for i in range(len(data))]) == ([ORDER, REPORT], b"")


def test_bytes_outside_frames_are_reported_not_dropped() -> None:
    frames, junk = decode_all([b"noise" + frame(ORDER) + b"\n" + frame(REPORT) + b"tail"])
    assert frames == [ORDER, REPORT]
    assert junk == b"noise\ntail"


def test_end_block_without_carriage_return_is_accepted() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x0bMSH|1\x1c") == [b"MSH|1"]
    assert not decoder.in_frame
    assert decoder.feed(b"\x0bMSH|2\x1c\r") == [b"MSH|2"]
    assert decoder.take_junk() == b""


def test_carriage_return_arriving_in_the_next_read_is_not_junk() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x0bMSH|1\x1c") == [b"MSH|1"]
    assert decoder.feed(b"\r") == []
    assert decoder.take_junk() == b""


def test_a_restarted_frame_abandons_the_partial_one() -> None:
    frames, junk = decode_all([b"\x0bMSH|partial", b"\x0bMSH|whole\x1c\r"])
    assert frames == [b"MSH|whole"]
    assert junk == b"\x0bMSH|partial"


def test_flush_returns_an_unfinished_frame() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x0bMSH|cut") == []
    assert decoder.in_frame
    assert decoder.buffered == len(b"\x0bMSH|cut")
    assert decoder.flush() == b"\x0bMSH|cut"
    assert not decoder.in_frame


def test_payload_at_the_limit_is_accepted() -> None:
    assert FrameDecoder(max_size=len(ORDER)).feed(frame(ORDER)) == [ORDER]


def test_oversized_frame_is_reported_with_its_header() -> None:
    decoder = FrameDecoder(max_size=100)
    assert decoder.feed(frame(ORDER)) == []
    overflow = decoder.take_overflow()
    assert overflow is not None
    assert overflow.limit == 100
    assert overflow.size > 100
    assert overflow.head == ORDER.split(b"\r")[0]
    error = overflow.error()
    assert isinstance(error, MessageTooLargeError)
    assert (error.size, error.limit) == (overflow.size, 100)
    assert decoder.take_overflow() is None


def test_oversized_frame_in_pieces_is_dropped_without_buffering() -> None:
    decoder = FrameDecoder(max_size=100)
    data = frame(b"MSH|^~\\&|big\r" + b"x" * 10_000)
    assert decoder.feed(data[:500]) == []
    assert decoder.discarding
    assert decoder.buffered == 0
    overflow = decoder.take_overflow()
    assert overflow is not None
    assert overflow.head == b"MSH|^~\\&|big"
    assert decoder.feed(data[500:]) == []
    assert not decoder.discarding
    assert decoder.feed(frame(b"MSH|next")) == [b"MSH|next"]
    assert decoder.take_junk() == b""


def test_frames_before_an_oversized_one_come_first_and_after_it_wait() -> None:
    decoder = FrameDecoder(max_size=50)
    small = b"MSH|small"
    assert decoder.feed(frame(small) + frame(b"y" * 60) + frame(small)) == [small]
    assert decoder.take_overflow() is not None
    assert decoder.feed(b"") == [small]


def test_max_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        FrameDecoder(max_size=0)


# Payloads and junk never contain the framing bytes (HL7 v2 forbids them in content).
_payload = st.binary(max_size=300).map(lambda b: b.replace(b"\x0b", b"").replace(b"\x1c", b""))
_junk = st.binary(max_size=20).map(lambda b: b.replace(b"\x0b", b"").replace(b"\x1c", b""))


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(st.tuples(_junk, _payload), min_size=1, max_size=6),
    trailing=_junk,
    data=st.data(),
)
def test_any_split_of_a_stream_decodes_to_the_same_frames(
    items: list[tuple[bytes, bytes]], trailing: bytes, data: st.DataObject
) -> None:
    stream = b"".join(junk + frame(payload) for junk, payload in items) + trailing
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]

    frames, junk = decode_all(chunks)

    assert frames == [payload for _, payload in items]
    assert junk == b"".join(j for j, _ in items) + trailing
    assert (frames, junk) == decode_all([stream])
