"""DDL the migrations use for the database-side walls: roles, grants, RLS, append-only.

Every function runs through `alembic.op` and must be called from inside a migration.
Migrations are history: once a migration that calls a helper has shipped, change the
helper only in ways that keep that migration's result identical (add a new helper or a
keyword instead).

On PostgreSQL (nothing here does anything on SQLite except the append-only triggers):

- `ensure_app_role(role)`: a NOLOGIN role without BYPASSRLS that sessions switch to with
  `SET LOCAL ROLE` (see `ehr_api.db.session`); the migrating user is made a member when it
  is not a superuser, and the role gets USAGE on the current schema.
- `grant(table, role, privileges)`: table privileges for that role. Append-only tables get
  SELECT and INSERT only.
- `enable_tenant_rls(table)`: ENABLE + FORCE row-level security and one policy
  `tenant_isolation` admitting rows of the session's organisation
  (`app.current_org`) or any row in a platform session (`app.platform = 'on'`), for reads
  and writes alike. FORCE makes the policy apply to the table owner too; only superusers
  and BYPASSRLS roles still pass, which is why sessions switch role.
- `create_append_only_guard(table)`: triggers rejecting UPDATE, DELETE (and TRUNCATE on
  PostgreSQL) for everyone, owners and superusers included. A test that must tamper with a
  row on purpose does it as the owner with the trigger disabled
  (`ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only`, or `DROP TRIGGER
  audit_logs_no_update` on SQLite).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from alembic import context, op

from ehr_api.settings import Settings

__all__ = [
    "GUARD_FUNCTION",
    "POLICY_NAME",
    "app_role",
    "create_append_only_guard",
    "drop_append_only_guard",
    "drop_guard_function",
    "enable_tenant_rls",
    "ensure_app_role",
    "grant",
    "revoke_schema_usage",
    "tenant_predicate",
]

POLICY_NAME = "tenant_isolation"
GUARD_FUNCTION = "reject_append_only_change"
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_PRIVILEGES = {"SELECT", "INSERT", "UPDATE", "DELETE"}


def _ident(name: str) -> str:
    # Roles, tables and columns cannot be bound parameters; only plain names get through.
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a plain lower-case SQL identifier")
    return name


def _is_postgresql() -> bool:
    return op.get_context().dialect.name == "postgresql"


def app_role() -> str | None:
    """The application role to create and grant to, or None when switching is disabled.

    `ehr_api.migrate` passes it in the Alembic config attributes; the `alembic` command
    line falls back to `EHR_DB_APP_ROLE` (default `ehr_app`).
    """
    attributes = context.config.attributes
    if "app_role" in attributes:
        configured = attributes["app_role"]
        return _ident(configured) if configured else None
    return Settings.from_env().db_app_role or None


def tenant_predicate(column: str = "org_id") -> str:
    """The SQL condition of the tenant policy (NULLIF: an unset setting reads as '')."""
    return (
        f"({_ident(column)} = NULLIF(current_setting('app.current_org', true), '')::uuid"
        " OR current_setting('app.platform', true) = 'on')"
    )


def ensure_app_role(role: str) -> None:
    """Create `role` if missing, make the migrating user a member, grant schema USAGE.

    Roles are cluster-wide and shared by every schema and database, so creating one races
    with other migrations (parallel test runs): a duplicate is ignored. An existing role
    that is a superuser or bypasses RLS is refused, since it would silently void the
    policies.
    """
    if not _is_postgresql():
        return
    name = _ident(role)
    op.execute(
        f"""
DO $$
DECLARE
    existing pg_roles%ROWTYPE;
BEGIN
    SELECT * INTO existing FROM pg_roles WHERE rolname = '{name}';
    IF NOT FOUND THEN
        BEGIN
            CREATE ROLE {name} NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    ELSIF existing.rolsuper OR existing.rolbypassrls THEN
        RAISE EXCEPTION 'role {name} is a superuser or bypasses row-level security';
    END IF;
    IF NOT pg_has_role(current_user, '{name}', 'MEMBER') THEN
        EXECUTE format('GRANT %I TO %I', '{name}', current_user);
    END IF;
    IF NOT has_schema_privilege('{name}', current_schema(), 'USAGE') THEN
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), '{name}');
    END IF;
END
$$
"""
    )


def revoke_schema_usage(role: str) -> None:
    """Undo the schema USAGE grant (the role itself stays: other schemas may use it)."""
    if not _is_postgresql():
        return
    name = _ident(role)
    op.execute(
        f"""
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') THEN
        EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM %I', current_schema(), '{name}');
    END IF;
END
$$
"""
    )


def grant(table: str, role: str, privileges: Iterable[str]) -> None:
    """GRANT `privileges` on `table` to `role` (PostgreSQL only)."""
    if not _is_postgresql():
        return
    wanted = sorted({privilege.upper() for privilege in privileges})
    unknown = set(wanted) - _PRIVILEGES
    if unknown or not wanted:
        raise ValueError(f"privileges must be some of {sorted(_PRIVILEGES)}, got {wanted}")
    op.execute(f"GRANT {', '.join(wanted)} ON TABLE {_ident(table)} TO {_ident(role)}")


def enable_tenant_rls(table: str, *, column: str = "org_id") -> None:
    """ENABLE + FORCE row-level security on `table` with the tenant policy on `column`."""
    if not _is_postgresql():
        return
    name = _ident(table)
    predicate = tenant_predicate(column)
    op.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {name} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY {POLICY_NAME} ON {name} USING {predicate} WITH CHECK {predicate}")


def create_append_only_guard(table: str) -> None:
    """Reject UPDATE and DELETE on `table` (and TRUNCATE on PostgreSQL), for every role."""
    name = _ident(table)
    if _is_postgresql():
        op.execute(
            f"""
CREATE OR REPLACE FUNCTION {GUARD_FUNCTION}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""
        )
        op.execute(
            f"CREATE TRIGGER {name}_append_only BEFORE UPDATE OR DELETE ON {name}"
            f" FOR EACH ROW EXECUTE FUNCTION {GUARD_FUNCTION}()"
        )
        op.execute(
            f"CREATE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {name}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {GUARD_FUNCTION}()"
        )
        return
    for operation in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {name}_no_{operation.lower()} BEFORE {operation} ON {name}"
            f" BEGIN SELECT RAISE(ABORT, '{operation} on {name} is not allowed:"
            " the table is append-only'); END"
        )


def drop_append_only_guard(table: str) -> None:
    """Remove the triggers of `create_append_only_guard` (the table may stay)."""
    name = _ident(table)
    if _is_postgresql():
        op.execute(f"DROP TRIGGER IF EXISTS {name}_append_only ON {name}")
        op.execute(f"DROP TRIGGER IF EXISTS {name}_no_truncate ON {name}")
        return
    for operation in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}_no_{operation}")


def drop_guard_function() -> None:
    """Drop the shared trigger function once no table uses it (PostgreSQL only)."""
    if _is_postgresql():
        op.execute(f"DROP FUNCTION IF EXISTS {GUARD_FUNCTION}()")
