"""MLLP: the framing HL7 v2 travels in over TCP, with an asyncio server and client.

>>> from hl7_fhir import mllp
>>> mllp.frame(b"MSH|^~\\\\&|A")
b'\\x0bMSH|^~\\\\&|A\\x1c\\r'

Layers, each usable alone: :mod:`framing <hl7_fhir.mllp._framing>` is pure bytes;
:class:`MLLPConnection` adds asyncio streams and matches ACKs to MSH-10;
:class:`MLLPServer` and :class:`MLLPClient` sit on top. See docs/mllp.md.
"""

from ._client import MLLPClient
from ._connection import MLLPConnection, open_connection
from ._framing import (
    CARRIAGE_RETURN,
    DEFAULT_MAX_MESSAGE_SIZE,
    END_BLOCK,
    START_BLOCK,
    FrameDecoder,
    Overflow,
    frame,
)
from ._server import ConnectionInfo, Handler, MLLPServer, ServerSettings, start_server

__all__ = [
    "CARRIAGE_RETURN",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "END_BLOCK",
    "START_BLOCK",
    "ConnectionInfo",
    "FrameDecoder",
    "Handler",
    "MLLPClient",
    "MLLPConnection",
    "MLLPServer",
    "Overflow",
    "ServerSettings",
    "frame",
    "open_connection",
    "start_server",
]
