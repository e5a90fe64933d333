"""The audit hash chain: how a row's hash is computed and how a chain is checked.

Each row's ``hash`` is SHA-256 over the previous row's hash and a canonical JSON form of
the row's recorded fields, so changing, removing or reordering any row breaks every hash
after it. Pure functions: the writer and ``ehr-platform audit verify`` share them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["CHAINED_FIELDS", "GENESIS", "ChainBreak", "chain_hash", "find_break"]

GENESIS = "0" * 64
CHAINED_FIELDS = (
    "org_id",
    "occurred_at",
    "actor",
    "actor_type",
    "action",
    "resource_type",
    "resource_ids",
    "outcome",
    "status_code",
    "client_ip",
    "user_agent",
    "request_id",
    "details",
)


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat(timespec="microseconds")
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), str):
        return value.value  # enums
    return value


def chain_hash(prev_hash: str | None, row: Mapping[str, Any]) -> str:
    """The hash of ``row`` following ``prev_hash`` (``None`` for the first row of a chain)."""
    body = {name: _canonical(row.get(name)) for name in CHAINED_FIELDS}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    digest = hashlib.sha256()
    digest.update((prev_hash or GENESIS).encode("ascii"))
    digest.update(text.encode("utf-8"))
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """Where a chain stops being trustworthy, and why."""

    row_id: int
    reason: str


def find_break(rows: Iterable[Mapping[str, Any]]) -> ChainBreak | None:
    """Walk one chain in id order; the first row whose links or hash do not hold.

    Each row needs ``id``, ``prev_hash``, ``hash`` and the :data:`CHAINED_FIELDS`.
    """
    previous: str | None = None
    for row in rows:
        if row.get("prev_hash") != previous:
            return ChainBreak(int(row["id"]), "prev_hash does not match the previous row's hash")
        expected = chain_hash(previous, row)
        if row.get("hash") != expected:
            return ChainBreak(int(row["id"]), "hash does not match the row's content")
        previous = expected
    return None
