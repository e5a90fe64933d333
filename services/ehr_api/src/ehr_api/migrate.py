"""Run and inspect the Alembic migrations from code (`ehr-platform migrate`, `/readyz`).

Alembic's commands are synchronous and our env.py would start its own event loop, which
cannot happen inside a running one (app start-up, async tests). So these functions open an
async connection themselves and hand it to env.py through the config attributes; Alembic
then runs on that connection inside `run_sync`.

Where the scripts live: `EHR_MIGRATIONS_DIR` if set, else `migrations/` at the root of the
source checkout (this file is `services/ehr_api/src/ehr_api/migrate.py`). An installed
wheel has no checkout, so images copy `migrations/` and set `EHR_MIGRATIONS_DIR`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ehr_api.db.engine import SQLITE_BEGIN_OPTION, create_engine
from ehr_api.settings import Settings

__all__ = [
    "MigrationsNotFoundError",
    "alembic_config",
    "current_revision",
    "downgrade_to_base",
    "head_revision",
    "is_at_head",
    "migrations_dir",
    "upgrade_to_head",
]

_UNSET = object()


class MigrationsNotFoundError(FileNotFoundError):
    """The migration scripts are not where `migrations_dir()` looked."""


def migrations_dir() -> Path:
    """The directory holding env.py and versions/.

    Raises:
        MigrationsNotFoundError: neither `EHR_MIGRATIONS_DIR` nor the checkout has them.
    """
    configured = Settings.from_env().migrations_dir
    path = configured or Path(__file__).resolve().parents[4] / "migrations"
    if not (path / "env.py").is_file():
        raise MigrationsNotFoundError(
            f"no Alembic env.py in {path}: set EHR_MIGRATIONS_DIR to the migrations directory"
        )
    return path


def alembic_config(*, app_role: str | object | None = _UNSET) -> Config:
    """An Alembic `Config` for the platform's scripts, without an ini file.

    `app_role` is the PostgreSQL role the migrations create and grant to (None: skip);
    by default `EHR_DB_APP_ROLE` (`ehr_app`).
    """
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    role = Settings.from_env().db_app_role if app_role is _UNSET else app_role
    config.attributes["app_role"] = role or None
    return config


def head_revision() -> str:
    """The newest revision in the scripts (what `upgrade_to_head` reaches)."""
    head = ScriptDirectory.from_config(alembic_config(app_role=None)).get_current_head()
    if head is None:
        raise MigrationsNotFoundError(f"no revisions in {migrations_dir()}")
    return head


async def upgrade_to_head(
    target: str | AsyncEngine, *, app_role: str | object | None = _UNSET
) -> None:
    """Migrate the database at `target` (URL or engine) to the newest revision.

    Runs in one transaction: a failing migration leaves the database as it was. On
    PostgreSQL connect as the owner of the schema (not as the application role).
    """
    config = alembic_config(app_role=app_role)
    async with _connection(target) as connection:
        await connection.run_sync(_with_connection(config, command.upgrade, "head"))


async def downgrade_to_base(
    target: str | AsyncEngine, *, app_role: str | object | None = _UNSET
) -> None:
    """Undo every migration (drops every table): for tests and throw-away databases."""
    config = alembic_config(app_role=app_role)
    async with _connection(target) as connection:
        await connection.run_sync(_with_connection(config, command.downgrade, "base"))


async def current_revision(target: str | AsyncEngine) -> str | None:
    """The revision the database at `target` is at; None for an unmigrated database."""
    async with _connection(target, write=False) as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def is_at_head(target: str | AsyncEngine) -> bool:
    """Whether `target` is migrated to `head_revision()` (the readiness check)."""
    return await current_revision(target) == head_revision()


def _with_connection(
    config: Config, run: Callable[[Config, str], None], revision: str
) -> Callable[[Connection], None]:
    def invoke(connection: Connection) -> None:
        config.attributes["connection"] = connection
        try:
            run(config, revision)
        finally:
            del config.attributes["connection"]

    return invoke


@asynccontextmanager
async def _connection(
    target: str | AsyncEngine, *, write: bool = True
) -> AsyncIterator[AsyncConnection]:
    engine = create_engine(target) if isinstance(target, str) else target
    try:
        if write:
            async with engine.begin() as connection:
                yield connection
        else:
            async with engine.connect() as connection:
                # Reading the version must not wait for SQLite's write lock (readiness).
                yield await connection.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
    finally:
        if engine is not target:
            await engine.dispose()
