"""Access paths such as ``PID-3[2].1.2`` or ``OBX[3]-5``, parsed once and cached.

Grammar (all indexes 1-based, as the standard counts)::

    SEG[occurrence]-field[repetition].component.subcomponent

Every part after the segment name is optional.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from ..errors import PathError

__all__ = ["Path", "parse_path"]

_PATH = re.compile(
    r"^(?P<segment>[A-Z][A-Z0-9]{2})(?:\[(?P<occurrence>\d+)\])?"
    r"(?:[-.](?P<field>\d+)(?:\[(?P<repetition>\d+)\])?"
    r"(?:\.(?P<component>\d+)(?:\.(?P<subcomponent>\d+))?)?)?$"
)


class Path(NamedTuple):
    """A parsed access path; ``None`` means "not given" for each part below segment."""

    segment: str
    occurrence: int
    field: int | None
    repetition: int | None
    component: int | None
    subcomponent: int | None

    def __str__(self) -> str:
        text = self.segment
        if self.occurrence != 1:
            text += f"[{self.occurrence}]"
        if self.field is not None:
            text += f"-{self.field}"
            if self.repetition is not None:
                text += f"[{self.repetition}]"
            if self.component is not None:
                text += f".{self.component}"
                if self.subcomponent is not None:
                    text += f".{self.subcomponent}"
        return text


@lru_cache(maxsize=4096)
def parse_path(path: str) -> Path:
    """Parse an access path.

    >>> parse_path("PID-3[2].1")
    Path(segment='PID', occurrence=1, field=3, repetition=2, component=1, subcomponent=None)

    Raises:
        PathError: the path does not follow the grammar, or an index is 0.
    """
    match = _PATH.match(path.strip().upper())
    if match is None:
        raise PathError(f"not an HL7 path: {path!r} (expected e.g. 'PID-3[2].1')")
    parts = match.groupdict()

    def number(name: str) -> int | None:
        value = parts[name]
        if value is None:
            return None
        index = int(value)
        if index < 1:
            raise PathError(f"indexes start at 1 in {path!r}")
        return index

    return Path(
        parts["segment"],
        number("occurrence") or 1,
        number("field"),
        number("repetition"),
        number("component"),
        number("subcomponent"),
    )
