"""Wiring: build the shared collaborators (database, clock, secret key) from settings once.

Both ``create_app`` and the CLI go through ``Runtime`` so they use the same
settings and the same database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from phonestatus.clock import Clock, SystemClock
from phonestatus.settings import Settings
from phonestatus.storage import create_engine, create_session_factory, upgrade_database


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    secret_key: bytes
    clock: Clock = field(default_factory=SystemClock)

    @classmethod
    def build(
        cls, settings: Settings, *, clock: Clock | None = None, upgrade: bool = True
    ) -> Runtime:
        """Build a runtime; ``upgrade`` applies pending migrations first."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        secret_key = settings.resolve_secret_key()
        if upgrade:
            upgrade_database(settings.sqlalchemy_url)
        engine = create_engine(settings.sqlalchemy_url)
        return cls(
            settings=settings,
            engine=engine,
            session_factory=create_session_factory(engine),
            secret_key=secret_key,
            clock=clock or SystemClock(),
        )

    async def close(self) -> None:
        await self.engine.dispose()
