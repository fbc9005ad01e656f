"""Batch commands: run a file, follow and manage jobs, download results, run a worker.

``batch run`` stores the job and then works on it in this process with a
progress bar. Stopping it (Ctrl-C) leaves the job queued: ``batch work`` or a
running ``phonestatus serve`` finishes it, without billing any row twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any, TextIO, cast

import structlog
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from phonestatus.accounts.crypto import SecretCipher
from phonestatus.batch import service
from phonestatus.batch.errors import BatchError
from phonestatus.batch.export import export_job
from phonestatus.batch.models import BatchJob
from phonestatus.batch.readers import ReaderLimits
from phonestatus.batch.results import status_label_zh
from phonestatus.batch.wiring import WorkerResources
from phonestatus.batch.writers import OutputFormat
from phonestatus.billing import PriceList
from phonestatus.commands.common import fail, print_json, run_async
from phonestatus.detection import Scene
from phonestatus.logs import configure_logging
from phonestatus.runtime import Runtime
from phonestatus.settings import Settings
from phonestatus.storage import begin_immediate

batch_app = typer.Typer(help="Batch query assistant (批量查询).", no_args_is_help=True)
JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object on stdout.")
SCENE_CHOICES = ", ".join(scene.value for scene in service.SCENE_ACTIONS)
PROGRESS_REFRESH_SECONDS = 0.5
# When stderr is not a terminal (a log file, a pipe), the bar is not drawn; a
# line of progress is printed this often instead.
PROGRESS_LINE_SECONDS = 30.0
# Terminal width below which `batch list` prints two lines per job, not a table.
LIST_TABLE_MIN_WIDTH = 120
# Commands print their own output; only warnings and errors are logged (on stderr).
CLI_LOG_LEVEL = logging.WARNING

stderr = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.add_typer(batch_app, name="batch")


class _CurrentStderr:
    """A stream that writes to whatever ``sys.stderr`` is at the time of each write."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _runtime() -> Runtime:
    # Logs go to stderr so `--json` output stays one object on stdout. Loggers are
    # cached on first use, so they get a stream that follows sys.stderr instead of
    # the object sys.stderr is now (a test runner may close and replace it).
    configure_logging(CLI_LOG_LEVEL)
    stream = cast(TextIO, _CurrentStderr())
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=stream))
    try:
        return Runtime.build(Settings())
    except ValueError as exc:
        fail(str(exc))


def _output_format(output: Path) -> OutputFormat:
    try:
        return OutputFormat.from_filename(output.name)
    except ValueError as exc:
        fail(str(exc))


