"""Engine, tables and the tenant-scoped session (see `session.py` for the walls).

Import the session helpers from here; import the tables from their domain packages (or all
of them from `ehr_api.db.models`).
"""

from ehr_api.db.engine import create_engine, database_url, engine_from_settings, is_postgresql
from ehr_api.db.session import (
    CrossTenantError,
    Database,
    ReadOnlySessionError,
    RowSecurityError,
    Scope,
    current_org_id,
    get_database,
    org_session_dependency,
)

__all__ = [
    "CrossTenantError",
    "Database",
    "ReadOnlySessionError",
    "RowSecurityError",
    "Scope",
    "create_engine",
    "current_org_id",
    "database_url",
    "engine_from_settings",
    "get_database",
    "is_postgresql",
    "org_session_dependency",
]
