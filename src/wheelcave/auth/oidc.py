"""Trusted publishing: a CI job's OIDC token exchanged for a short-lived upload token.

The flow is the public index's (protocols.md §9), so ``uv publish --trusted-publishing`` and
pypa's publish action work unchanged: the client reads ``GET /_/oidc/audience``, asks its CI
for a token with that audience, and posts it to ``POST /_/oidc/mint-token``. Here the token is
checked with PyJWT against the issuer's keys (its JWKS, found through its discovery document
and cached), for signature, ``iss`` (one of the configured issuers), ``aud``, ``exp``/``nbf``/
``iat`` (30 s leeway) and single use (``jti``), then matched against the trusted publishers of
that issuer. A match gets a token that may upload to the publisher's index (and project) for
15 minutes, and nothing else.

Matching: every claim a publisher names must equal the token's claim, except ``workflow``,
which names the workflow *file* and is matched against the file in GitHub's
``job_workflow_ref`` (``owner/repo/.github/workflows/release.yml@refs/...``).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt

from wheelcave.auth.admin import Actor
from wheelcave.auth.service import AuthService, token_hash
from wheelcave.db.accounts import Accounts, PublisherRecord
from wheelcave.db.repository import Repository
from wheelcave.errors import BadRequest, Forbidden, UpstreamError

__all__ = ["MintedToken", "TrustedPublishing", "claims_match"]

log = logging.getLogger("wheelcave.oidc")
_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
_LEEWAY = 30
_MAX_TOKEN = 16 * 1024


@dataclass(frozen=True)
class MintedToken:
    secret: str
    expires_at: datetime
    publisher: PublisherRecord


def _workflow_file(claims: Mapping[str, Any]) -> str | None:
    ref = claims.get("job_workflow_ref") or claims.get("workflow_ref")
    if not isinstance(ref, str):
        return None
    path = ref.split("@", 1)[0]
    return path.rsplit("/", 1)[-1]


def claims_match(wanted: Mapping[str, str], claims: Mapping[str, Any]) -> bool:
    """Whether a token's claims satisfy a publisher's.

    >>> claims_match({"repository": "acme/app", "workflow": "release.yml"},
    ...              {"repository": "acme/app", "job_workflow_ref": "acme/app/.github/workflows/release.yml@refs/tags/v1"})
    True
    >>> claims_match({"repository": "acme/app"}, {"repository": "acme/other"})
    False
    """
    for key, value in wanted.items():
        if key == "workflow" and _workflow_file(claims) is not None:
            if _workflow_file(claims) != value:
                return False
        elif str(claims.get(key, "")) != value:
            return False
    return True


class TrustedPublishing:
    def __init__(
        self, accounts: Accounts, repo: Repository, auth: AuthService, *, issuers: Sequence[str], audience: str,
        client: httpx.AsyncClient | None = None, jwks_ttl: float = 600.0, lifetime: float = 900.0,
    ) -> None:
        self.accounts = accounts
        self.repo = repo
        self.auth = auth
        self.issuers = frozenset(i.rstrip("/") for i in issuers)
        self.audience = audience
        self.client = client or httpx.AsyncClient(timeout=10.0, follow_redirects=False)
        self.jwks_ttl = jwks_ttl
        self.lifetime = lifetime
        self._keys: dict[str, tuple[float, jwt.PyJWKSet]] = {}
        self._used: dict[str, float] = {}

    async def close(self) -> None:
        await self.client.aclose()

    async def _jwks(self, issuer: str, *, refresh: bool = False) -> jwt.PyJWKSet:
        cached = self._keys.get(issuer)
        if cached is not None and not refresh and time.monotonic() - cached[0] < self.jwks_ttl:
            return cached[1]
        try:
            discovery = await self.client.get(f"{issuer}/.well-known/openid-configuration")
            discovery.raise_for_status()
            jwks_uri = discovery.json()["jwks_uri"]
            if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("https://", "http://")):
                raise ValueError("no jwks_uri")
            answer = await self.client.get(jwks_uri)
            answer.raise_for_status()
            keys = jwt.PyJWKSet.from_dict(answer.json())
        except (httpx.HTTPError, ValueError, KeyError, TypeError, jwt.PyJWKError) as exc:
            log.warning("oidc.jwks_failed issuer=%s: %s", issuer, type(exc).__name__)
            raise UpstreamError(f"Could not read the signing keys of issuer {issuer}.") from None
        self._keys[issuer] = (time.monotonic(), keys)
        return keys

    async def _key(self, issuer: str, kid: str | None) -> Any:
        for refresh in (False, True):  # a key rotated since we cached: read the set once more
            keys = await self._jwks(issuer, refresh=refresh)
            for key in keys.keys:
                if kid is None or key.key_id == kid:
                    return key
            cached = self._keys.get(issuer)
            if cached is not None and time.monotonic() - cached[0] < 5:
                break  # just read: do not let unknown kids make us fetch on every request
        raise Forbidden("The token is signed with a key its issuer does not publish.", code="invalid-token")

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, once every check holds (else 400/403 saying which failed)."""
        if not token or len(token) > _MAX_TOKEN:
            raise BadRequest("No OIDC token, or one too long.", code="invalid-token")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise BadRequest("Not a JSON Web Token.", code="invalid-token") from None
        issuer = str(unverified.get("iss", "")).rstrip("/")
        if issuer not in self.issuers:
            raise Forbidden(f"Tokens of issuer {issuer[:200]!r} are not accepted here.", code="invalid-issuer")
        key = await self._key(issuer, header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key=key, algorithms=_ALGORITHMS, audience=self.audience, issuer=unverified.get("iss"),
                leeway=_LEEWAY, options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise Forbidden(f"The OIDC token is not valid here: {exc}.", code="invalid-token") from None
        jti = claims.get("jti")
        if jti is not None:
            now = time.time()
            self._used = {k: v for k, v in self._used.items() if v > now} if len(self._used) > 1000 else self._used
            if str(jti) in self._used:
                raise Forbidden("This OIDC token was used already.", code="invalid-token")
            self._used[str(jti)] = float(claims["exp"]) + _LEEWAY
        return claims

    async def burn(self, secret: str, address: str | None = None) -> bool:
        """Revoke a minted token at once (uv does this after its upload); others are left alone."""
        found = await self.accounts.find_token(token_hash(secret))
        if found is None or found.publisher is None:
            return False
        await self.accounts.delete_token(found.id)
        await self.repo.audit({"actor": f"publisher:{found.publisher.id}", "action": "publisher.burn",
                               "index_name": found.publisher.index_name, "address": address,
                               "detail": {"id": found.id}})
        self.auth.changed()
        return True

    async def mint(self, token: str, address: str | None = None) -> MintedToken:
        claims = await self.verify(token)
        issuer = str(claims["iss"]).rstrip("/")
        matches = [p for p in await self.accounts.publishers(issuer) if claims_match(p.claims, claims)]
        if not matches:
            shown = {k: claims[k] for k in ("sub", "repository", "repository_owner", "job_workflow_ref",
                                            "environment", "ref", "project_path") if k in claims}
            log.warning("oidc.no_publisher issuer=%s claims=%s address=%s", issuer, shown, address or "-")
            raise Forbidden(f"No trusted publisher matches this token (claims: {shown}).", code="invalid-publisher")
        publisher = matches[0]
        secret = "wc_" + secrets.token_urlsafe(32)
        expires_at = datetime.now(UTC) + timedelta(seconds=self.lifetime)
        scope = {"indexes": [publisher.index_name], "projects": [publisher.project] if publisher.project else None,
                 "permissions": ["upload"]}
        await self.accounts.create_token(
            user_id=None, publisher_id=publisher.id, token_hash=token_hash(secret), prefix=secret[:10],
            description=f"minted for trusted publisher {publisher.id}", scope=scope, expires_at=expires_at)
        actor = Actor(f"publisher:{publisher.id}", address)
        await self.repo.audit({"actor": actor.name, "action": "publisher.mint", "index_name": publisher.index_name,
                               "project": publisher.project, "address": address,
                               "detail": {"prefix": secret[:10], "sub": str(claims.get("sub", ""))[:200],
                                          "expires_at": expires_at.isoformat()}})
        await self.accounts.delete_expired_tokens(datetime.now(UTC))
        return MintedToken(secret, expires_at, publisher)