@batch_app.command("run")
def run(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="TXT, CSV or XLSX file."),
    account: str = typer.Option(..., "--account", help="Account id the job belongs to."),
    output: Path | None = typer.Option(
        None, "--output", help="Write results to OUT.xlsx or OUT.csv when the job completes."
    ),
    scene: str = typer.Option("real", "--scene", help=f"Query scene: {SCENE_CHOICES}."),
    column: str | None = typer.Option(
        None, "--column", help="Number column by header text or 1-based position."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Read the file and print the cost estimate only."
    ),
    sheet_per_status: bool = typer.Option(
        False, "--sheet-per-status", help="XLSX output: add one sheet per status."
    ),
    webhook_url: str | None = typer.Option(
        None, "--webhook-url", help="POST a signed notice here when the job finishes."
    ),
    webhook_secret: str | None = typer.Option(
        None,
        "--webhook-secret",
        envvar="PHONESTATUS_BATCH_WEBHOOK_SECRET",
        help="HMAC-SHA256 key for the webhook signature (16+ characters).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a job from FILE, query every number and optionally write the results."""
    try:
        chosen_scene = Scene(scene)
    except ValueError:
        fail(f"unknown scene {scene!r}; expected one of {SCENE_CHOICES}")
    output_format = _output_format(output) if output is not None else None
    request = service.JobRequest(
        account_id=account,
        path=file,
        filename=file.name,
        scene=chosen_scene,
        column=column,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
    )
    run_async(lambda: _run(request, dry_run, output, output_format, sheet_per_status, as_json))


async def _run(
    request: service.JobRequest,
    dry_run: bool,
    output: Path | None,
    output_format: OutputFormat | None,
    sheet_per_status: bool,
    as_json: bool,
) -> None:
    runtime = _runtime()
    settings = runtime.settings
    try:
        async with runtime.session_factory() as session:
            # The job is read and then written in one transaction, so SQLite's write
            # lock is taken first.
            await begin_immediate(session)
            job, estimate = await service.create_job(
                session,
                request,
                limits=ReaderLimits.from_settings(settings),
                chunk_size=settings.batch_chunk_size,
                prices=PriceList.from_settings(settings),
                clock=runtime.clock,
                cipher=SecretCipher(runtime.secret_key),
                dry_run=dry_run,
            )
            await session.commit()
    except (BatchError, ValueError) as exc:
        await runtime.close()
        fail(str(exc))

    if job is None:
        await runtime.close()
        if as_json:
            print_json({"DryRun": True, "Estimate": estimate.as_dict()})
        else:
            _print_estimate(estimate)
        return

    if not as_json:
        _print_estimate(estimate)
        stderr.print(f"job {job.id} queued")
    try:
        job = await _work_with_progress(runtime, job, show=not as_json)
        if output is not None and output_format is not None:
            summary = await export_job(
                runtime.session_factory,
                job,
                output,
                output_format,
                sheet_per_status=sheet_per_status,
                database_url=runtime.settings.sqlalchemy_url,
            )
            if not as_json:
                stderr.print(f"wrote {summary.rows} rows to {output}")
        async with runtime.session_factory() as session:
            counts = await service.job_counts(session, job.id)
    finally:
        await runtime.close()

    if as_json:
        print_json({"Job": service.job_as_dict(job, counts), "Estimate": estimate.as_dict()})
    else:
        _print_job(job, counts)


# On SQLite one batch worker works at a time (batch.workerlock).
ANOTHER_WORKER_BUSY = (
    "另一个批量工作进程（例如 phonestatus serve）正在处理此数据库的任务 / "
    "another batch worker on this database (such as `phonestatus serve`) is busy"
)


async def _work_with_progress(runtime: Runtime, job: BatchJob, *, show: bool) -> BatchJob:
    """Run a worker on the job until no chunk is left, showing progress on stderr."""
    resources = WorkerResources(runtime, log_level=CLI_LOG_LEVEL)
    if show and resources.lock is not None and not resources.lock.acquire():
        stderr.print(f"{ANOTHER_WORKER_BUSY}; waiting for it to process job {job.id}")
    # Waits while another worker (such as a running `serve` on SQLite) works on the job.
    work = asyncio.create_task(resources.worker.run_job(job.id))
    loop = asyncio.get_running_loop()
    # Ctrl-C stops the worker; the chunk in flight rolls back unless its commit has
    # already started in the SQLite writer process or thread, which then finishes it.
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, work.cancel)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=stderr,
        disable=not show,
    )
    print_lines = show and not stderr.is_terminal
    next_line = loop.time() + PROGRESS_LINE_SECONDS
    try:
        with progress:
            task = progress.add_task("查询 querying", total=job.distinct_numbers)
            while not work.done():
                await asyncio.wait({work}, timeout=PROGRESS_REFRESH_SECONDS)
                job = await _reload(runtime, job.id)
                progress.update(task, completed=job.queried_numbers)
                if print_lines and loop.time() >= next_line:
                    next_line = loop.time() + PROGRESS_LINE_SECONDS
                    stderr.print(
                        f"job {job.id}: queried {job.queried_numbers} of "
                        f"{job.distinct_numbers} numbers ({job.state})"
                    )
        try:
            await work
        except asyncio.CancelledError:
            fail(
                f"stopped; job {job.id} keeps its progress; finish it with `phonestatus batch work`"
            )
    finally:
        with contextlib.suppress(NotImplementedError):
            loop.remove_signal_handler(signal.SIGINT)
        await resources.aclose()
    return await _reload(runtime, job.id)


async def _reload(runtime: Runtime, job_id: str) -> BatchJob:
    async with runtime.session_factory() as session:
        return await service.get_job(session, job_id)


def _print_estimate(estimate: service.Estimate) -> None:
    stderr.print(
        f"rows {estimate.total_rows}: {estimate.distinct_numbers} distinct numbers, "
        f"{estimate.duplicate_rows} duplicates, {estimate.invalid_rows} invalid; "
        f"estimate {service.format_li(estimate.amount_li)} CNY "
        f"({estimate.quota_numbers} from package quota, "
        f"{estimate.charged_numbers} × {service.format_li(estimate.unit_price_li)} CNY)"
    )


def _print_job(job: BatchJob, counts: dict[str, dict[str, int]]) -> None:
    # Statuses count distinct numbers, as billing does; the result file's summary
    # counts rows, so a repeated number adds to its status there once per row.
    table = Table(
        title=f"{job.id} ({job.state})",
        caption="按号码计（重复号码只计一次）/ distinct numbers; invalid and duplicate: rows",
    )
    table.add_column("status")
    table.add_column("count", justify="right")
    for status, count in sorted(counts.get("status", {}).items(), key=lambda item: -item[1]):
        table.add_row(f"{status} {status_label_zh(status)}", str(count))
    table.add_row("INVALID rows 无效行", str(job.invalid_rows))
    table.add_row("duplicate rows 重复行", str(job.duplicate_rows))
    table.add_row("billable numbers 计费号码", str(job.billable_numbers))
    Console().print(table)


def _with_session(work: Any) -> Any:
    async def run() -> Any:
        runtime = _runtime()
        try:
            async with runtime.session_factory() as session, session.begin():
                return await work(runtime, session)
        except BatchError as exc:
            fail(str(exc))
        finally:
            await runtime.close()

    return run_async(run)


