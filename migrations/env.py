"""Alembic environment: async engine, URL from the platform's settings.

Two entry points share this file:

- `alembic -c migrations/alembic.ini upgrade head`: the URL comes from `-x url=...`, else
  `sqlalchemy.url` in the config, else the platform settings (`DATABASE_URL`, or the SQLite
  file under `EHR_DATA_DIR`); an async engine is built and the migrations run inside one
  transaction (SQLite DDL is transactional too, so a failed upgrade leaves nothing half-done).
- `ehr_api.migrate`: passes an open connection in `config.attributes["connection"]`, so
  migrating works from inside a running event loop (the app's start-up, async tests).
"""

from __future__ import annotations

import asyncio

from alembic import context
from ehr_api.db.engine import create_engine, database_url
from ehr_api.db.models import Base
from ehr_api.settings import Settings
from sqlalchemy.engine import Connection

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    return url or database_url(Settings.from_env())


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def _run_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
elif (connection := config.attributes.get("connection")) is not None:
    _run(connection)
else:
    if config.config_file_name is not None:
        from logging.config import fileConfig

        fileConfig(config.config_file_name, disable_existing_loggers=False)
    asyncio.run(_run_async(_url()))
