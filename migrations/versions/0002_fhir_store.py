"""FHIR store: current resources, their history and the token search index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Runs on SQLite and PostgreSQL. On PostgreSQL the application role gets the privileges
below and every table gets forced row-level security with the tenant policy, as in 0001.
History is append-only for the application (SELECT, INSERT): versions are never
rewritten; a delete is a new tombstone version.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from ehr_api.db import rls

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")

GRANTS = {
    "fhir_resources": ("SELECT", "INSERT", "UPDATE"),
    "fhir_resource_history": ("SELECT", "INSERT"),
    "fhir_search_token": ("SELECT", "INSERT", "DELETE"),
}


def _fk_org(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["org_id"],
        ["organizations.id"],
        name=op.f(f"fk_{table}_org_id_organizations"),
        ondelete="RESTRICT",
    )


def _versioned(table: str, *key: str) -> None:
    op.create_table(
        table,
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("content", JSON, nullable=False),
        sa.PrimaryKeyConstraint(*key, name=op.f(f"pk_{table}")),
        _fk_org(table),
    )


def upgrade() -> None:
    _versioned("fhir_resources", "org_id", "resource_type", "id")
    _versioned("fhir_resource_history", "org_id", "resource_type", "id", "version_id")
    op.create_table(
        "fhir_search_token",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.String(64), nullable=False),
        sa.Column("param", sa.String(64), nullable=False),
        sa.Column("system", sa.String(255), nullable=False),
        sa.Column("code", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint(
            "org_id",
            "resource_type",
            "resource_id",
            "param",
            "system",
            "code",
            name=op.f("pk_fhir_search_token"),
        ),
        _fk_org("fhir_search_token"),
    )
    op.create_index(
        "ix_fhir_search_token_lookup",
        "fhir_search_token",
        ["org_id", "resource_type", "param", "code"],
    )
    role = rls.app_role()
    if role:
        for table, privileges in GRANTS.items():
            rls.grant(table, role, privileges)
    for table in GRANTS:
        rls.enable_tenant_rls(table)


def downgrade() -> None:
    # Dropping a table drops its policies and grants with it.
    for table in ("fhir_search_token", "fhir_resource_history", "fhir_resources"):
        op.drop_table(table)
