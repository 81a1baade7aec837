"""Password hashes: argon2id for everything wheelcave sets; bcrypt and SHA-1 accepted only as
imported from an htpasswd file (pypiserver's), and replaced by argon2id at the first
successful sign-in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["HtpasswdError", "PasswordHashes", "parse_htpasswd"]

_BCRYPT = ("$2a$", "$2b$", "$2y$")
_SHA1 = "{SHA}"


class HtpasswdError(ValueError):
    pass


class PasswordHashes:
    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, hashed: str, password: str) -> bool:
        """Check a password against any hash we store; never raises for a bad hash."""
        if hashed.startswith(_BCRYPT):
            try:
                return bcrypt.checkpw(password.encode(), hashed.replace("$2y$", "$2b$", 1).encode())
            except ValueError:
                return False
        if hashed.startswith(_SHA1):
            digest = base64.b64encode(hashlib.sha1(password.encode()).digest()).decode()  # noqa: S324 - htpasswd's format
            return hmac.compare_digest(digest, hashed[len(_SHA1):])
        try:
            return self.hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, hashed: str) -> bool:
        if hashed.startswith((*_BCRYPT, _SHA1)):
            return True
        try:
            return self.hasher.check_needs_rehash(hashed)
        except InvalidHashError:
            return True


def parse_htpasswd(text: str) -> list[tuple[str, str]]:
    """(user, hash) of every entry; bcrypt and ``{SHA}`` only, anything else refused by line.

    >>> parse_htpasswd("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\\n# comment\\n")
    [('alice', '{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=')]
    """
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user or not hashed:
            msg = f"line {number}: not 'user:hash'"
            raise HtpasswdError(msg)
        if hashed.startswith(_BCRYPT):
            if len(hashed) != 60:
                msg = f"line {number} ({user}): malformed bcrypt hash"
                raise HtpasswdError(msg)
        elif hashed.startswith(_SHA1):
            try:
                if len(base64.b64decode(hashed[len(_SHA1):], validate=True)) != 20:
                    raise ValueError
            except ValueError:
                msg = f"line {number} ({user}): malformed {{SHA}} hash"
                raise HtpasswdError(msg) from None
        else:
            scheme = "MD5 (apr1)" if hashed.startswith("$apr1$") else "crypt or plain text"
            msg = (f"line {number} ({user}): {scheme} entries are not supported; "
                   "re-create them with 'htpasswd -B' (bcrypt) or set the password with 'wheelcave user passwd'")
            raise HtpasswdError(msg)
        entries.append((user, hashed))
    return entries
