from __future__ import annotations

import csv
import io
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from phonestatus.accounts.service import create_user
from phonestatus.app import create_app
from phonestatus.batch.service import delete_account_jobs
from phonestatus.batch.worker import BatchWorker
from phonestatus.console.auth import CSRF_HEADER, SESSION_COOKIE
from phonestatus.runtime import Runtime
from phonestatus.settings import Settings

from .conftest import CLOCK, make_account, submit, write_numbers

PASSWORD = "correct horse battery staple"
CSV_BODY = "姓名,手机号\n张三,13800138000\n李四,13912345678\n王五,13800138000\n坏,12345\n"


@pytest.fixture
async def client(
    db_url: str, settings_factory: Callable[..., Settings]
) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_factory(database_url=db_url)
    runtime = Runtime.build(settings, upgrade=False)
    app = create_app(settings, runtime=runtime)
    # The lifespan (gateway, background workers) is not needed by these routes.
    app.state.runtime = runtime
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client
    await runtime.close()


async def make_user(
    session_factory: async_sessionmaker[AsyncSession], account_id: str | None, name: str
) -> str:
    async with session_factory() as session, session.begin():
        await create_user(
            session,
            account_id,
            username=name,
            password=PASSWORD,
            is_operator=account_id is None,
            clock=CLOCK,
        )
    return name


