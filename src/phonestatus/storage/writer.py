"""A writer process: metering transactions that run on another core.

The gateway's query recorder, and batch workers on SQLite, commit groups of
rows. In the server that work shares the interpreter lock with the event
loop: on SQLite a thread and the loop take turns on one core, and through
asyncpg every statement waits for a turn of the busy loop. ``WriterProcess``
sends each transaction to a separate process instead.

A request is any picklable object with ``apply(session)``. The process runs
it in one transaction (``BEGIN IMMEDIATE`` on SQLite), commits, and replies
with what ``apply`` returned. A failed transaction is rolled back and
reported, and a process that dies takes its open transaction with it. Either
way the caller gets ``WriterProcessError`` and nothing of that request is
written.

The process is started with ``subprocess`` and uses two pipes of its own for
length-prefixed pickles of requests and replies. So it imports only what its
requests need, not whatever started it. The database URL goes through the
pipe, never the command line, which other users of the machine can read. The
process starts on the first request, and again after it died or was stopped
for idleness.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import struct
import subprocess
import sys
from dataclasses import dataclass
from typing import IO, Any, Protocol

import structlog
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Session

from phonestatus.settings import LogFormat, Settings
from phonestatus.storage.db import SQLITE_BEGIN_OPTION

log = structlog.get_logger(__name__)

# Each pickle on the pipes is preceded by its length.
_FRAME = struct.Struct("!Q")
# How long closing waits for the process to finish its last transaction.
STOP_SECONDS = 30.0
# An idle process exits after this long without a request, so an idle server
# does not keep its memory (about 120 MB with a full page cache, measured). The
# next request starts the process again in under a second.
IDLE_SECONDS = 60.0


class WriteRequest(Protocol):
    """A transaction for the writer process, whose class must be importable there."""

    def apply(self, session: Session) -> Any: ...


@dataclass(frozen=True, slots=True)
class WriterConfig:
    """Start-up settings of the process, sent through its pipe, never on the command line."""

    database_url: str
    log_level: int
    json_logs: bool


def writer_config(settings: Settings, *, log_level: int = logging.INFO) -> WriterConfig:
    """Return the writer's settings for ``settings``' database, logging as ``serve`` does."""
    return WriterConfig(
        database_url=settings.sqlalchemy_url,
        log_level=log_level,
        json_logs=settings.log_format is LogFormat.JSON,
    )


class WriterProcessError(RuntimeError):
    """Error raised when the writer process failed a request or exited.

    Nothing of that request was written.
    """


class WriterProcess:
    """Run ``WriteRequest``s one at a time in a writer process.

    The pipes are read and written on the event loop, not in a thread. A
    thread would need the interpreter lock back from the busy loop twice per
    request, and a loop serving requests gives it up only once per switch
    interval.
    """

    def __init__(self, config: WriterConfig, *, idle_seconds: float = IDLE_SECONDS) -> None:
        self._config = config
        self._idle_seconds = idle_seconds
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._read_transport: asyncio.BaseTransport | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()
        self._last_used = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_stops: set[asyncio.Task[None]] = set()

    @property
    def pid(self) -> int | None:
        """Process id of the writer while it runs, else None."""
        return self._process.pid if self._process is not None else None

    async def call(self, request: WriteRequest) -> Any:
        """Run ``request`` in its own transaction and return what its ``apply`` returned."""
        payload = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        async with self._lock:
            loop = asyncio.get_running_loop()
            self._last_used = loop.time()
            if self._idle_timer is None:
                self._idle_timer = loop.call_later(self._idle_seconds, self._check_idle)
            try:
                reader = await self._send(_FRAME.pack(len(payload)) + payload)
                (size,) = _FRAME.unpack(await reader.readexactly(_FRAME.size))
                ok, value = pickle.loads(await reader.readexactly(size))
            except (asyncio.IncompleteReadError, ConnectionError, OSError) as exc:
                code = await self._stop()
                raise WriterProcessError(f"the writer process exited (code {code})") from exc
            except BaseException:
                # Cancelled between request and reply. The unread reply would reach the
                # next request, so the process is stopped after its current transaction.
                await asyncio.shield(self._stop())
                raise
            finally:
                self._last_used = loop.time()
        if not ok:
            raise WriterProcessError(f"the writer process failed the transaction: {value}")
        return value

    async def _send(self, frame: bytes) -> asyncio.StreamReader:
        """Send one request frame and return the reply reader.

        A process that died since the last request shows as a closed pipe. A
        frame that a closed pipe rejected was never read, so nothing of the
        request ran, and the frame is sent once more to a new process.
        """
        for attempt in range(2):
            reader, writer = await self._start_if_needed()
            try:
                writer.write(frame)
                await writer.drain()
            except (ConnectionError, OSError):
                if attempt:
                    raise
                await self._stop()
                continue
            return reader
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        async with self._lock:
            await self._stop()

    def _idle_for(self) -> float:
        """Return the seconds left before the process counts as idle (0 or less: idle now)."""
        if self._lock.locked():
            # A request is in progress.
            return self._idle_seconds
        return self._last_used + self._idle_seconds - asyncio.get_running_loop().time()

    def _check_idle(self) -> None:
        self._idle_timer = None
        loop = asyncio.get_running_loop()
        left = self._idle_for()
        if left > 0:
            self._idle_timer = loop.call_later(left, self._check_idle)
            return
        task = loop.create_task(self._stop_idle())
        self._idle_stops.add(task)
        task.add_done_callback(self._idle_stops.discard)

    async def _stop_idle(self) -> None:
        async with self._lock:
            # A request since the timer fired has set a new timer, so the process is busy.
            if self._idle_timer is None and self._process is not None:
                await self._stop()
                log.info("writer_process_stopped_idle")

    async def _start_if_needed(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Return the pipe streams of the running process, starting a process if none runs."""
        if (
            self._process is not None
            and self._process.returncode is None
            and self._reader is not None
            and self._writer is not None
            and not self._writer.transport.is_closing()
        ):
            return self._reader, self._writer

        await self._stop()
        reply_read, request_write = await self._spawn()
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        self._read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(reply_read, "rb", buffering=0)
        )
        transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()),
            os.fdopen(request_write, "wb", buffering=0),
        )
        writer = asyncio.StreamWriter(transport, protocol, None, loop)
        self._reader, self._writer = reader, writer

        config = pickle.dumps(self._config, protocol=pickle.HIGHEST_PROTOCOL)
        writer.write(_FRAME.pack(len(config)) + config)
        await writer.drain()
        return reader, writer

    async def _spawn(self) -> tuple[int, int]:
        """Start the process and return this side's pipe ends (reply read, request write)."""
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                "import sys; from phonestatus.storage.writer import serve_writer; "
                "serve_writer(int(sys.argv[1]), int(sys.argv[2]))",
                str(request_read),
                str(reply_write),
                pass_fds=(request_read, reply_write),
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            os.close(request_write)
            os.close(reply_read)
            raise
        finally:
            # The process has its own copies of its ends.
            os.close(request_read)
            os.close(reply_write)
        log.info("writer_process_started", pid=self._process.pid)
        return reply_read, request_write

    async def _stop(self) -> int | None:
        """Close the pipes, wait for the process and return its exit code."""
        if self._writer is not None:
            # Closing the request pipe ends the process's loop after its current transaction.
            self._writer.close()
        if self._read_transport is not None:
            self._read_transport.close()
        self._reader = self._writer = self._read_transport = None
        process, self._process = self._process, None
        if process is None:
            return None
        try:
            return await asyncio.wait_for(process.wait(), STOP_SECONDS)
        except TimeoutError:
            process.kill()
            return await process.wait()


