"""Password hashes and htpasswd files (wheelcave.auth.passwords)."""

from __future__ import annotations

import base64
import hashlib

import bcrypt
import pytest
from argon2 import PasswordHasher

from wheelcave.auth.passwords import HtpasswdError, PasswordHashes, parse_htpasswd

FAST = PasswordHashes(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def test_argon2_bcrypt_and_sha1() -> None:
    argon = FAST.hash("right-password")
    bcrypted = bcrypt.hashpw(b"right-password", bcrypt.gensalt(4)).decode().replace("$2b$", "$2y$", 1)
    sha1 = "{SHA}" + base64.b64encode(hashlib.sha1(b"right-password").digest()).decode()
    for hashed in (argon, bcrypted, sha1):
        assert FAST.verify(hashed, "right-password")
        assert not FAST.verify(hashed, "wrong-password")
    assert not FAST.needs_rehash(argon)
    assert FAST.needs_rehash(bcrypted) and FAST.needs_rehash(sha1)


@pytest.mark.parametrize("hashed", ["", "plain", "$2b$short", "{SHA}!!!", "$argon2id$v=19$garbage"])
def test_garbage_hashes_never_verify_or_raise(hashed: str) -> None:
    assert not FAST.verify(hashed, "anything")


def test_htpasswd_accepts_bcrypt_and_sha1_and_refuses_the_rest() -> None:
    bcrypted = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
    text = f"# users\nann:{bcrypted}\n\nbob:{{SHA}}{base64.b64encode(hashlib.sha1(b'pw').digest()).decode()}\n"
    assert [u for u, _ in parse_htpasswd(text)] == ["ann", "bob"]
    for bad, why in (("cy:$apr1$abc$def", "MD5 (apr1)"), ("cy:plaintext", "crypt or plain text"), ("nocolon", "not 'user:hash'"),
                     ("cy:{SHA}abc", "malformed"), ("cy:$2y$05$short", "malformed")):
        with pytest.raises(HtpasswdError, match=None) as info:
            parse_htpasswd(text + bad + "\n")
        assert why in str(info.value) and "line 5" in str(info.value)
