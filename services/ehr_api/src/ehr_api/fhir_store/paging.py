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
import json
import uuid
from typing import Any

from ehr_api.errors import BadRequestError

__all__ = ["decode_cursor", "encode_cursor"]

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
