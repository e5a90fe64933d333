"""Opaque paging cursors bound to the organisation that asked.

A cursor is base64url JSON naming the organisation, what is being paged (`kind`, e.g.
"search:Patient" or "history:Patient/1") and whatever position the pager needs. It is not
a secret: the page is still read through the caller's own organisation session, so a
forged position can only ever reveal the caller's own data. Binding the organisation in
anyway turns a cursor passed between organisations into a clear 400 instead of a page
that silently means something else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from ehr_api.errors import BadRequestError

__all__ = ["decode_cursor", "encode_cursor", "keyset_after", "parse_count", "query_digest"]

_FIELD = "_cursor"


def encode_cursor(*, org_id: uuid.UUID, kind: str, position: dict[str, Any]) -> str:
    """The cursor for `position` of `kind`, bound to `org_id`."""
    payload = {"o": str(org_id), "k": kind, "p": position}
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, *, org_id: uuid.UUID, kind: str) -> dict[str, Any]:
    """The position a cursor holds.

    Raises:
        BadRequestError: not a cursor of ours, made for another organisation, or for
            another listing (`kind`).
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise BadRequestError("the paging cursor is not valid", field=_FIELD) from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("p"), dict):
        raise BadRequestError("the paging cursor is not valid", field=_FIELD)
    if payload.get("o") != str(org_id):
        raise BadRequestError("the paging cursor belongs to another organisation", field=_FIELD)
    if payload.get("k") != kind:
        raise BadRequestError("the paging cursor was made for another listing", field=_FIELD)
    position: dict[str, Any] = payload["p"]
    return position


def query_digest(applied: Sequence[tuple[str, str]]) -> str:
    """What a cursor pins: the query without its page size (`_count` may change)."""
    kept = sorted((name, value) for name, value in applied if name != "_count")
    return hashlib.sha256(json.dumps(kept).encode()).hexdigest()[:16]


def parse_count(value: str) -> int:
    """`_count` as a number (400 otherwise); the caller caps it."""
    if not value.isdigit():
        raise BadRequestError(f"_count must be a number, got {value!r}", field="_count")
    return int(value)


def keyset_after(keys: Sequence[tuple[Any, Any, bool]]) -> ColumnElement[bool]:
    """Rows strictly after a position in a keyset order: `keys` are (column, the
    position's value, descending) from the most significant on."""
    return or_(
        *(
            and_(
                *(earlier == value for earlier, value, _ in keys[:index]),
                column < value if descending else column > value,
            )
            for index, (column, value, descending) in enumerate(keys)
        )
    )
