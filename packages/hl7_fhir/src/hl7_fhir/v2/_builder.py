"""Creating messages from scratch; editing is done on :class:`Message` itself."""

from __future__ import annotations

from datetime import datetime

from ._ack import new_control_id
from ._datetime import format_datetime
from ._encoding import DEFAULT_ENCODING, Encoding
from ._message import Message
from ._segment import Segment

__all__ = ["new_message"]


def new_message(
    message_type: str,
    *,
    version: str = "2.5.1",
    sending_application: str = "",
    sending_facility: str = "",
    receiving_application: str = "",
    receiving_facility: str = "",
    control_id: str | None = None,
    timestamp: datetime | None = None,
    processing_id: str = "P",
    charset: str | None = None,
    encoding: Encoding = DEFAULT_ENCODING,
) -> Message:
    """A new message holding only its MSH; add segments by assigning to paths.

    ``message_type`` is written as given, e.g. ``"ORU^R01^ORU_R01"``; values assigned
    later are escaped, so a ``|`` in a name cannot break the message.

    >>> msg = new_message("ADT^A08", sending_application="EHR")
    >>> msg["PID-5"] = ("O'Brien|Smith", "Ann")
    >>> msg["PID-5.1"]
    "O'Brien|Smith"
    """
    header = Segment.new("MSH", encoding)
    header.set(3, sending_application)
    header.set(4, sending_facility)
    header.set(5, receiving_application)
    header.set(6, receiving_facility)
    header.set(
        7, format_datetime((timestamp or datetime.now().astimezone()).replace(microsecond=0))
    )
    header.set(9, tuple(message_type.split("^")))
    header.set(10, control_id or new_control_id())
    header.set(11, processing_id)
    header.set(12, version)
    if charset:
        header.set(18, charset)
    return Message(header.to_er7() + "\r", encoding)
