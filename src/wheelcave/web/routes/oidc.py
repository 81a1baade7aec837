"""Trusted publishing endpoints, at the root of the upload URL's host as clients expect them:
``GET /_/oidc/audience``, ``POST /_/oidc/mint-token`` and ``POST /_/oidc/burn-token`` (see
:mod:`wheelcave.auth.oidc`)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wheelcave.errors import WheelcaveError
from wheelcave.web.deps import client_address, services

__all__ = ["routes"]

_MAX_BODY = 64 * 1024


def _failed(status: int, code: str, description: str) -> Response:
    # The public index's shape: uv and the publish action print "errors".
    body = {"message": "Token request failed", "errors": [{"code": code, "description": description}]}
    return JSONResponse(body, status_code=status)


async def audience(request: Request) -> Response:
    return JSONResponse({"audience": services(request).settings.oidc_audience})


async def _token_field(request: Request) -> str | Response:
    """The ``token`` of a small JSON body, or the answer refusing the body."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY:
            return _failed(413, "too-large", "The request body is too large.")
    try:
        data = orjson.loads(body)
        token = data["token"]
        if not isinstance(token, str):
            raise TypeError
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return _failed(400, "invalid-payload", 'Send {"token": "<the token>"} as JSON.')
    return token


async def mint_token(request: Request) -> Response:
    token = await _token_field(request)
    if isinstance(token, Response):
        return token
    try:
        minted = await services(request).publishing.mint(token, client_address(request))
    except WheelcaveError as exc:
        return _failed(exc.status, exc.code, exc.message)
    return JSONResponse({"success": True, "token": minted.secret, "expires": int(minted.expires_at.timestamp())})


async def burn_token(request: Request) -> Response:
    """Revoke a minted token before it expires (uv calls this after publishing)."""
    token = await _token_field(request)
    if isinstance(token, Response):
        return token
    await services(request).publishing.burn(token, client_address(request))
    return JSONResponse({"success": True})  # the same for any token: nothing is told about others


routes = [
    Route("/_/oidc/audience", audience, methods=["GET"]),
    Route("/_/oidc/mint-token", mint_token, methods=["POST"]),
    Route("/_/oidc/burn-token", burn_token, methods=["POST"]),
]
