"""A local OIDC issuer for trusted-publishing tests, on 127.0.0.1: its own RSA key pair, a
discovery document, its JWKS, and a GitHub-Actions-style token endpoint
(``GET <ACTIONS_ID_TOKEN_REQUEST_URL>&audience=<aud>`` with ``Authorization: bearer <token>``
answers ``{"value": "<JWT>"}``), so uv's real trusted-publishing code runs against it."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.support.server import ThreadedServer, free_port

REQUEST_TOKEN = "actions-request-token-for-tests"


class LocalIssuer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        #: The claims the next tokens carry (besides iss, aud, iat, nbf, exp, jti).
        self.claims: dict[str, Any] = {}
        self.issued: list[dict[str, Any]] = []
        self._server: ThreadedServer | None = None

    def token(self, audience: str, *, lifetime: int = 300, key: Any = None, **overrides: Any) -> str:
        now = int(time.time())
        claims = {"iss": self.url, "aud": audience, "iat": now, "nbf": now, "exp": now + lifetime,
                  "jti": uuid.uuid4().hex, **self.claims, **overrides}
        self.issued.append(claims)
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": self.kid})

    @property
    def actions_env(self) -> dict[str, str]:
        """The variables a GitHub Actions job with ``id-token: write`` has, pointing here."""
        return {"GITHUB_ACTIONS": "true", "ACTIONS_ID_TOKEN_REQUEST_URL": f"{self.url}/token?api-version=2.0",
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN}

    async def _discovery(self, _: Request) -> Response:
        return JSONResponse({"issuer": self.url, "jwks_uri": f"{self.url}/jwks"})

    async def _jwks(self, _: Request) -> Response:
        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return JSONResponse({"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]})

    async def _token(self, request: Request) -> Response:
        if request.headers.get("authorization", "").lower() != f"bearer {REQUEST_TOKEN}":
            return PlainTextResponse("bad request token", status_code=401)
        audience = request.query_params.get("audience")
        if not audience:
            return PlainTextResponse("no audience", status_code=400)
        return JSONResponse({"value": self.token(audience)})

    def start(self) -> LocalIssuer:
        app = Starlette(routes=[
            Route("/.well-known/openid-configuration", self._discovery),
            Route("/jwks", self._jwks),
            Route("/token", self._token),
        ])
        self._server = ThreadedServer(app, self.port).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