def run_request(session: Session, request: WriteRequest) -> Any:
    """Run ``request`` in ``session``'s new ``BEGIN IMMEDIATE`` transaction and commit it."""
    # BEGIN IMMEDIATE takes SQLite's write lock before the first statement.
    session.connection(execution_options={SQLITE_BEGIN_OPTION: "IMMEDIATE"})
    result = request.apply(session)
    session.commit()
    return result


def serve_writer(request_fd: int, reply_fd: int) -> None:
    """Run each request read from ``request_fd`` until the pipe closes: the writer's main loop."""
    from phonestatus.logs import configure_logging

    requests = os.fdopen(request_fd, "rb")
    replies = os.fdopen(reply_fd, "wb")
    config: WriterConfig = _read_frame(requests)
    configure_logging(config.log_level, json=config.json_logs)
    database: _SqliteDatabase | _PostgresqlDatabase = (
        _SqliteDatabase(config.database_url)
        if config.database_url.startswith("sqlite")
        else _PostgresqlDatabase(config.database_url)
    )
    try:
        while True:
            try:
                request: WriteRequest = _read_frame(requests)
            except EOFError:
                # The caller closed the pipe or exited.
                break
            try:
                reply: tuple[bool, object] = (True, database.run(request))
            except Exception as exc:
                # The transaction was rolled back, and the caller gets the error.
                log.exception("writer_request_failed", request=type(request).__name__)
                reply = (False, f"{type(exc).__name__}: {exc}")
            payload = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
            try:
                replies.write(_FRAME.pack(len(payload)) + payload)
                replies.flush()
            except BrokenPipeError:
                break
    finally:
        database.close()


