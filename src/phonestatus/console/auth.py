"""Console sessions: sign in with a console user, then send a signed token.

A session token is ``<payload>.<signature>``. The payload is base64url JSON
(user id, account id, operator flag, expiry in Unix seconds). The signature
is HMAC-SHA256 under a key derived from the service secret key with HKDF, so
tokens survive restarts and every process of one deployment accepts them. The token is sent as ``Authorization: Bearer <token>`` or in
the ``phonestatus_session`` cookie.

Cross-site request forgery: a browser attaches the cookie to any site's
request, so a state-changing request authenticated by the cookie must also
send ``X-CSRF-Token`` with the value returned at sign-in (an HMAC of the
session token). Bearer requests need no CSRF token because no browser adds
that header on its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from pydantic import BaseModel

from phonestatus.accounts.crypto import derive_key
from phonestatus.accounts.service import authenticate_user
from phonestatus.runtime import Runtime

SESSION_COOKIE = "phonestatus_session"
CSRF_HEADER = "X-CSRF-Token"
SESSION_LIFETIME_SECONDS = 12 * 3600
SESSION_KEY_INFO = b"phonestatus/console-session/hmac-sha256/v1"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """The signed-in console user a request acts for."""

    user_id: str
    account_id: str | None  # None for operators
    is_operator: bool
    expires_at: int  # Unix seconds


class SessionSigner:
    def __init__(self, secret_key: bytes) -> None:
        self._key = derive_key(secret_key, info=SESSION_KEY_INFO)

    def issue(self, session: ConsoleSession) -> str:
        payload = json.dumps(
            {
                "uid": session.user_id,
                "acc": session.account_id,
                "op": session.is_operator,
                "exp": session.expires_at,
            },
            separators=(",", ":"),
        ).encode()
        encoded = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
        return f"{encoded}.{self._sign(encoded)}"

    def verify(self, token: str, *, now: int) -> ConsoleSession | None:
        """Return the session of a valid, unexpired token; None otherwise."""
        encoded, _, signature = token.partition(".")
        if not encoded or not hmac.compare_digest(self._sign(encoded), signature):
            return None
        try:
            padded = encoded + "=" * (-len(encoded) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded))
            session = ConsoleSession(
                user_id=str(data["uid"]),
                account_id=None if data["acc"] is None else str(data["acc"]),
                is_operator=bool(data["op"]),
                expires_at=int(data["exp"]),
            )
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        if session.expires_at <= now:
            return None
        return session

    def csrf_token(self, token: str) -> str:
        return self._sign("csrf:" + token)

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _signer(request: Request) -> SessionSigner:
    signer: SessionSigner | None = getattr(request.app.state, "session_signer", None)
    if signer is None:
        signer = SessionSigner(_runtime(request).secret_key)
        request.app.state.session_signer = signer
    return signer


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail={"Code": "Unauthorized", "Message": message},
        headers={"WWW-Authenticate": "Bearer"},
    )


async def current_session(request: Request) -> ConsoleSession:
    """FastAPI dependency: the request's console session, or 401 (403 for a missing CSRF token)."""
    signer = _signer(request)
    now = int(_runtime(request).clock.now().timestamp())
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        session = signer.verify(authorization.removeprefix("Bearer ").strip(), now=now)
        if session is None:
            raise _unauthorized("the bearer token is invalid or expired; sign in again")
        return session

    token = request.cookies.get(SESSION_COOKIE)
    if token is None:
        raise _unauthorized("sign in first: POST /console/api/session")
    session = signer.verify(token, now=now)
    if session is None:
        raise _unauthorized("the session is invalid or expired; sign in again")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent, signer.csrf_token(token)):
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail={"Code": "CsrfTokenMismatch", "Message": f"missing or wrong {CSRF_HEADER}"},
            )
    return session


CurrentSession = Annotated[ConsoleSession, Depends(current_session)]


class SignIn(BaseModel):
    username: str
    password: str


router = APIRouter(prefix="/console/api", tags=["console"])


@router.post("/session")
async def sign_in(body: SignIn, request: Request, response: Response) -> dict[str, object]:
    """Sign in; returns the bearer token and the CSRF token, and sets the session cookie."""
    runtime = _runtime(request)
    async with runtime.session_factory() as session:
        user = await authenticate_user(session, body.username, body.password)
        # A rehashed password (newer Argon2 parameters) is saved with this commit.
        await session.commit()
    if user is None:
        raise _unauthorized("wrong username or password")

    expires_at = int(runtime.clock.now().timestamp()) + SESSION_LIFETIME_SECONDS
    signer = _signer(request)
    token = signer.issue(
        ConsoleSession(
            user_id=user.id,
            account_id=user.account_id,
            is_operator=user.is_operator,
            expires_at=expires_at,
        )
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_LIFETIME_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return {
        "Token": token,
        "CsrfToken": signer.csrf_token(token),
        "AccountId": user.account_id,
        "IsOperator": user.is_operator,
        "ExpiresAt": expires_at,
    }


@router.delete("/session")
async def sign_out(response: Response) -> dict[str, object]:
    response.delete_cookie(SESSION_COOKIE)
    return {"SignedOut": True}
