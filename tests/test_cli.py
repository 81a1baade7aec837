"""The ``wheelcave`` command: first start, users, tokens, indexes, check."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import httpx

from tests.support.dists import make_wheel
from tests.support.server import BIN, Server, clean_env
from tests.support.upload import upload


def test_first_start_prints_urls_and_where_the_password_is(fresh_server: Server) -> None:
    srv = fresh_server
    log = srv.log_path.read_text()
    assert f"index URL for pip and uv: http://127.0.0.1:{srv.port}/simple/" in log
    assert f"upload URL for twine:     http://127.0.0.1:{srv.port}/legacy/" in log
    password_file = srv.data_dir / "initial-admin-password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    # where the password is, never the password: logs travel further than a 0600 file
    assert f"first run: user 'admin', password in {password_file}" in log
    assert srv.admin_password not in log
    srv.restart()
    assert srv.log_path.read_text().count("first run: user 'admin'") == 1


def test_second_serve_on_same_data_dir_refused(fresh_server: Server) -> None:
    result = subprocess.run(
        [str(BIN / "wheelcave"), "serve", "--data-dir", str(fresh_server.data_dir), "--port", "1"],
        env=clean_env(), capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1
    assert "another 'wheelcave serve' is running" in result.stderr


def test_user_add_and_upload(fresh_server: Server, tmp_path: Path) -> None:
    srv = fresh_server
    srv.cli("user", "add", "alice", "--password-stdin", input="correct horse battery\n")
    assert "alice\tuser" in srv.cli("user", "list").stdout
    dup = srv.cli("user", "add", "alice", "--password-stdin", input="whatever123\n", check=False)
    assert dup.returncode == 1 and "exists already" in dup.stderr
    short = srv.cli("user", "add", "bob", "--password-stdin", input="short\n", check=False)
    assert short.returncode == 1 and "too short" in short.stderr
    whl = make_wheel(tmp_path, "cli-upload", "1.0")
    assert upload(f"{srv.url}/legacy/", whl, auth=("alice", "correct horse battery")).status_code == 200
    srv.cli("user", "passwd", "alice", "--password-stdin", input="a new password\n")
    other = make_wheel(tmp_path, "cli-upload", "1.1")
    # The running server checks the new password (its memo of the old one is per process
    # and short-lived, so only the new one is tested here).
    assert upload(f"{srv.url}/legacy/", other, auth=("alice", "a new password")).status_code == 200


def test_tokens(fresh_server: Server, tmp_path: Path) -> None:
    srv = fresh_server
    srv.cli("user", "add", "ci", "--password-stdin", input="ci-password-1\n")
    token = srv.cli("token", "create", "--user", "ci", "--description", "CI uploads").stdout.strip()
    assert token.startswith("wc_") and len(token) > 40
    listing = srv.cli("token", "list").stdout
    assert "ci\twc_" in listing and "CI uploads" in listing
    assert token not in listing  # secrets are never shown again
    whl = make_wheel(tmp_path, "cli-token", "1.0")
    assert upload(f"{srv.url}/legacy/", whl, auth=("__token__", token)).status_code == 200
    token_id = listing.split("\t")[0]
    srv.cli("token", "revoke", token_id)
    whl2 = make_wheel(tmp_path, "cli-token", "1.1")
    assert upload(f"{srv.url}/legacy/", whl2, auth=("__token__", token)).status_code == 401
    missing = srv.cli("token", "create", "--user", "nobody", check=False)
    assert missing.returncode == 1 and "no user 'nobody'" in missing.stderr


def test_index_list_defaults(fresh_server: Server) -> None:
    lines = fresh_server.cli("index", "list").stdout.splitlines()
    assert lines[0].startswith("local\thosted")
    assert lines[1].startswith("main\tvirtual") and "members=local" in lines[1]


def test_check_finds_missing_blob(fresh_server: Server, tmp_path: Path) -> None:
    srv = fresh_server
    whl = make_wheel(tmp_path, "cli-check", "1.0")
    assert upload(f"{srv.url}/legacy/", whl, auth=("admin", srv.admin_password)).status_code == 200
    assert srv.cli("check").returncode == 0
    blob = next(p for p in (srv.data_dir / "blobs" / "sha256").rglob("*") if p.is_file() and p.stat().st_size == whl.stat().st_size)
    blob.write_bytes(b"x" * whl.stat().st_size)
    result = srv.cli("check", "--hashes", check=False)
    assert result.returncode == 1
    assert "does not match its sha256" in result.stdout
    blob.unlink()
    result = srv.cli("check", check=False)
    assert "blob missing" in result.stdout
    page = httpx.get(f"{srv.url}/simple/cli-check/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    url = httpx.URL(f"{srv.url}/simple/cli-check/").join(page["files"][0]["url"])
    assert httpx.get(url).status_code == 404


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "wheelcave.toml").write_text("[server]\nport = 'eighty'\n")
    result = subprocess.run([str(BIN / "wheelcave"), "index", "list", "--data-dir", str(data)],
                            env=clean_env(), capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: port must be a whole number, not 'eighty'"
    (data / "wheelcave.toml").write_text("[server]\nnonsense = 1\n")
    result = subprocess.run([str(BIN / "wheelcave"), "index", "list", "--data-dir", str(data)],
                            env=clean_env(), capture_output=True, text=True)
    assert "unknown setting server.nonsense" in result.stderr


def test_indexes_declared_in_the_config_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "wheelcave.toml").write_text(
        '[indexes.dev]\nkind = "hosted"\nimmutable = false\nallow_overwrite = true\n'
        '[indexes.team]\nkind = "virtual"\nmembers = ["dev", "local"]\ncooldown = "2d"\n'
    )
    srv = Server(data).start()
    try:
        lines = srv.cli("index", "list").stdout
        assert "dev\thosted\tallow_overwrite=True immutable=False" in lines
        assert "team\tvirtual\tcooldown=172800.0 members=dev,local" in lines
        # A run-time change lasts until the next start; then the file wins again.
        srv.cli("index", "update", "dev", "--immutable")
        assert "dev\thosted\tallow_overwrite=False immutable=True" in srv.cli("index", "list").stdout
        srv.restart()
        assert "dev\thosted\tallow_overwrite=True immutable=False" in srv.cli("index", "list").stdout
        assert "config file: updated dev" in srv.log_path.read_text()
    finally:
        srv.stop()


def test_gc_retention_and_orphans(fresh_server: Server, tmp_path: Path) -> None:
    srv = fresh_server
    srv.cli("index", "create", "nightly", "--kind", "hosted", "--prerelease-keep", "2")
    srv.wait_for_index("nightly", prerelease_keep=2)
    auth = ("admin", srv.admin_password)
    for version in ("1.0", "1.1a1", "1.1a2", "1.1b1", "1.1rc1"):
        assert upload(f"{srv.url}/index/nightly/", make_wheel(tmp_path, "gc-pkg", version), auth=auth).status_code == 200
    dry = srv.cli("gc", "--dry-run", "--grace", "0")
    assert "would remove 0 blobs" in dry.stderr
    result = srv.cli("gc", "--grace", "0")
    assert sorted(result.stdout.split()) == sorted(
        ["deleted", "gc_pkg-1.1a1-py3-none-any.whl", "deleted", "gc_pkg-1.1a2-py3-none-any.whl"])
    assert "removed 4 blobs" in result.stderr  # two wheels and their two metadata files
    versions = httpx.get(f"{srv.url}/index/nightly/simple/gc-pkg/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()["versions"]
    assert sorted(versions) == ["1.0", "1.1b1", "1.1rc1"]
    assert srv.cli("check", "--hashes").returncode == 0


def test_initial_password_never_looks_like_an_option() -> None:
    """The first-run admin password is pasted after ``-p`` (twine): a leading ``-`` made one run
    in 64 fail as a missing argument. 20,000 draws would include about 300 such passwords."""
    from wheelcave.auth.service import initial_password

    drawn = [initial_password() for _ in range(20_000)]
    assert not [p for p in drawn if p.startswith("-")]
    assert len(set(drawn)) == len(drawn) and all(len(p) == 24 for p in drawn)


def test_fetch_ahead_is_a_mirror_setting(tmp_path: Path) -> None:
    """``--fetch-ahead/--no-fetch-ahead`` (indexes/ahead.py): a mirror takes it, a hosted index
    refuses it with a one-line error and keeps its settings."""
    data = str(tmp_path / "data")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "wheelcave"), *args, "--data-dir", data], env=clean_env(),
                              capture_output=True, text=True, timeout=60)

    assert cli("index", "create", "m1", "--kind", "mirror", "--upstream", "http://127.0.0.1:1/simple/",
               "--no-fetch-ahead").returncode == 0
    assert "fetch_ahead=False" in cli("index", "list").stdout
    assert cli("index", "update", "m1", "--fetch-ahead").returncode == 0
    assert "fetch_ahead=True" in cli("index", "list").stdout
    refused = cli("index", "create", "h1", "--kind", "hosted", "--fetch-ahead")
    assert refused.returncode != 0 and "does not take --fetch-ahead" in refused.stderr
    refused = cli("index", "update", "local", "--no-fetch-ahead")
    assert refused.returncode != 0 and "Unknown settings for hosted index 'local': fetch_ahead" in refused.stderr
    assert "fetch_ahead" not in [line for line in cli("index", "list").stdout.splitlines() if line.startswith("local")][0]
