"""The PostgreSQL catalog's schema: Alembic revisions (`versions/`), applied at open.

Each revision defines its tables with SQLAlchemy Core, so no DDL is written by hand, and users
need no alembic.ini: `upgrade` runs Alembic programmatically on one connection. Replicas that
start together on a new database would race to create the tables, so the upgrade holds a
transaction-level advisory lock; whoever waited finds the schema current and does nothing.
PostgreSQL's DDL is transactional, so a failed upgrade leaves the previous revision whole.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

HEAD = "2"
"""The revision this release writes; a database at a revision it does not know is refused."""
CONNECT_TIMEOUT_S = 5
MIGRATION_LOCK = 0x73747263_00000001
"""pg_advisory_xact_lock key (bigint) held while upgrading: "strc" then 1."""


def upgrade(conninfo: str, revision: str = HEAD) -> None:
    """Bring the database of `conninfo` to `revision` (head by default), under the lock.
    ValueError if it is at a revision newer than this streamcalc knows."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    # connected by psycopg itself, so a server that cannot be reached fails as it does later
    dbapi = psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT_S)
    engine = sa.create_engine("postgresql+psycopg://", creator=lambda: dbapi, poolclass=sa.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK)))
            current = MigrationContext.configure(connection).get_current_revision()
            known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
            if current is not None and current not in known:
                raise ValueError(f"catalog schema revision {current} is newer than this streamcalc ({HEAD})")
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()
        dbapi.close()
