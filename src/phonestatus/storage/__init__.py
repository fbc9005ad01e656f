"""Database engine, sessions and the Alembic migration history.

``Base`` is the declarative base every package's ``models.py`` uses. Helpers
never commit; the request or job that opens a session owns the unit of work.
"""

from phonestatus.storage.db import (
    Base,
    begin_immediate,
    create_engine,
    create_session_factory,
    utcnow_column,
)


def upgrade_database(url: str, revision: str = "head") -> None:
    """Upgrade the database at the async SQLAlchemy ``url`` to ``revision``.

    See ``storage.migrate.upgrade_database``. Alembic (and Mako) load on the
    first call, so processes that never migrate, such as the writer and the
    export helper, skip about 90 ms of imports.
    """
    from phonestatus.storage.migrate import upgrade_database as upgrade

    upgrade(url, revision)


__all__ = [
    "Base",
    "begin_immediate",
    "create_engine",
    "create_session_factory",
    "upgrade_database",
    "utcnow_column",
]
