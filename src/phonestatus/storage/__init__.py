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
from phonestatus.storage.migrate import upgrade_database

__all__ = [
    "Base",
    "begin_immediate",
    "create_engine",
    "create_session_factory",
    "upgrade_database",
    "utcnow_column",
]
