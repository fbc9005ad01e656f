"""Shared CLI helpers: output, errors and the async bridge."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from phonestatus import __version__
from phonestatus.runtime import Runtime
from phonestatus.settings import Settings
from phonestatus.storage import begin_immediate

T = TypeVar("T")

# Modules under phonestatus.commands that expose `register(app)`.
COMMAND_MODULES = (
    "accounts",
    "query",
    "billing",
    "batch",
)


def register_all(app: typer.Typer) -> None:
    for name in COMMAND_MODULES:
        module_name = f"phonestatus.commands.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(app)


def version_text() -> str:
    try:
        from phonestatus.numbers import SEGMENT_DATA_VERSION
    except ImportError:
        return f"phonestatus {__version__}"
    return f"phonestatus {__version__} (segment data {SEGMENT_DATA_VERSION})"


def fail(message: str, code: int = 1) -> NoReturn:
    """Print an error to stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def print_json(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def run_async(factory: Callable[[], Coroutine[Any, Any, T]] | Awaitable[T]) -> T:
    coroutine = factory() if callable(factory) else factory
    return asyncio.run(coroutine)  # type: ignore[arg-type]


def display_database_url(settings: Settings) -> str:
    """Return the database URL with any password hidden, for error messages."""
    return make_url(settings.sqlalchemy_url).render_as_string(hide_password=True)


def build_runtime() -> Runtime:
    """Read settings and open the database, or exit with a plain error."""
    try:
        settings = Settings()
    except ValueError as exc:
        fail(f"invalid PHONESTATUS_* setting: {exc}")
    try:
        return Runtime.build(settings)
    except ValueError as exc:
        fail(str(exc))
    except (DBAPIError, OSError) as exc:
        fail(f"cannot open the database at {display_database_url(settings)}: {exc}")


def run_in_session(
    work: Callable[[Runtime, AsyncSession], Awaitable[T]],
    *,
    immediate: bool,
    handled: tuple[type[Exception], ...],
) -> T:
    """Run ``work`` in one committed session; exit cleanly on a ``handled`` error.

    ``immediate`` takes the SQLite write lock up front, for commands that read
    and then write.
    """
    runtime = build_runtime()

    async def main() -> T:
        try:
            async with runtime.session_factory() as session:
                if immediate:
                    await begin_immediate(session)
                result = await work(runtime, session)
                await session.commit()
                return result
        finally:
            await runtime.close()

    try:
        return run_async(main)
    except handled as exc:
        fail(str(exc))
    except DBAPIError as exc:
        # Such as a unique id taken by a concurrent command; the transaction was rolled back.
        fail(f"the database rejected the change, nothing was saved: {exc.orig}")
