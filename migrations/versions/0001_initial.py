"""Initial schema: organisations, identities, integrations, audit log, event log.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Runs on SQLite and PostgreSQL. On PostgreSQL it also creates the application role
(EHR_DB_APP_ROLE, default ehr_app), grants it what the application needs, enables and
forces row-level security with the tenant policy on every tenant table, and makes
audit_logs append-only with a trigger (SQLite gets the UPDATE/DELETE triggers too).
See ehr_api.db.rls and docs/operations.md.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from ehr_api.db import rls

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NOW = sa.text("CURRENT_TIMESTAMP")

# Table -> privileges of the application role. Append-only tables: SELECT, INSERT.
GRANTS = {
    "organizations": ("SELECT", "INSERT", "UPDATE"),
    "integration_vendors": ("SELECT",),
    "principals": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "role_assignments": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "api_keys": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "integration_credentials": ("SELECT", "INSERT", "UPDATE", "DELETE"),
    "audit_logs": ("SELECT", "INSERT"),
    "event_log": ("SELECT", "INSERT"),
}
TENANT_TABLES = (
    "principals",
    "role_assignments",
    "api_keys",
    "integration_credentials",
    "audit_logs",
    "event_log",
)


def _fk_org(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["org_id"],
        ["organizations.id"],
        name=op.f(f"fk_{table}_org_id_organizations"),
        ondelete="RESTRICT",
    )


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(63), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("slug", name=op.f("uq_organizations_slug")),
        sa.CheckConstraint(
            "status IN ('active', 'suspended')", name=op.f("ck_organizations_status")
        ),
    )
    vendors = op.create_table(
        "integration_vendors",
        sa.Column("slug", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("slug", name=op.f("pk_integration_vendors")),
    )
    op.bulk_insert(
        vendors,
        [
            {"slug": "hl7-v2x", "name": "HL7 v2.x over MLLP"},
            {"slug": "fhir-r4", "name": "FHIR R4 REST"},
        ],
    )
    op.create_table(
        "principals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_principals")),
        _fk_org("principals"),
        sa.UniqueConstraint("org_id", "subject", name=op.f("uq_principals_org_id_subject")),
        sa.CheckConstraint("kind IN ('user', 'machine')", name=op.f("ck_principals_kind")),
    )
    op.create_table(
        "role_assignments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=True),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_assignments")),
        _fk_org("role_assignments"),
    )
    op.create_index(
        "uq_role_assignments_org_id_subject_role",
        "role_assignments",
        ["org_id", "subject", "role"],
        unique=True,
        postgresql_where=sa.text("org_id IS NOT NULL"),
        sqlite_where=sa.text("org_id IS NOT NULL"),
    )
    op.create_index(
        "uq_role_assignments_global_subject_role",
        "role_assignments",
        ["subject", "role"],
        unique=True,
        postgresql_where=sa.text("org_id IS NULL"),
        sqlite_where=sa.text("org_id IS NULL"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("hash", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("roles", JSON, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        _fk_org("api_keys"),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_index(op.f("ix_api_keys_org_id"), "api_keys", ["org_id"])
    op.create_table(
        "integration_credentials",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("vendor", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("secrets", JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integration_credentials")),
        _fk_org("integration_credentials"),
        sa.ForeignKeyConstraint(
            ["vendor"],
            ["integration_vendors.slug"],
            name=op.f("fk_integration_credentials_vendor_integration_vendors"),
            ondelete="RESTRICT",
        ),
        sa.UniqueConstraint("org_id", "name", name=op.f("uq_integration_credentials_org_id_name")),
    )
    op.create_index(
        op.f("ix_integration_credentials_vendor"), "integration_credentials", ["vendor"]
    )
    op.create_table(
        "audit_logs",
        sa.Column("id", BIG_ID, sa.Identity(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("actor_type", sa.String(16), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=True),
        sa.Column("resource_ids", JSON, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("client_ip", sa.String(45), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.Column("prev_hash", sa.String(128), nullable=True),
        sa.Column("hash", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_logs")),
        _fk_org("audit_logs"),
        sa.UniqueConstraint("org_id", "prev_hash", name=op.f("uq_audit_logs_org_id_prev_hash")),
        sa.CheckConstraint(
            "actor_type IN ('user', 'api_key', 'system')", name=op.f("ck_audit_logs_actor_type")
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_audit_logs_org_id_id"), "audit_logs", ["org_id", "id"])
    op.create_index(
        op.f("ix_audit_logs_org_id_occurred_at"), "audit_logs", ["org_id", "occurred_at"]
    )
    op.create_index(
        "uq_audit_logs_platform_prev_hash",
        "audit_logs",
        ["prev_hash"],
        unique=True,
        postgresql_where=sa.text("org_id IS NULL"),
        sqlite_where=sa.text("org_id IS NULL"),
    )
    op.create_table(
        "event_log",
        sa.Column("id", BIG_ID, sa.Identity(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("message_type", sa.String(32), nullable=True),
        sa.Column("control_id", sa.String(255), nullable=True),
        sa.Column("resource_type", sa.String(64), nullable=True),
        sa.Column("resource_id", sa.String(64), nullable=True),
        sa.Column("data", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_log")),
        _fk_org("event_log"),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_event_log_org_id_id"), "event_log", ["org_id", "id"])

    rls.create_append_only_guard("audit_logs")

    role = rls.app_role()
    if role:
        rls.ensure_app_role(role)
        for table, privileges in GRANTS.items():
            rls.grant(table, role, privileges)
    rls.enable_tenant_rls("organizations", column="id")
    for table in TENANT_TABLES:
        rls.enable_tenant_rls(table)


def downgrade() -> None:
    # Dropping a table drops its policies, triggers and grants with it.
    for table in (
        "event_log",
        "audit_logs",
        "integration_credentials",
        "api_keys",
        "role_assignments",
        "principals",
        "integration_vendors",
        "organizations",
    ):
        op.drop_table(table)
    rls.drop_guard_function()
    role = rls.app_role()
    if role:
        rls.revoke_schema_usage(role)
