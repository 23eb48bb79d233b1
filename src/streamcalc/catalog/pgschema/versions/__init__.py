"""Alembic revisions of the PostgreSQL catalog, one file each, oldest first."""