async def sign_in(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post(
        "/console/api/session", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['Token']}"}


def unique(prefix: str) -> str:

    return f"{prefix}-{secrets.token_hex(4)}"


class TestSession:
    async def test_sign_in_wrong_password(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        account_id = await make_account(session_factory)
        username = await make_user(session_factory, account_id, unique("u"))

        response = await client.post(
            "/console/api/session", json={"username": username, "password": "wrong"}
        )

        assert response.status_code == 401

    async def test_form_sign_in_hides_password(self, client: httpx.AsyncClient) -> None:
        """A form instead of JSON: the error names the problem and never echoes the password."""
        secret = "form-password-" + secrets.token_hex(8)

        response = await client.post(
            "/console/api/session", data={"username": "someone", "password": secret}
        )

        assert response.status_code == 422
        assert secret not in response.text
        detail = response.json()["detail"]
        assert detail["Code"] == "InvalidParameter"
        assert "application/json" in detail["Message"]

    async def test_invalid_query_value_named(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        account_id = await make_account(session_factory)
        headers = await sign_in(client, await make_user(session_factory, account_id, unique("u")))

        response = await client.get(
            "/console/api/batch/jobs/job_x/download?format=pdf", headers=headers
        )

        assert response.status_code == 422
        detail = response.json()["detail"]
        assert detail["Code"] == "InvalidParameter"
        assert "query.format" in detail["Message"]

    async def test_jobs_without_session(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/console/api/batch/jobs")

        assert response.status_code == 401

    async def test_tampered_token_rejected(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        account_id = await make_account(session_factory)
        headers = await sign_in(client, await make_user(session_factory, account_id, unique("u")))
        headers["Authorization"] = headers["Authorization"][:-2] + "00"

        response = await client.get("/console/api/batch/jobs", headers=headers)

        assert response.status_code == 401

    async def test_cookie_post_needs_csrf_token(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        account_id = await make_account(session_factory)
        username = await make_user(session_factory, account_id, unique("u"))
        signed = await client.post(
            "/console/api/session", json={"username": username, "password": PASSWORD}
        )
        assert SESSION_COOKIE in signed.cookies
        files = {"file": ("list.csv", CSV_BODY.encode(), "text/csv")}

        refused = await client.post(
            "/console/api/batch/jobs", files=files, data={"dry_run": "true"}
        )
        accepted = await client.post(
            "/console/api/batch/jobs",
            files=files,
            data={"dry_run": "true"},
            headers={CSRF_HEADER: signed.json()["CsrfToken"]},
        )

        assert refused.status_code == 403
        assert accepted.status_code == 200, accepted.text


class TestBatchApi:
    async def test_upload_show_download(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        make_worker: Callable[..., BatchWorker],
    ) -> None:
        account_id = await make_account(session_factory)
        headers = await sign_in(client, await make_user(session_factory, account_id, unique("u")))

        created = await client.post(
            "/console/api/batch/jobs",
            headers=headers,
            files={"file": ("名单.csv", CSV_BODY.encode("gbk"), "text/csv")},
        )
        assert created.status_code == 201, created.text
        job_id = created.json()["Job"]["JobId"]
        assert created.json()["Estimate"]["DistinctNumbers"] == 2
        assert created.json()["Estimate"]["Amount"] == "0.200"
        await make_worker().run_until_idle(job_id)

        shown = await client.get(f"/console/api/batch/jobs/{job_id}", headers=headers)
        listed = await client.get("/console/api/batch/jobs", headers=headers)
        downloaded = await client.get(
            f"/console/api/batch/jobs/{job_id}/download", headers=headers, params={"format": "csv"}
        )

        assert shown.json()["State"] == "completed"
        assert sum(shown.json()["ByStatus"].values()) == 2
        assert [job["JobId"] for job in listed.json()["Jobs"]] == [job_id]
        assert downloaded.status_code == 200
        assert downloaded.content.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(downloaded.content.decode("utf-8-sig"))))
        assert len(rows) == 5
        assert rows[4][4] == "INVALID"
        async with session_factory() as session, session.begin():
            await delete_account_jobs(session, account_id)

    async def test_other_account_job_not_found(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        tmp_path: Path,
    ) -> None:
        owner = await make_account(session_factory)
        job_id = await submit(
            session_factory, owner, write_numbers(tmp_path / "a.csv", ["13800138000"])
        )
        intruder = await make_account(session_factory)
        headers = await sign_in(client, await make_user(session_factory, intruder, unique("u")))

        shown = await client.get(f"/console/api/batch/jobs/{job_id}", headers=headers)
        downloaded = await client.get(f"/console/api/batch/jobs/{job_id}/download", headers=headers)
        cancelled = await client.post(f"/console/api/batch/jobs/{job_id}/cancel", headers=headers)
        listed = await client.get("/console/api/batch/jobs", headers=headers)

        assert shown.status_code == 404
        assert downloaded.status_code == 404
        assert cancelled.status_code == 404
        assert listed.json()["Jobs"] == []
        async with session_factory() as session, session.begin():
            await delete_account_jobs(session, owner)

    async def test_operator_sees_any_job(
        self,
        client: httpx.AsyncClient,
        session_factory: async_sessionmaker[AsyncSession],
        tmp_path: Path,
    ) -> None:
        owner = await make_account(session_factory)
        job_id = await submit(
            session_factory, owner, write_numbers(tmp_path / "a.csv", ["13800138000"])
        )
        headers = await sign_in(client, await make_user(session_factory, None, unique("op")))

        shown = await client.get(f"/console/api/batch/jobs/{job_id}", headers=headers)
        cancelled = await client.post(f"/console/api/batch/jobs/{job_id}/cancel", headers=headers)

        assert shown.status_code == 200
        assert cancelled.json()["State"] == "cancelled"
        async with session_factory() as session, session.begin():
            await delete_account_jobs(session, owner)

    async def test_upload_bad_file(
        self, client: httpx.AsyncClient, session_factory: async_sessionmaker[AsyncSession]
    ) -> None:
        account_id = await make_account(session_factory)
        headers = await sign_in(client, await make_user(session_factory, account_id, unique("u")))

        response = await client.post(
            "/console/api/batch/jobs",
            headers=headers,
            files={"file": ("list.pdf", b"%PDF", "application/pdf")},
        )

        assert response.status_code == 400
        assert response.json()["detail"]["Code"] == "InvalidFile"
