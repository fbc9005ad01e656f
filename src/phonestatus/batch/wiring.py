"""Build a batch worker from a runtime, and run one in the background of ``serve``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from phonestatus.accounts.crypto import SecretCipher
from phonestatus.batch.commits import ProcessCommits
from phonestatus.batch.webhooks import WebhookSender
from phonestatus.batch.worker import BatchWorker, default_worker_id
from phonestatus.batch.workerlock import WorkerLock
from phonestatus.billing import PriceList
from phonestatus.detection import QueryEngine
from phonestatus.ratelimit import AccountRateLimiter, RateLimitStorage
from phonestatus.runtime import Runtime
from phonestatus.storage.db import create_sync_engine
from phonestatus.storage.writer import WriterProcess, writer_config


class WorkerResources:
    """A worker and what it opened (query engine, limiter storage, SQLite engine or
    writer process), closed together."""

    def __init__(self, runtime: Runtime, *, log_level: int = logging.INFO) -> None:
        """``log_level``: the lowest level the SQLite writer process logs, as its starter does."""
        settings = runtime.settings
        prices = PriceList.from_settings(settings)
        worker_id = default_worker_id()
        self.engine = QueryEngine.from_settings(settings, clock=runtime.clock)
        self.limiter_storage = RateLimitStorage.from_url(settings.redis_url)
        self.sync_engine = create_sync_engine(settings.sqlalchemy_url)
        self.commits: ProcessCommits | None = None
        if self.sync_engine is not None and settings.writer_process:
            self.commits = ProcessCommits(
                WriterProcess(writer_config(settings, log_level=log_level)),
                prices=prices,
                worker_id=worker_id,
            )
        self.lock = WorkerLock.for_database(settings.sqlalchemy_url)
        self.worker = BatchWorker(
            session_factory=runtime.session_factory,
            engine=self.engine,
            prices=prices,
            clock=runtime.clock,
            rate_limiter=AccountRateLimiter(storage=self.limiter_storage),
            default_rate_limit=settings.account_rate_limit,
            concurrency=settings.batch_query_concurrency,
            parallel_chunks=settings.batch_parallel_chunks,
            poll_seconds=settings.batch_poll_seconds,
            sync_engine=self.sync_engine,
            commits=self.commits,
            lock=self.lock,
            worker_id=worker_id,
            webhooks=WebhookSender(
                session_factory=runtime.session_factory,
                cipher=SecretCipher(runtime.secret_key),
                clock=runtime.clock,
                timeout_seconds=settings.batch_webhook_timeout_seconds,
            ),
        )

    async def aclose(self) -> None:
        if self.lock is not None:
            self.lock.release()
        if self.commits is not None:
            await self.commits.aclose()
        await self.engine.aclose()
        await self.limiter_storage.aclose()
        if self.sync_engine is not None:
            self.sync_engine.dispose()


def start_batch_worker(runtime: Runtime) -> Callable[[], Awaitable[None]]:
    """Start a background batch worker; return the coroutine function that stops it.

    With ``batch_worker_enabled`` off nothing starts and the stop does nothing.
    """
    if not runtime.settings.batch_worker_enabled:

        async def nothing_to_stop() -> None:
            return None

        return nothing_to_stop

    # On SQLite, `serve --workers N` starts N batch workers, and the worker lock
    # (batch.workerlock) lets one of them work at a time.
    resources = WorkerResources(runtime)
    stop_event = asyncio.Event()
    task = asyncio.create_task(resources.worker.run_forever(stop_event), name="batch-worker")

    async def stop() -> None:
        stop_event.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=10)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await resources.aclose()

    return stop
