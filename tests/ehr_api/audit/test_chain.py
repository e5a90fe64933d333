"""The audit hash chain catches edits, deletions, insertions and reordering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ehr_api.audit.chain import chain_hash, find_break


def make_chain(count: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    previous = None
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for index in range(count):
        row: dict[str, Any] = {
            "id": index + 1,
            "org_id": 7,
            "occurred_at": start + timedelta(seconds=index),
            "actor": f"user{index}",
            "actor_type": "user",
            "action": "read",
            "resource_type": "Patient",
            "resource_ids": [str(index)],
            "outcome": "success",
            "status_code": 200,
            "client_ip": "127.0.0.1",
            "user_agent": "pytest",
            "request_id": f"r{index}",
            "details": {"n": index},
            "prev_hash": previous,
        }
        row["hash"] = chain_hash(previous, row)
        previous = row["hash"]
        rows.append(row)
    return rows


def test_an_intact_chain_verifies() -> None:
    assert find_break(make_chain(20)) is None
    assert find_break([]) is None


def test_an_edited_row_is_named() -> None:
    rows = make_chain(10)
    rows[4]["details"] = {"n": 999}
    broken = find_break(rows)
    assert broken is not None and broken.row_id == 5
    assert "content" in broken.reason


def test_a_deleted_row_is_named() -> None:
    rows = make_chain(10)
    del rows[3]
    broken = find_break(rows)
    assert broken is not None and broken.row_id == 5


def test_reordering_is_caught() -> None:
    rows = make_chain(5)
    rows[1], rows[2] = rows[2], rows[1]
    broken = find_break(rows)
    assert broken is not None and broken.row_id == 3


def test_a_rehashed_forgery_still_breaks_the_next_link() -> None:
    rows = make_chain(6)
    rows[2]["actor"] = "mallory"
    rows[2]["hash"] = chain_hash(rows[2]["prev_hash"], rows[2])
    broken = find_break(rows)
    assert broken is not None and broken.row_id == 4


def test_timestamps_are_canonical_across_time_zones() -> None:
    row = make_chain(1)[0]
    shifted = dict(row, occurred_at=row["occurred_at"].astimezone(timezone_plus_ten()))
    assert chain_hash(None, row) == chain_hash(None, shifted)


def timezone_plus_ten() -> Any:
    from datetime import timezone

    return timezone(timedelta(hours=10))
