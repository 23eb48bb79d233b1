"""Revision 2: the deletions of stage state, listed for undo (their values stay in the state
store, so, unlike SQLite's schema 2, no column keeps them)."""

import sqlalchemy as sa
from alembic import op

revision = "2"
down_revision = "1"


def upgrade() -> None:
    op.create_table(
        "deletions",
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("deletion_id", sa.Text, nullable=False, unique=True),
        sa.Column("org_id", sa.Text, nullable=False),
        sa.Column("pipeline_id", sa.Text, nullable=False),
        sa.Column("stage", sa.Text, nullable=False),
        sa.Column("state_name", sa.Text, nullable=False),
        *(sa.Column(name, sa.BigInteger, nullable=False) for name in ("assets", "points", "keys")),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("status_changes", sa.BigInteger, nullable=False),
        sa.Column("release_version", sa.BigInteger, nullable=False),
        *(sa.Column(name, sa.BigInteger) for name in ("generation", "restored_ms", "restored_generation")),
    )
    op.create_index("deletions_pipeline", "deletions", ["org_id", "pipeline_id"])
    op.create_index("deletions_age", "deletions", ["at_ms"])
