"""MLLP block framing: pure bytes in, pure bytes out, no I/O.

A frame is ``<VT> payload <FS><CR>``. The decoder is incremental so a socket can hand it
whatever ``read()`` returned: frames split at any byte, several frames per read, noise
between frames. It searches with ``bytes.find`` (C speed), never byte by byte.

Leniency, on purpose:

- A frame ends at ``<FS>``; the ``<CR>`` after it is consumed when present but not
  required, so a sender that ends its last frame with a bare ``<FS>`` (or closes the
  socket right after it) still gets its message through.
- A ``<VT>`` inside an unfinished frame means the sender gave up on that frame and
  started again; the abandoned part is reported as junk.
- Bytes outside any frame are never dropped silently: they are collected and handed to
  the caller (:meth:`FrameDecoder.take_junk`) so it can log them.

The decoder never holds more than ``max_size`` payload bytes: a longer frame is reported
as an :class:`Overflow` carrying the frame's first segment (the MSH header), so the caller
can still answer with an AR/CR, and the rest of that frame is discarded.
"""

from __future__ import annotations

from dataclasses import dataclass

from hl7_fhir.errors import MessageTooLargeError

__all__ = [
    "CARRIAGE_RETURN",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "END_BLOCK",
    "START_BLOCK",
    "FrameDecoder",
    "Overflow",
    "frame",
]

START_BLOCK = b"\x0b"
"""``<VT>``, opens a frame."""
END_BLOCK = b"\x1c"
"""``<FS>``, closes a frame."""
CARRIAGE_RETURN = b"\x0d"
"""``<CR>``, follows ``END_BLOCK``; also the HL7 v2 segment terminator."""

DEFAULT_MAX_MESSAGE_SIZE = 10 * 1024 * 1024
"""Largest payload accepted by default (10 MiB): radiology reports with images fit."""

_TRAILER = END_BLOCK + CARRIAGE_RETURN
_HEAD_LIMIT = 64 * 1024  # keep at most this much of an oversized frame's first segment

# States of the decoder.
_IDLE = 0  # between frames
_IN_FRAME = 1  # after <VT>, looking for <FS>
_DISCARDING = 2  # inside an oversized frame, dropping bytes until <FS>


def frame(payload: bytes) -> bytes:
    """Wrap ``payload`` in an MLLP block.

    >>> frame(b"MSH|^~\\\\&|A")
    b'\\x0bMSH|^~\\\\&|A\\x1c\\r'
    """
    return START_BLOCK + payload + _TRAILER


@dataclass(frozen=True, slots=True)
class Overflow:
    """A frame that grew past the decoder's limit.

    ``size`` is how many payload bytes had arrived when the limit was crossed (a lower
    bound of the real size), ``head`` the frame's first segment, enough to build an
    AR/CR acknowledgement.
    """

    size: int
    limit: int
    head: bytes

    def error(self) -> MessageTooLargeError:
        """The matching library error, for callers that want to raise it."""
        return MessageTooLargeError(self.size, self.limit)


