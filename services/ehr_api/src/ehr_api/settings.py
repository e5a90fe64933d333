"""Every knob of the platform, read once from the environment.

One frozen object is built at start-up (`Settings.from_env()`) and handed to
`create_app(settings)`, the CLI and the workers, so nothing else reads `os.environ` and a
test can build the exact configuration it needs with `Settings(...)` or `from_env({...})`.

Every field has an embedded default that gives a working single-process install
(`ehr-platform up`): a SQLite file and generated secrets under the data directory. Setting
`DATABASE_URL` / `REDIS_URL` switches to the distributed mode without code changes.

| field | environment variable | default |
|---|---|---|
| data_dir | EHR_DATA_DIR | ./var |
| database_url | DATABASE_URL | unset -> SQLite file `<data_dir>/ehr.sqlite3` |
| db_app_role | EHR_DB_APP_ROLE | ehr_app (empty: never switch role) |
| db_echo | EHR_DB_ECHO | false |
| db_pool_size | EHR_DB_POOL_SIZE | 10 |
| db_scoped_pool_size | EHR_DB_SCOPED_POOL_SIZE | 10 (0: none; PostgreSQL only) |
| sqlite_synchronous | EHR_SQLITE_SYNCHRONOUS | FULL |
| redis_url | REDIS_URL | unset -> in-process broker |
| jwt_secret | EHR_JWT_SECRET | unset -> generated under data_dir |
| jwt_jwks_url | EHR_JWT_JWKS_URL | unset (HS256 with jwt_secret) |
| jwt_issuer | EHR_JWT_ISSUER | unset (not checked) |
| jwt_audience | EHR_JWT_AUDIENCE | unset (not checked) |
| encryption_keys | EHR_ENCRYPTION_KEYS | unset -> generated under data_dir |
| host | EHR_HOST | 127.0.0.1 |
| port | EHR_PORT | 8000 |
| log_level | EHR_LOG_LEVEL | INFO |
| fhir_update_create | EHR_FHIR_UPDATE_CREATE | true (PUT to an unknown id creates it) |
| gc_tuning | EHR_GC_TUNING | true (freeze the start-up heap, fewer collections: `ehr_api.gc_tuning`) |
| migrations_dir | EHR_MIGRATIONS_DIR | unset -> `migrations/` of the source checkout |
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings", "SettingsError"]

_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """An environment variable holds a value the platform cannot use.

    Raised at start-up, naming the variable, so a typo fails loudly instead of
    silently falling back to a default.
    """


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The platform's configuration; see the module docstring for the variables."""

    data_dir: Path = Path("var")
    database_url: str | None = None
    db_app_role: str = "ehr_app"
    db_echo: bool = False
    db_pool_size: int = 10
    db_scoped_pool_size: int = 10
    sqlite_synchronous: str = "FULL"
    redis_url: str | None = None
    jwt_secret: str | None = None
    jwt_jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    encryption_keys: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    fhir_update_create: bool = True
    gc_tuning: bool = True
    migrations_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.db_app_role and not _ROLE_NAME.fullmatch(self.db_app_role):
            # The role name is spliced into SQL (roles cannot be bound parameters).
            raise SettingsError(
                f"EHR_DB_APP_ROLE={self.db_app_role!r}: expected a lower-case SQL identifier"
            )
        if self.sqlite_synchronous not in _SYNCHRONOUS:
            raise SettingsError(
                f"EHR_SQLITE_SYNCHRONOUS={self.sqlite_synchronous!r}: expected one of {_SYNCHRONOUS}"
            )
        if not 0 < self.port < 65536:
            raise SettingsError(f"EHR_PORT={self.port}: expected 1-65535")
        if self.db_scoped_pool_size < 0:
            raise SettingsError(
                f"EHR_DB_SCOPED_POOL_SIZE={self.db_scoped_pool_size}: expected >= 0 (0: no read pool)"
            )
        if self.db_pool_size < 1:
            raise SettingsError(f"EHR_DB_POOL_SIZE={self.db_pool_size}: expected >= 1")

    @property
    def sqlite_path(self) -> Path:
        """Where the embedded database lives when `database_url` is unset."""
        return self.data_dir / "ehr.sqlite3"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default: `os.environ`).

        Raises:
            SettingsError: a variable is set to a value that cannot be used.
        """
        env = os.environ if environ is None else environ

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        return cls(
            data_dir=Path(text("EHR_DATA_DIR") or "var"),
            database_url=text("DATABASE_URL"),
            db_app_role=env.get("EHR_DB_APP_ROLE", "ehr_app").strip(),
            db_echo=_flag(env, "EHR_DB_ECHO", default=False),
            db_pool_size=_integer(env, "EHR_DB_POOL_SIZE", default=10),
            db_scoped_pool_size=_integer(env, "EHR_DB_SCOPED_POOL_SIZE", default=10),
            sqlite_synchronous=(text("EHR_SQLITE_SYNCHRONOUS") or "FULL").upper(),
            redis_url=text("REDIS_URL"),
            jwt_secret=text("EHR_JWT_SECRET"),
            jwt_jwks_url=text("EHR_JWT_JWKS_URL"),
            jwt_issuer=text("EHR_JWT_ISSUER"),
            jwt_audience=text("EHR_JWT_AUDIENCE"),
            encryption_keys=text("EHR_ENCRYPTION_KEYS"),
            host=text("EHR_HOST") or "127.0.0.1",
            port=_integer(env, "EHR_PORT", default=8000),
            log_level=(text("EHR_LOG_LEVEL") or "INFO").upper(),
            fhir_update_create=_flag(env, "EHR_FHIR_UPDATE_CREATE", default=True),
            gc_tuning=_flag(env, "EHR_GC_TUNING", default=True),
            migrations_dir=Path(value) if (value := text("EHR_MIGRATIONS_DIR")) else None,
        )


def _flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name}={raw!r}: expected true/false")


def _integer(env: Mapping[str, str], name: str, *, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected an integer") from None
