"""Logging setup: structlog with constant event names and data in fields.

Never log a secret or a full phone number; use ``mask_number`` for numbers.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sys
import threading
import time
from typing import Any, TextIO

import structlog

# How often a background writer writes the lines queued since its last write.
WRITE_INTERVAL_SECONDS = 0.05


class BackgroundLineWriter:
    """A log line writer with a thread of its own, so callers do not wait for the output.

    A server logs one line per request. Written in the request's thread, each
    line is a system call, during which the thread gives up the interpreter
    lock and then waits to get it back. Here callers only queue the line. The
    writer thread wakes every ``WRITE_INTERVAL_SECONDS`` and writes what has
    queued up in one call. ``close`` (registered with atexit) writes what is
    left, so only a killed process loses the lines of its last interval.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def write_line(self, line: str) -> None:
        self._queue.put(line)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)

    def _run(self) -> None:
        # Waking per line would compete with the callers for the lock once per
        # line; waking on a timer writes many lines per wake-up.
        closing = False
        while not closing:
            time.sleep(WRITE_INTERVAL_SECONDS)
            lines: list[str] = []
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    closing = True
                    break
                lines.append(item)
            if lines:
                try:
                    self._stream.write("\n".join(lines) + "\n")
                    self._stream.flush()
                except (OSError, ValueError):
                    pass  # A closed or broken stream leaves nowhere to report it.


class BackgroundLogger:
    """A structlog logger that hands rendered lines to a ``BackgroundLineWriter``."""

    def __init__(self, writer: BackgroundLineWriter) -> None:
        self._writer = writer

    def msg(self, message: str) -> None:
        self._writer.write_line(message)

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg


class BackgroundLoggerFactory:
    def __init__(self, stream: TextIO) -> None:
        self._logger = BackgroundLogger(BackgroundLineWriter(stream))

    def __call__(self, *args: Any) -> BackgroundLogger:
        return self._logger


def configure_logging(
    level: int = logging.INFO,
    *,
    json: bool = False,
    cache_loggers: bool = False,
    background: bool = False,
) -> None:
    """Configure structlog for the process; lines go to stderr.

    ``cache_loggers`` makes each module logger resolve its configuration once,
    which long-running servers want. It stays off by default, so
    ``structlog.testing.capture_logs`` also captures loggers used before it.
    ``background`` writes the lines from a ``BackgroundLineWriter`` thread.
    """
    factory: Any = (
        BackgroundLoggerFactory(sys.stderr)
        if background
        else structlog.PrintLoggerFactory(file=sys.stderr)
    )
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        cache_logger_on_first_use=cache_loggers,
    )


def uvicorn_log_config() -> dict[str, Any]:
    """Return a ``logging.config.dictConfig`` that writes uvicorn's own lines as JSON.

    With ``PHONESTATUS_LOG_FORMAT=json`` every line on stderr must be one JSON
    object, uvicorn's start and stop messages included, or a log collector
    cannot parse the stream.
    """
    formatter = {
        "()": structlog.stdlib.ProcessorFormatter,
        "processors": [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.JSONRenderer(),
        ],
        "foreign_pre_chain": [
            structlog.stdlib.add_logger_name,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
    }
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    quiet = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": formatter},
        "handlers": {"default": handler},
        "loggers": {"uvicorn": quiet, "uvicorn.error": quiet, "uvicorn.access": quiet},
    }


def mask_number(digits: str) -> str:
    """Return a number with its middle four digits hidden (138****8000)."""
    if len(digits) == 11 and digits.isdigit():
        return f"{digits[:3]}****{digits[7:]}"
    if len(digits) > 8:
        return f"{digits[:4]}…{digits[-4:]}"
    return "***"
