"""Web sign-in: a session cookie for the pages (never for the APIs, which take credentials in
``Authorization`` only, so no other site can make a browser use them).

The cookie is a JWT (PyJWT, HS256) naming the user, valid for 12 hours, and bound to the
user's password hash: a new password ends every session. It is ``HttpOnly``, ``SameSite=Lax``
and ``Secure`` when the site is HTTPS. Every form that changes something also carries a CSRF
token, compared with a cookie of its own (double submit), and is refused without it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

import jwt
from starlette.requests import Request
from starlette.responses import Response

from wheelcave.auth.access import Principal
from wheelcave.errors import Forbidden
from wheelcave.web.deps import services, site_url

__all__ = ["CSRF_COOKIE", "SESSION_COOKIE", "check_csrf", "csrf_token", "end_session", "session_principal", "start_session"]

SESSION_COOKIE = "wheelcave_session"
CSRF_COOKIE = "wheelcave_csrf"
LIFETIME = 12 * 3600
_ALGORITHM = "HS256"


def _secret(request: Request) -> bytes:
    settings = services(request).settings
    if settings.session_secret:
        return settings.session_secret.encode()
    cached = request.app.state.__dict__.get("session_secret")
    if cached:
        return cached  # type: ignore[no-any-return]
    path = Path(settings.data_dir) / "session-secret"
    if not path.exists():  # made whole aside, then linked into place: workers racing here agree
        aside = path.with_name(f".session-secret.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # another worker's secret won
        finally:
            aside.unlink(missing_ok=True)
    secret = path.read_text().strip().encode()
    if len(secret) < 32:
        raise RuntimeError(f"{path} holds no usable secret; remove it to make a new one")
    request.app.state.session_secret = secret
    return secret


def _fingerprint(password_hash: str | None) -> str:
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def _secure(request: Request) -> bool:
    return site_url(request).startswith("https://")


async def start_session(request: Request, response: Response, who: Principal) -> None:
    record = await services(request).accounts.find_user(who.name)
    now = int(time.time())
    claims = {"sub": who.name, "iat": now, "exp": now + LIFETIME, "pw": _fingerprint(record.password_hash if record else None)}
    token = jwt.encode(claims, _secret(request), algorithm=_ALGORITHM)
    response.set_cookie(SESSION_COOKIE, token, max_age=LIFETIME, httponly=True, samesite="lax", secure=_secure(request),
                        path="/")


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


async def session_principal(request: Request) -> Principal | None:
    """The signed-in user of a page request, or None (no cookie, a bad or stale one)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 4096:
        return None
    try:
        claims = jwt.decode(token, _secret(request), algorithms=[_ALGORITHM], options={"require": ["exp", "sub"]})
    except jwt.PyJWTError:
        return None
    svc = services(request)
    record = await svc.accounts.find_user(str(claims["sub"]))
    if record is None or not record.password_hash or claims.get("pw") != _fingerprint(record.password_hash):
        return None
    groups = frozenset(await svc.accounts.user_groups(record.id))
    return Principal(record.name, record.id, record.is_admin, groups)


def csrf_token(request: Request) -> str:
    """This browser's CSRF token (made on first use; the caller sets the cookie, see
    :func:`remember_csrf`)."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token or len(token) != 43:
        token = request.scope.setdefault("wheelcave.csrf", secrets.token_urlsafe(32))
    return token


def remember_csrf(request: Request, response: Response) -> None:
    if "wheelcave.csrf" in request.scope and request.cookies.get(CSRF_COOKIE) != request.scope["wheelcave.csrf"]:
        response.set_cookie(CSRF_COOKIE, request.scope["wheelcave.csrf"], httponly=True, samesite="strict",
                            secure=_secure(request), path="/")


def check_csrf(request: Request, form_value: object) -> None:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not cookie or not isinstance(form_value, str) or not hmac.compare_digest(cookie, form_value):
        raise Forbidden("This form has expired or did not come from this site; reload the page and try again.")
