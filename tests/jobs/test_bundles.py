"""Bundle reading in its worst forms (in-process, a real blob store in a temporary folder):
nothing a bundle says is trusted, and a refused bundle leaves no temporary file behind."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from wheelcave.jobs.bundles import MANIFEST, BundleError, read_bundle
from wheelcave.storage.filesystem import FilesystemBlobStore

WHEEL = "demo-1.0-py3-none-any.whl"
DATA = b"PK not checked here: bundles check bytes, the import checks archives"


def manifest(**entry: object) -> bytes:
    base = {"filename": WHEEL, "project": "demo", "version": "1.0", "sha256": hashlib.sha256(DATA).hexdigest(),
            "size": len(DATA)}
    return json.dumps({"format": 1, "files": [{**base, **entry}]}).encode()


def bundle(path: Path, members: list[tuple[str, bytes] | tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w") as tar:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tar.addfile(m)
                continue
            info = tarfile.TarInfo(m[0])
            info.size = len(m[1])
            tar.addfile(info, io.BytesIO(m[1]))
    return path


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


CASES = {
    "ok": ([(MANIFEST, manifest()), (WHEEL, DATA)], None),
    "manifest not first": ([(WHEEL, DATA), (MANIFEST, manifest())], "not a wheelcave bundle"),
    "path in a member name": ([(MANIFEST, manifest()), (WHEEL, DATA), ("../evil.whl", DATA)], "not listed in the manifest"),
    "path in the manifest": ([(MANIFEST, manifest(filename="../demo-1.0-py3-none-any.whl")), (WHEEL, DATA)], "not a plain file name"),
    "symlink member": ([(MANIFEST, manifest()), link(WHEEL, "/etc/passwd")], "not a regular file"),
    "hard link member": ([(MANIFEST, manifest()), link(WHEEL, MANIFEST, tarfile.LNKTYPE)], "not a regular file"),
    "twice": ([(MANIFEST, manifest()), (WHEEL, DATA), (WHEEL, DATA)], "appears twice"),
    "size differs": ([(MANIFEST, manifest(size=3)), (WHEEL, DATA)], "the manifest says 3"),
    "bad sha": ([(MANIFEST, manifest(sha256="zz")), (WHEEL, DATA)], "malformed sha256"),
    "negative size": ([(MANIFEST, manifest(size=-1)), (WHEEL, DATA)], "malformed size"),
    "not json": ([(MANIFEST, b"\xff{"), (WHEEL, DATA)], "malformed manifest"),
    "other format": ([(MANIFEST, b'{"format": 99, "files": []}')], "format 1"),
    "not a dist name": ([(MANIFEST, manifest(filename="setup.py")), ("setup.py", DATA)], "setup.py"),
    "metadata not listed": ([(MANIFEST, manifest()), (WHEEL, DATA), (WHEEL + ".metadata", b"x")], "not listed"),
    "wrong metadata": ([(MANIFEST, manifest(metadata_sha256="0" * 64)), (WHEEL, DATA), (WHEEL + ".metadata", b"x")],
                       "metadata does not match"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bundles_in_their_worst_forms(tmp_path: Path, case: str) -> None:
    members, message = CASES[case]
    blobs = FilesystemBlobStore(tmp_path / "blobs")
    path = bundle(tmp_path / "b.tar", members)
    if message is None:
        read = read_bundle(path, blobs)
        assert list(read.temps) == [WHEEL]
        read.discard()
    else:
        with pytest.raises(BundleError, match=message):
            read_bundle(path, blobs)
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []
