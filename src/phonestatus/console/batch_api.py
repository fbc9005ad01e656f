"""Console JSON API of the batch query assistant: upload, follow, manage and download jobs.

Every route needs a console session (see ``console.auth``). A customer user
sees only their own account's jobs: another account's job id returns 404,
the same as a job that does not exist, so ids cannot be probed. Operators
see every job and name the account when they upload.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile, status
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask

from phonestatus.accounts.crypto import SecretCipher
from phonestatus.batch import service
from phonestatus.batch.errors import (
    BatchAccountError,
    BatchError,
    BatchFileError,
    FileTooLarge,
    InvalidWebhook,
    JobNotFound,
    JobStateError,
)
from phonestatus.batch.export import export_job
from phonestatus.batch.readers import ReaderLimits
from phonestatus.batch.writers import OutputFormat
from phonestatus.billing import PriceList
from phonestatus.console.auth import ConsoleSession, CurrentSession
from phonestatus.detection import Scene
from phonestatus.runtime import Runtime
from phonestatus.storage import begin_immediate

router = APIRouter(prefix="/console/api/batch", tags=["batch"])
UPLOAD_COPY_BYTES = 1024 * 1024

# One table from batch errors to HTTP status and error code.
ERROR_STATUS: tuple[tuple[type[BatchError], int, str], ...] = (
    (JobNotFound, status.HTTP_404_NOT_FOUND, "JobNotFound"),
    (JobStateError, status.HTTP_409_CONFLICT, "InvalidJobState"),
    (BatchAccountError, status.HTTP_403_FORBIDDEN, "AccountNotAllowed"),
    (FileTooLarge, status.HTTP_413_CONTENT_TOO_LARGE, "FileTooLarge"),
    (BatchFileError, status.HTTP_400_BAD_REQUEST, "InvalidFile"),
    (InvalidWebhook, status.HTTP_400_BAD_REQUEST, "InvalidWebhook"),
)


def _http_error(exc: BatchError) -> HTTPException:
    for error_type, status_code, code in ERROR_STATUS:
        if isinstance(exc, error_type):
            return HTTPException(status_code, detail={"Code": code, "Message": str(exc)})
    return HTTPException(
        status.HTTP_400_BAD_REQUEST, detail={"Code": "BatchError", "Message": str(exc)}
    )


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _scope(session: ConsoleSession) -> str | None:
    """Return the account whose jobs the user may see, or None for operators (all jobs)."""
    if session.is_operator:
        return None
    if session.account_id is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail={"Code": "NoAccount"})
    return session.account_id


@router.post("/jobs")
async def upload(
    request: Request,
    console: CurrentSession,
    file: Annotated[UploadFile, File(description="TXT, CSV or XLSX list of numbers")],
    scene: Annotated[str, Form()] = Scene.REAL.value,
    column: Annotated[str | None, Form()] = None,
    dry_run: Annotated[bool, Form()] = False,
    webhook_url: Annotated[str | None, Form()] = None,
    webhook_secret: Annotated[str | None, Form()] = None,
    account_id: Annotated[str | None, Form(description="operators only")] = None,
) -> JSONResponse:
    """Upload a file: 201 with the queued job and its estimate, or 200 with the estimate only."""
    runtime = _runtime(request)
    settings = runtime.settings
    scope = _scope(console)
    owner = scope if scope is not None else account_id
    if owner is None:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail={"Code": "MissingAccountId", "Message": "operators must give account_id"},
        )
    try:
        chosen_scene = Scene(scene)
    except ValueError:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail={"Code": "InvalidScene", "Message": f"unknown scene {scene!r}"},
        ) from None

    filename = Path(file.filename or "upload.csv").name
    upload_dir = settings.data_dir / "batch" / "uploads"
    upload_dir.mkdir(parents=True, exist_ok=True)
    path = upload_dir / f"{secrets.token_hex(8)}{Path(filename).suffix.lower()}"
    try:
        await asyncio.to_thread(_copy_upload, file, path, settings.batch_max_file_bytes)
        request_data = service.JobRequest(
            account_id=owner,
            path=path,
            filename=filename,
            scene=chosen_scene,
            column=column or None,
            webhook_url=webhook_url or None,
            webhook_secret=webhook_secret or None,
        )
        async with runtime.session_factory() as session:
            await begin_immediate(session)
            job, estimate = await service.create_job(
                session,
                request_data,
                limits=ReaderLimits.from_settings(settings),
                chunk_size=settings.batch_chunk_size,
                prices=PriceList.from_settings(settings),
                clock=runtime.clock,
                cipher=SecretCipher(runtime.secret_key),
                dry_run=dry_run,
            )
            await session.commit()
    except BatchError as exc:
        raise _http_error(exc) from exc
    except ValueError as exc:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, detail={"Code": "InvalidParameter", "Message": str(exc)}
        ) from exc
    finally:
        path.unlink(missing_ok=True)

    if job is None:
        return JSONResponse({"DryRun": True, "Estimate": estimate.as_dict()})
    return JSONResponse(
        {"Job": service.job_as_dict(job), "Estimate": estimate.as_dict()},
        status_code=status.HTTP_201_CREATED,
    )


def _copy_upload(file: UploadFile, path: Path, limit_bytes: int) -> None:
    copied = 0
    with path.open("wb") as target:
        while block := file.file.read(UPLOAD_COPY_BYTES):
            copied += len(block)
            if copied > limit_bytes:
                raise FileTooLarge(copied, limit_bytes)
            target.write(block)


@router.get("/jobs")
async def list_jobs(
    request: Request, console: CurrentSession, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> dict[str, Any]:
    async with _runtime(request).session_factory() as session:
        jobs = await service.list_jobs(session, account_id=_scope(console), limit=limit)
    return {"Jobs": [service.job_as_dict(job) for job in jobs]}


@router.get("/jobs/{job_id}")
async def show_job(request: Request, console: CurrentSession, job_id: str) -> dict[str, Any]:
    async with _runtime(request).session_factory() as session:
        try:
            job = await service.get_job(session, job_id, account_id=_scope(console))
        except BatchError as exc:
            raise _http_error(exc) from exc
        counts = await service.job_counts(session, job_id)
    return service.job_as_dict(job, counts)


@router.post("/jobs/{job_id}/{action}")
async def change_job(
    request: Request, console: CurrentSession, job_id: str, action: str
) -> dict[str, Any]:
    operations = {
        "cancel": service.cancel_job,
        "pause": service.pause_job,
        "resume": service.resume_job,
    }
    operation = operations.get(action)
    if operation is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail={"Code": "UnknownAction", "Message": f"expected one of {sorted(operations)}"},
        )
    runtime = _runtime(request)
    async with runtime.session_factory() as session:
        try:
            job = await operation(session, job_id, clock=runtime.clock, account_id=_scope(console))
        except BatchError as exc:
            raise _http_error(exc) from exc
        await session.commit()
    return service.job_as_dict(job)


@router.get("/jobs/{job_id}/download")
async def download(
    request: Request,
    console: CurrentSession,
    job_id: str,
    output_format: Annotated[OutputFormat, Query(alias="format")] = OutputFormat.XLSX,
    sheet_per_status: bool = False,
) -> FileResponse:
    """Download the results; rows not answered yet read NOT_QUERIED."""
    runtime = _runtime(request)
    async with runtime.session_factory() as session:
        try:
            job = await service.get_job(session, job_id, account_id=_scope(console))
        except BatchError as exc:
            raise _http_error(exc) from exc

    directory = Path(tempfile.mkdtemp(prefix="batch-download-", dir=_download_root(runtime)))
    path = directory / f"{job.id}.{output_format.value}"
    try:
        await export_job(
            runtime.session_factory,
            job,
            path,
            output_format,
            sheet_per_status=sheet_per_status,
            database_url=runtime.settings.sqlalchemy_url,
        )
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    media_type = (
        "text/csv; charset=utf-8"
        if output_format is OutputFormat.CSV
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return FileResponse(
        path,
        media_type=media_type,
        filename=f"{job.id}-results.{output_format.value}",
        background=BackgroundTask(shutil.rmtree, directory, ignore_errors=True),
    )


def _download_root(runtime: Runtime) -> Path:
    root = runtime.settings.data_dir / "batch" / "downloads"
    with contextlib.suppress(FileExistsError):
        root.mkdir(parents=True)
    return root
