"""FHIR store: the string, date, number/quantity and reference search indexes.

Also an index on fhir_resources (org, type, last_updated, id) for the default search
order and `_lastUpdated`.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Runs on SQLite and PostgreSQL. Like the token index of 0002, the rows of one resource
are replaced on every write (DELETE then INSERT, never UPDATE), so the application role
gets SELECT, INSERT and DELETE, and every table forced row-level security with the
tenant policy.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ehr_api.db import rls

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRIVILEGES = ("SELECT", "INSERT", "DELETE")
TABLES = ("fhir_search_string", "fhir_search_date", "fhir_search_number", "fhir_search_reference")


def _index_table(table: str, *columns: sa.Column, key: Sequence[str]) -> None:
    """One index table: the resource's key, `param`, `columns`; primary key `key`."""
    op.create_table(
        table,
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.String(64), nullable=False),
        sa.Column("param", sa.String(64), nullable=False),
        *columns,
        sa.PrimaryKeyConstraint(
            "org_id", "resource_type", "resource_id", "param", *key, name=op.f(f"pk_{table}")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f(f"fk_{table}_org_id_organizations"),
            ondelete="RESTRICT",
        ),
    )


def upgrade() -> None:
    _index_table(
        "fhir_search_string",
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("exact", sa.String(255), nullable=False),
        key=("exact",),
    )
    op.create_index(
        "ix_fhir_search_string_lookup",
        "fhir_search_string",
        ["org_id", "resource_type", "param", "value"],
        postgresql_ops={"value": "varchar_pattern_ops"},
    )
    _index_table(
        "fhir_search_date",
        sa.Column("low", sa.DateTime(timezone=True), nullable=False),
        sa.Column("high", sa.DateTime(timezone=True), nullable=False),
        key=("low", "high"),
    )
    op.create_index(
        "ix_fhir_search_date_low", "fhir_search_date", ["org_id", "resource_type", "param", "low"]
    )
    op.create_index(
        "ix_fhir_search_date_high", "fhir_search_date", ["org_id", "resource_type", "param", "high"]
    )
    _index_table(
        "fhir_search_number",
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.Column("system", sa.String(255), nullable=False),
        sa.Column("code", sa.String(255), nullable=False),
        key=("low", "high", "system", "code"),
    )
    op.create_index(
        "ix_fhir_search_number_lookup",
        "fhir_search_number",
        ["org_id", "resource_type", "param", "low"],
    )
    _index_table(
        "fhir_search_reference",
        sa.Column("target_type", sa.String(64), nullable=False),
        sa.Column("target_id", sa.String(64), nullable=False),
        sa.Column("url", sa.String(255), nullable=False),
        key=("target_type", "target_id", "url"),
    )
    op.create_index(
        "ix_fhir_search_reference_target",
        "fhir_search_reference",
        ["org_id", "target_type", "target_id"],
    )
    op.create_index(
        "ix_fhir_resources_updated",
        "fhir_resources",
        ["org_id", "resource_type", "last_updated", "id"],
    )
    role = rls.app_role()
    for table in TABLES:
        if role:
            rls.grant(table, role, PRIVILEGES)
        rls.enable_tenant_rls(table)


def downgrade() -> None:
    # Dropping a table drops its indexes, policies and grants with it.
    for table in reversed(TABLES):
        op.drop_table(table)
    op.drop_index("ix_fhir_resources_updated", table_name="fhir_resources")