@batch_app.command("list")
def list_jobs(
    account: str | None = typer.Option(None, "--account", help="Only this account's jobs."),
    limit: int = typer.Option(50, min=1, help="Maximum number of jobs to show, newest first."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List batch jobs, newest first."""

    async def work(runtime: Runtime, session: Any) -> list[BatchJob]:
        return await service.list_jobs(session, account_id=account, limit=limit)

    jobs = _with_session(work)
    if as_json:
        print_json({"Jobs": [service.job_as_dict(job) for job in jobs]})
        return
    console = Console()
    if console.width < LIST_TABLE_MIN_WIDTH:
        # Too narrow for the table's seven columns: two lines per job instead.
        for job in jobs:
            console.print(f"[bold]{job.id}[/bold]  {job.state}", highlight=False)
            console.print(
                f"  {job.account_id} · rows {job.total_rows} · "
                f"queried {job.queried_numbers}/{job.distinct_numbers} · "
                f"{_created(job)} · {escape(job.source_name)}",
                highlight=False,
            )
        return
    table = Table()
    # Ids are copied into other commands, so they are never cut; the file name may wrap.
    for title in ("job", "account"):
        table.add_column(title, no_wrap=True, min_width=len("job_") + 16)
    for title in ("state", "rows", "queried", "file", "created"):
        table.add_column(title, overflow="fold")
    for job in jobs:
        table.add_row(
            job.id,
            job.account_id,
            job.state,
            str(job.total_rows),
            f"{job.queried_numbers}/{job.distinct_numbers}",
            escape(job.source_name),
            _created(job),
        )
    console.print(table)


def _created(job: BatchJob) -> str:
    return job.created_at.strftime("%Y-%m-%d %H:%M UTC")


@batch_app.command("show")
def show(job_id: str = typer.Argument(...), as_json: bool = JSON_OPTION) -> None:
    """Show a job's state, progress and counts by status and carrier."""

    async def work(runtime: Runtime, session: Any) -> tuple[BatchJob, dict[str, dict[str, int]]]:
        job = await service.get_job(session, job_id)
        return job, await service.job_counts(session, job_id)

    job, counts = _with_session(work)
    if as_json:
        print_json(service.job_as_dict(job, counts))
    else:
        _print_job(job, counts)


def _transition(action: str, job_id: str, as_json: bool) -> None:
    operations = {
        "cancel": service.cancel_job,
        "pause": service.pause_job,
        "resume": service.resume_job,
    }

    async def work(runtime: Runtime, session: Any) -> BatchJob:
        return await operations[action](session, job_id, clock=runtime.clock)

    job = _with_session(work)
    if as_json:
        print_json(service.job_as_dict(job))
    else:
        typer.echo(f"job {job.id} is {job.state}", err=True)


@batch_app.command("cancel")
def cancel(job_id: str = typer.Argument(...), as_json: bool = JSON_OPTION) -> None:
    """Cancel a job; rows already answered keep their results."""
    _transition("cancel", job_id, as_json)


@batch_app.command("pause")
def pause(job_id: str = typer.Argument(...), as_json: bool = JSON_OPTION) -> None:
    """Pause a job; workers leave its remaining chunks alone until it is resumed."""
    _transition("pause", job_id, as_json)


@batch_app.command("resume")
def resume(job_id: str = typer.Argument(...), as_json: bool = JSON_OPTION) -> None:
    """Resume a paused job."""
    _transition("resume", job_id, as_json)


@batch_app.command("download")
def download(
    job_id: str = typer.Argument(...),
    output: Path = typer.Option(..., "--output", help="OUT.xlsx or OUT.csv"),
    sheet_per_status: bool = typer.Option(
        False, "--sheet-per-status", help="XLSX output: add one sheet per status."
    ),
) -> None:
    """Write a job's results; rows not answered yet read NOT_QUERIED."""
    output_format = _output_format(output)

    async def run() -> None:
        runtime = _runtime()
        try:
            async with runtime.session_factory() as session:
                job = await service.get_job(session, job_id)
            summary = await export_job(
                runtime.session_factory,
                job,
                output,
                output_format,
                sheet_per_status=sheet_per_status,
                database_url=runtime.settings.sqlalchemy_url,
            )
        except BatchError as exc:
            fail(str(exc))
        finally:
            await runtime.close()
        typer.echo(f"wrote {summary.rows} rows to {output}", err=True)

    run_async(run)


@batch_app.command("work")
def work(
    until_idle: bool = typer.Option(
        False, "--until-idle", help="Exit when no job has work left instead of waiting for more."
    ),
) -> None:
    """Run a batch worker in this process (several may share PostgreSQL)."""

    async def run() -> None:
        runtime = _runtime()
        resources = WorkerResources(runtime, log_level=CLI_LOG_LEVEL)
        try:
            if until_idle:
                if resources.lock is not None and not resources.lock.acquire():
                    stderr.print(f"{ANOTHER_WORKER_BUSY}; it processes the pending jobs")
                    return
                await resources.worker.run_until_idle()
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await resources.worker.run_forever(stop)
        finally:
            await resources.aclose()
            await runtime.close()

    run_async(run)


__all__ = ["register"]