class FrameDecoder:
    """Incremental MLLP decoder.

    ``feed()`` returns the payloads completed by the new bytes, in order. Noise outside
    frames accumulates until :meth:`take_junk`; an oversized frame is reported through
    :meth:`take_overflow` (decoding stops at that point for the current ``feed()``, so
    every frame returned came before it; call ``feed(b"")`` to continue afterwards).

    >>> decoder = FrameDecoder()
    >>> decoder.feed(b"\\x0bMSH|1\\x1c\\r\\x0bMSH")
    [b'MSH|1']
    >>> decoder.feed(b"|2\\x1c\\r")
    [b'MSH|2']
    """

    __slots__ = (
        "_buffer",
        "_junk",
        "_overflow",
        "_pending_cr",
        "_scanned",
        "_state",
        "max_size",
    )

    def __init__(self, max_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        if max_size <= 0:
            raise ValueError("max_size must be positive")
        self.max_size = max_size
        self._buffer = bytearray()  # in a frame it starts with <VT>
        self._junk = bytearray()
        self._state = _IDLE
        self._scanned = 1  # offset in _buffer already searched for <FS>
        self._overflow: Overflow | None = None
        self._pending_cr = False  # a frame ended on a bare <FS> at the end of the buffer

    @property
    def in_frame(self) -> bool:
        """True while a frame has started but not ended."""
        return self._state != _IDLE

    @property
    def discarding(self) -> bool:
        """True while dropping the rest of an oversized frame."""
        return self._state == _DISCARDING

    @property
    def buffered(self) -> int:
        """Bytes held for an unfinished frame."""
        return len(self._buffer)

    def take_junk(self) -> bytes:
        """Return and forget the bytes seen outside any frame since the last call."""
        if not self._junk:
            return b""
        junk = bytes(self._junk)
        self._junk.clear()
        return junk

    def take_overflow(self) -> Overflow | None:
        """Return and forget the pending oversized-frame report, if any."""
        overflow, self._overflow = self._overflow, None
        return overflow

    def flush(self) -> bytes:
        """At end of stream: return and forget an unfinished frame (with its ``<VT>``)."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        self._state = _IDLE
        self._scanned = 1
        self._pending_cr = False
        return rest

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes read from the stream; return the payloads they complete."""
        buffer = self._buffer
        buffer += data
        frames: list[bytes] = []
        while buffer:
            if self._state == _DISCARDING:
                end = buffer.find(END_BLOCK)
                if end < 0:
                    buffer.clear()
                    break
                del buffer[: self._trailer_end(end)]
                self._state = _IDLE
                continue
            if self._overflow is not None:
                break  # nothing after an oversized frame until its report is taken
            if self._state == _IDLE:
                if self._pending_cr:
                    self._pending_cr = False
                    if buffer[:1] == CARRIAGE_RETURN:
                        del buffer[:1]
                        continue
                start = buffer.find(START_BLOCK)
                if start < 0:
                    self._junk += buffer
                    buffer.clear()
                    break
                if start:
                    self._junk += buffer[:start]
                    del buffer[:start]
                self._state = _IN_FRAME
                self._scanned = 1
            end = buffer.find(END_BLOCK, self._scanned)
            limit = len(buffer) if end < 0 else end
            restart = buffer.rfind(START_BLOCK, self._scanned, limit)
            if restart > 0:  # the sender abandoned the frame and began a new one
                self._junk += buffer[:restart]
                del buffer[:restart]
                limit -= restart
                end = -1 if end < 0 else end - restart
            if limit - 1 > self.max_size:
                self._overflow = Overflow(
                    size=limit - 1, limit=self.max_size, head=_first_segment(buffer, limit)
                )
                if end < 0:
                    buffer.clear()
                    self._state = _DISCARDING
                else:
                    del buffer[: self._trailer_end(end)]
                    self._state = _IDLE
                continue
            if end < 0:
                self._scanned = len(buffer)
                break
            frames.append(bytes(buffer[1:end]))
            del buffer[: self._trailer_end(end)]
            self._state = _IDLE
        return frames

    def _trailer_end(self, end: int) -> int:
        """Offset just past the ``<FS>`` at ``end`` and its ``<CR>`` when present."""
        if self._buffer[end + 1 : end + 2] == CARRIAGE_RETURN:
            return end + 2
        self._pending_cr = end + 1 == len(self._buffer)  # the <CR> may be in the next read
        return end + 1


def _first_segment(buffer: bytearray, limit: int) -> bytes:
    """The payload's first segment (normally MSH), from a buffer starting with ``<VT>``."""
    head = bytes(buffer[1 : min(limit, _HEAD_LIMIT + 1)])
    for terminator in (b"\r", b"\n"):
        found = head.find(terminator)
        if found >= 0:
            head = head[:found]
    return head
