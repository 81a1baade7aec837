"""The services' error tree. Each error has a kebab-case ``code``, a one-line message and
an optional ``hint``; ``web/errors.py`` maps them to HTTP, ``cli/`` to exit codes.

WheelcaveError
 ├── BadRequest          invalid input (400)
 ├── Unauthorized        missing or wrong credentials (401)
 ├── Forbidden           authenticated but not allowed (403)
 ├── NotFound            no such index, project, version or file (404)
 ├── Conflict            the name is taken by other content (409)
 ├── Gone                an action that no longer exists (410)
 ├── PayloadTooLarge     a body or file over its limit (413)
 ├── TooManyRequests     over a rate limit; ``retry_after`` seconds (429)
 ├── InsufficientStorage the blob store is full (507)
 ├── UpstreamError       an upstream index failed or sent bad data (502)
 └── UpstreamTimeout     an upstream index did not answer in time (504)
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "Gone",
    "InsufficientStorage",
    "NO_SPACE",
    "NotFound",
    "PayloadTooLarge",
    "TooManyRequests",
    "Unauthorized",
    "UpstreamError",
    "UpstreamTimeout",
    "WheelcaveError",
]


class WheelcaveError(Exception):
    code = "error"
    status = 500

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message.replace("\n", " ")
        if code is not None:
            self.code = code
        self.hint = hint


class BadRequest(WheelcaveError):
    code = "invalid-input"
    status = 400


class Unauthorized(WheelcaveError):
    code = "unauthorized"
    status = 401


class Forbidden(WheelcaveError):
    code = "forbidden"
    status = 403


class NotFound(WheelcaveError):
    code = "not-found"
    status = 404


class Conflict(WheelcaveError):
    code = "file-exists"
    status = 409


class Gone(WheelcaveError):
    code = "gone"
    status = 410


class PayloadTooLarge(WheelcaveError):
    code = "too-large"
    status = 413


class TooManyRequests(WheelcaveError):
    code = "too-many-requests"
    status = 429

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = max(1, retry_after)


class InsufficientStorage(WheelcaveError):
    code = "insufficient-storage"
    status = 507


#: errno values that mean "the disk is full" (no space, or over a quota).
NO_SPACE = (28, 122)  # ENOSPC, EDQUOT


class UpstreamError(WheelcaveError):
    code = "upstream-error"
    status = 502


class UpstreamTimeout(UpstreamError):
    code = "upstream-timeout"
    status = 504
