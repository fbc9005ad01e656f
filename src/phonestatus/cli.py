"""Operator command line: ``phonestatus``.

Commands that create something accept ``--json`` and then print exactly one
JSON object on stdout. Errors go to stderr in plain words with a non-zero exit.
"""

from __future__ import annotations

import typer

from phonestatus.commands import common
from phonestatus.settings import Settings

app = typer.Typer(
    name="phonestatus",
    help="Phone number status service, wire-compatible with Alibaba Cloud Dytnsapi.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(common.version_text())
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version_callback,
        is_eager=True,
        help="Show the version and exit.",
    ),
) -> None:
    """Phone number status service."""


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, help="TCP port to listen on."),
    workers: int = typer.Option(1, min=1, help="Number of worker processes."),
) -> None:
    """Start the HTTP service (applies pending database migrations first)."""
    import uvicorn

    from phonestatus.logs import uvicorn_log_config
    from phonestatus.settings import LogFormat
    from phonestatus.storage import upgrade_database

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.resolve_secret_key()
    upgrade_database(settings.sqlalchemy_url)
    log_config = (
        uvicorn_log_config()
        if settings.log_format is LogFormat.JSON
        else uvicorn.config.LOGGING_CONFIG
    )
    uvicorn.run(
        "phonestatus.asgi:application",
        host=host,
        port=port,
        workers=workers,
        factory=False,
        log_level="info",
        log_config=log_config,
        access_log=False,
    )


db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all pending migrations."""
    from phonestatus.storage import upgrade_database

    settings = Settings()
    upgrade_database(settings.sqlalchemy_url)
    typer.echo("database is up to date", err=True)


# Sub-command groups live in phonestatus.commands.<area>; register them here.
common.register_all(app)

if __name__ == "__main__":  # pragma: no cover
    app()
