"""Logging setup: structlog with constant event names and data in fields.

Never log a secret or a full phone number; use ``mask_number`` for numbers.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure_logging(
    level: int = logging.INFO, *, json: bool = False, cache_loggers: bool = False
) -> None:
    """Configure structlog for the process.

    ``cache_loggers`` makes each module logger resolve its configuration once,
    which long-running servers want. It stays off by default, so
    ``structlog.testing.capture_logs`` also captures loggers used before it.
    """
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=cache_loggers,
    )


def mask_number(digits: str) -> str:
    """Return a number with its middle four digits hidden (138****8000)."""
    if len(digits) == 11 and digits.isdigit():
        return f"{digits[:3]}****{digits[7:]}"
    if len(digits) > 8:
        return f"{digits[:4]}…{digits[-4:]}"
    return "***"
