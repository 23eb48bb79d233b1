"""Revision 1: orgs, accounts, tokens, pipelines with their status history, and the audit log
(the tables of the SQLite catalog's schema 1)."""

import sqlalchemy as sa
from alembic import op

revision = "1"
down_revision = None


def _seq() -> sa.Column[int]:
    """The insertion order every listing follows."""
    return sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "orgs",
        sa.Column("org_id", sa.Text, primary_key=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "accounts",
        sa.Column("app_key", sa.Text, primary_key=True),
        sa.Column("org_id", sa.Text, nullable=False),
        sa.Column("app_secret", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column("app_key", sa.Text, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("tokens_expiry", "tokens", ["expires_ms"])
    op.create_table(
        "pipelines",
        _seq(),
        sa.Column("pipeline_id", sa.Text, nullable=False, unique=True),
        sa.Column("org_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("design", sa.JSON, nullable=False),  # json, not jsonb: keys keep their order
        sa.Column("released", sa.JSON),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.Column("release_version", sa.BigInteger, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("pipelines_org", "pipelines", ["org_id", "status"])
    op.create_table(
        "status_history",
        _seq(),
        sa.Column("pipeline_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text),
    )
    op.create_index("status_history_pipeline", "status_history", ["pipeline_id"])
    op.create_table(
        "audit",
        _seq(),
        sa.Column("org_id", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("pipeline_id", sa.Text),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("audit_org", "audit", ["org_id", "pipeline_id"])
