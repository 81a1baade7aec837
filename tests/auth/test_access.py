"""The rights model (wheelcave.auth.access), in process: grants, scopes, their intersection."""

from __future__ import annotations

import pytest

from wheelcave.auth.access import ALL, AccessList, Principal, Scope, parse_principal

GRANTS = [
    ("pub", "anonymous", "read"),
    ("pub", "authenticated", "upload"),
    ("team", "group:dev", "upload"),
    ("team", "user:ann", "yank"),
    ("secret", "user:ann", "read"),
]


def access(anonymous_read: bool = True) -> AccessList:
    return AccessList(GRANTS, anonymous_read=anonymous_read)


ANN = Principal("ann", 1, groups=frozenset({"dev"}))
BOB = Principal("bob", 2)
ROOT = Principal("root", 3, admin=True)


def test_grants_by_user_group_authenticated_and_anonymous() -> None:
    acl = access()
    assert acl.rights(None, "pub") == {"read"}
    assert acl.rights(BOB, "pub") == {"read", "upload"}  # every right includes read
    assert acl.rights(ANN, "team") == {"read", "upload", "yank"}
    assert acl.rights(BOB, "team") == set() and acl.rights(None, "team") == set()
    assert acl.rights(ANN, "secret") == {"read"} and acl.rights(BOB, "secret") == set()
    assert acl.rights(ROOT, "secret") == ALL and acl.rights(ROOT, "no-such-index") == ALL
    assert acl.rights(None, "no-such-index") == set()


def test_anonymous_read_off_keeps_signed_in_readers() -> None:
    acl = access(anonymous_read=False)
    assert acl.rights(None, "pub") == set() and not acl.public("pub")
    assert acl.rights(BOB, "pub") == {"read", "upload"}


def test_a_token_never_holds_more_than_its_owner() -> None:
    acl = access()
    wide = Scope(None, None, frozenset(ALL))  # asks for everything
    assert acl.rights(Principal("bob", 2, scope=wide), "team") == set()
    assert acl.rights(Principal("bob", 2, scope=wide), "pub") == {"read", "upload"}
    narrow = Scope(frozenset({"team"}), None, frozenset({"yank"}))
    ann = Principal("ann", 1, groups=frozenset({"dev"}), scope=narrow)
    assert acl.rights(ann, "team") == {"read", "yank"} and acl.rights(ann, "secret") == set()
    # an administrator's limited token is limited, and is no administrator
    limited_root = Principal("root", 3, admin=True, scope=narrow)
    assert acl.rights(limited_root, "team") == {"read", "yank"} and not limited_root.is_admin
    assert Principal("root", 3, admin=True, scope=Scope()).is_admin


def test_project_scope() -> None:
    acl = access()
    ann = Principal("ann", 1, groups=frozenset({"dev"}), scope=Scope(None, frozenset({"one"}), None))
    assert acl.can(ann, "upload", "team", "one") and not acl.can(ann, "upload", "team", "two")
    assert not acl.can(ann, "upload", "team")  # a project-limited token needs the project named
    assert acl.can(ann, "read", "team")  # reading is never limited by project
    assert not acl.can(ann, "manage", "team")


def test_publisher_tokens_upload_to_their_index_only() -> None:
    acl = access()
    pub = Principal("publisher:7", scope=Scope(frozenset({"team"}), frozenset({"app"}), frozenset({"upload"})),
                    publisher_index="team")
    assert acl.can(pub, "upload", "team", "app") and not acl.can(pub, "upload", "team", "other")
    assert acl.rights(pub, "pub") == set() and not pub.is_admin and pub.owner_key == "publisher:7"
    assert not pub.keys  # no grant to "authenticated" or "anonymous" reaches it


@pytest.mark.parametrize("text", ["", "user:", "group:", "robot:x", ":x"])
def test_bad_principals(text: str) -> None:
    with pytest.raises(ValueError, match="not a principal"):
        parse_principal(text)


def test_scope_round_trip() -> None:
    scope = Scope(frozenset({"b", "a"}), None, frozenset({"upload"}))
    assert Scope.from_json(scope.to_json()) == scope
    assert Scope.from_json(None) is None and Scope.from_json({}) is None
