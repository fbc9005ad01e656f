"""The database never stores a plaintext AccessKey secret, checked by scanning raw storage bytes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from phonestatus.accounts import service
from phonestatus.accounts.crypto import SecretCipher
from phonestatus.clock import FrozenClock
from phonestatus.settings import to_async_url
from phonestatus.storage import create_engine, create_session_factory, upgrade_database

from .factories import make_account


async def _create_keys(url: str, cipher: SecretCipher, clock: FrozenClock) -> list[tuple[str, str]]:
    engine = create_engine(url)
    created = []
    try:
        async with create_session_factory(engine)() as session:
            account = await make_account(session, clock=clock)
            for _ in range(service.ACCESS_KEY_LIMIT):
                access_key, secret = await service.create_access_key(
                    session, account.id, cipher=cipher, clock=clock
                )
                await session.commit()
                created.append((access_key.id, secret))
    finally:
        await engine.dispose()
    return created


class TestSecretAtRest:
    async def test_sqlite_file_has_no_plaintext_secret(
        self,
        fresh_database_url: Callable[[str], str],
        cipher: SecretCipher,
        clock: FrozenClock,
    ) -> None:
        plain_url = fresh_database_url("sqlite")
        url = to_async_url(plain_url)
        upgrade_database(url)

        created = await _create_keys(url, cipher, clock)

        database = Path(plain_url.removeprefix("sqlite:///"))
        # The main file plus the WAL and shared-memory files, whatever has not
        # been checkpointed yet.
        raw = b"".join(
            path.read_bytes()
            for path in database.parent.iterdir()
            if path.name.startswith(database.name)
        )
        for access_key_id, secret in created:
            # The id is stored in the clear, which proves the scan reads the rows.
            assert access_key_id.encode() in raw
            assert secret.encode() not in raw

    async def test_postgresql_table_file_has_no_plaintext_secret(
        self,
        fresh_database_url: Callable[[str], str],
        cipher: SecretCipher,
        clock: FrozenClock,
    ) -> None:
        url = to_async_url(fresh_database_url("postgresql"))
        upgrade_database(url)
        created = await _create_keys(url, cipher, clock)

        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                # CHECKPOINT flushes the table's pages to its file on disk, and
                # pg_read_binary_file returns that file's raw bytes. Both need
                # a superuser, which the test server provides.
                await connection.execute(sa.text("CHECKPOINT"))
                raw = await connection.scalar(
                    sa.text("SELECT pg_read_binary_file(pg_relation_filepath('access_keys'))")
                )
                rows_text = await connection.scalar(
                    sa.text("SELECT string_agg(t::text, '|') FROM access_keys AS t")
                )
        finally:
            await engine.dispose()

        assert isinstance(raw, bytes)
        for access_key_id, secret in created:
            assert access_key_id.encode() in raw
            assert secret.encode() not in raw
            assert secret not in rows_text
