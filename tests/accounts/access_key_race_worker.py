"""Child process for the AccessKey limit race test.

Usage: python access_key_race_worker.py DATABASE_URL READY_FILE GO_FILE ACCOUNT_ID...

Connects, creates READY_FILE, and waits until GO_FILE exists, so both
processes start together after their imports and connections. Then it tries
to create ``ACCESS_KEY_LIMIT`` AccessKeys for each account, one transaction
per attempt. Prints one JSON object: {"created": N, "refused": M}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from phonestatus.accounts import service
from phonestatus.accounts.crypto import SecretCipher
from phonestatus.accounts.errors import AccessKeyLimitReached
from phonestatus.clock import SystemClock
from phonestatus.storage import create_engine, create_session_factory

SECRET_KEY = b"race-test-secret-key"


def _signal_ready_and_wait(ready_file: Path, go_file: Path) -> None:
    ready_file.touch()
    deadline = time.monotonic() + 60
    while not go_file.exists():
        if time.monotonic() > deadline:
            raise SystemExit("start signal never came")
        time.sleep(0.001)


async def run(url: str, ready_file: Path, go_file: Path, account_ids: list[str]) -> dict[str, int]:
    engine = create_engine(url)
    session_factory = create_session_factory(engine)
    cipher = SecretCipher(SECRET_KEY)
    clock = SystemClock()
    created = refused = 0
    # Open the pool's connection before the start signal, so both processes
    # race on the lock and not on connecting.
    async with engine.connect():
        pass
    await asyncio.to_thread(_signal_ready_and_wait, ready_file, go_file)

    try:
        for account_id in account_ids:
            for _ in range(service.ACCESS_KEY_LIMIT):
                async with session_factory() as session:
                    try:
                        await service.create_access_key(
                            session, account_id, cipher=cipher, clock=clock
                        )
                        await session.commit()
                        created += 1
                    except AccessKeyLimitReached:
                        refused += 1
    finally:
        await engine.dispose()
    return {"created": created, "refused": refused}


if __name__ == "__main__":
    database_url, ready, go, *accounts = sys.argv[1:]
    result = asyncio.run(run(database_url, Path(ready), Path(go), accounts))
    sys.stdout.write(json.dumps(result) + "\n")
