"""Shared CLI helpers: output, errors and the async bridge."""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NoReturn, TypeVar

import typer

from phonestatus import __version__

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
