"""Alembic's entry point: migrate on the connection `pgschema.upgrade` hands over (there is no
alembic.ini and no offline mode)."""

from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
