"""Reading the audit log: filtered pages for people, chain verification for machines.

No HTTP here (routes are in `routes.py`) and no writes (appends are `writer.py`'s job):
the audit log is read-only to everything but the writer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ehr_api.audit import repository
from ehr_api.audit.chain import CHAINED_FIELDS, ChainBreak, chain_hash
from ehr_api.audit.models import AuditLog
from ehr_api.audit.repository import AuditFilter
from ehr_api.errors import InvalidError

__all__ = ["MAX_PAGE", "AuditFilter", "AuditPage", "Verification", "list", "verify", "walk"]

#: The largest page `list` returns.
MAX_PAGE = 500
_VERIFY_BATCH = 1000


@dataclass(frozen=True, slots=True)
class AuditPage:
    """Rows newest first; `next_cursor` fetches the older ones (None: this was the last)."""

    items: list[AuditLog]
    next_cursor: int | None


@dataclass(frozen=True, slots=True)
class Verification:
    """The result of walking one chain: how many rows held, and the first that did not."""

    rows: int
    broken: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.broken is None


async def list(
    db: AsyncSession,
    *,
    org_id: uuid.UUID | None,
    where: AuditFilter | None = None,
    cursor: int | None = None,
    limit: int = 50,
) -> AuditPage:
    """One page of the chain of `org_id` (None: the platform chain) matching `where`.

    Raises:
        InvalidError: `limit` outside 1..MAX_PAGE, a cursor below 1, or an empty time range.
    """
    where = where or AuditFilter()
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidError(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    if cursor is not None and cursor < 1:
        raise InvalidError("cursor must be a positive row id", field="cursor")
    if where.since and where.until and where.since >= where.until:
        raise InvalidError("since must be before until", field="since")
    rows = await repository.list_page(
        db, org_id=org_id, where=where, before_id=cursor, limit=limit + 1
    )
    items = [*rows[:limit]]
    return AuditPage(items=items, next_cursor=items[-1].id if len(rows) > limit else None)


async def walk(db: AsyncSession, *, org_id: uuid.UUID | None) -> Verification:
    """Check the chain of `org_id` (None: the platform chain) row by row in id order.

    Streams in batches, so a long chain is never held in memory. What it proves: no row
    was changed, removed or reordered between the first and the last row read. What it
    cannot prove: that rows were not cut off the end (nothing after the last row vouches
    for it); anchoring the tail hash elsewhere would close that.
    """
    previous: str | None = None
    checked = 0
    after = 0
    while True:
        batch = await repository.chain_batch(db, org_id=org_id, after_id=after, limit=_VERIFY_BATCH)
        for row in batch:
            if row.prev_hash != previous:
                reason = "prev_hash does not match the previous row's hash"
                return Verification(checked, ChainBreak(row.id, reason))
            expected = chain_hash(previous, _fields(row))
            if row.hash != expected:
                return Verification(
                    checked, ChainBreak(row.id, "hash does not match the row's content")
                )
            previous = expected
            checked += 1
        if len(batch) < _VERIFY_BATCH:
            return Verification(checked, None)
        after = batch[-1].id


async def verify(db: AsyncSession, *, org_id: uuid.UUID | None) -> ChainBreak | None:
    """The first broken row of the chain of `org_id`, or None when it holds."""
    return (await walk(db, org_id=org_id)).broken


def _fields(row: AuditLog) -> dict[str, Any]:
    return {name: getattr(row, name) for name in CHAINED_FIELDS}