class _SqliteDatabase:
    """Database side for SQLite: one blocking sqlite3 connection, ``BEGIN IMMEDIATE`` each."""

    def __init__(self, url: str) -> None:
        from phonestatus.storage.db import create_sync_engine

        engine = create_sync_engine(url)
        if engine is None:
            raise SystemExit(f"invalid SQLite URL scheme {url.split(':', 1)[0]!r}")
        self._engine = engine
        # One connection for the process's life, because a pool checkout per request
        # costs more than the statements of many small groups.
        self._connection = engine.connect()

    def run(self, request: WriteRequest) -> Any:
        with Session(bind=self._connection) as session:
            return run_request(session, request)

    def close(self) -> None:
        self._connection.close()
        self._engine.dispose()


class _PostgresqlDatabase:
    """Database side for PostgreSQL: one asyncpg connection on this process's own event loop.

    In the server, each statement of a group waited for a turn of the busy
    event loop. Here the loop has nothing else to do.
    """

    def __init__(self, url: str) -> None:
        from phonestatus.storage.db import create_engine

        self._runner = asyncio.Runner()
        self._engine = create_engine(url, pool_size=1, max_overflow=0)
        self._connection: AsyncConnection | None = None

    def run(self, request: WriteRequest) -> Any:
        return self._runner.run(self._run(request))

    async def _run(self, request: WriteRequest) -> Any:
        if self._connection is None:
            self._connection = await self._engine.connect()
        connection = self._connection
        try:
            async with connection.begin():
                return await connection.run_sync(_apply_on, request)
        except BaseException:
            # The connection may be broken; the next request opens a new one.
            self._connection = None
            await connection.close()
            raise

    def close(self) -> None:
        async def dispose() -> None:
            if self._connection is not None:
                await self._connection.close()
            await self._engine.dispose()

        self._runner.run(dispose())
        self._runner.close()


def _apply_on(connection: Connection, request: WriteRequest) -> Any:
    # The session joins the connection's transaction, which the caller commits.
    with Session(bind=connection) as session:
        return request.apply(session)


def _read_frame(stream: IO[bytes]) -> Any:
    """Read one length-prefixed pickle; raise EOFError if the stream ends before it."""
    header = stream.read(_FRAME.size)
    if len(header) < _FRAME.size:
        raise EOFError("request pipe closed")
    (size,) = _FRAME.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        raise EOFError("request pipe closed in the middle of a request")
    return pickle.loads(payload)
