"""Send a transaction's session settings in the same round trip as its BEGIN (asyncpg).

Every org transaction starts with `BEGIN` and then `SELECT set_config(...)` for the
row-security settings (`ehr_api.db.session`): two round trips before the first real
statement, on every request. PostgreSQL's simple query protocol accepts several
statements in one message, and asyncpg sends `BEGIN` through it (`Connection.execute`
without arguments), so the settings can ride along: `BEGIN; SELECT set_config(...)`.

How: connections are `PreludeConnection`s (asyncpg's `connection_class`). The session's
`after_begin` hook, which runs before the driver has sent BEGIN (the asyncpg adapter
begins lazily, at the first statement), stores the settings as a *prelude* on the
connection (`defer_to_begin`); the next BEGIN sends it. A prelude that no BEGIN picked
up (a transaction that ran no statement) is dropped when the connection goes back to
the pool (`forget_unsent_preludes`), so it can never reach another user of the
connection.

Values are inlined as SQL string literals, so only plain values qualify (no backslash,
no NUL; quotes are doubled); anything else falls back to the parameterised statement.
If BEGIN succeeded and the prelude failed, the transaction is rolled back before the
error propagates: the connection is never left inside a transaction the adapter does not
know about.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["PreludeConnection", "defer_to_begin", "forget_unsent_preludes", "set_config_sql"]


class PreludeConnection(asyncpg.Connection):  # type: ignore[misc]
    """An asyncpg connection that appends a pending prelude to its next `BEGIN`."""

    __slots__ = ("prelude",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prelude: str | None = None

    # asyncpg's own signature, timeout included.
    async def execute(
        self,
        query: str,
        *args: Any,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> str:
        prelude = self.prelude
        if prelude is None or args or not query.startswith("BEGIN"):
            return str(await super().execute(query, *args, timeout=timeout))
        self.prelude = None
        try:
            return str(await super().execute(f"{query.rstrip(';')}; {prelude}", timeout=timeout))
        except Exception:
            if not self.is_closed() and self.is_in_transaction():
                with contextlib.suppress(Exception):
                    await super().execute("ROLLBACK")
            # asyncpg registered the transaction before sending BEGIN; it never started,
            # so the next one must not think itself nested (and send SAVEPOINT).
            self._top_xact = None
            raise


def set_config_sql(settings: Mapping[str, str]) -> str | None:
    """`SELECT set_config(name, value, true), ...` with literals, or None if a value or
    name cannot be inlined safely.

    >>> set_config_sql({"app.current_org": "it's"})
    "SELECT set_config('app.current_org', 'it''s', true)"
    """
    calls = []
    for name, value in settings.items():
        if any(bad in text for text in (name, value) for bad in ("\\", "\x00")):
            return None
        calls.append(f"set_config({_literal(name)}, {_literal(value)}, true)")
    return "SELECT " + ", ".join(calls)


def defer_to_begin(connection: Connection, sql: str) -> bool:
    """Have `sql` sent with the BEGIN of `connection`'s transaction; False if that cannot
    be arranged (not a `PreludeConnection`, or BEGIN was already sent) and the caller
    must execute it itself."""
    fairy = connection.connection
    driver = fairy.driver_connection
    if not isinstance(driver, PreludeConnection):
        return False
    if getattr(fairy.dbapi_connection, "_transaction", None) is not None:
        return False  # the driver's transaction has begun: too late to ride along
    driver.prelude = sql
    return True


def forget_unsent_preludes(engine: AsyncEngine) -> None:
    """Drop a prelude no BEGIN picked up when its connection is checked back in."""

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _forget(dbapi_connection: Any, _record: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if isinstance(driver, PreludeConnection):
            driver.prelude = None


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
