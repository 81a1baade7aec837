"""Through the default ``pypi`` mirror to the live public index (issue #3 acceptance 6).

Marked ``live``: deselect with ``-m 'not live'``. The upstream is whatever pip on this machine
uses by default (the server discovers it the way it always does; nothing here names it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import new_venv, run
from tests.support.server import BIN, Server

pytestmark = pytest.mark.live
REQUIREMENTS = ["requests==2.32.3", "flask==3.0.3", "pydantic==2.9.2"]


def test_install_through_default_mirror_then_offline(tmp_path: Path, client_env: dict[str, str]) -> None:
    srv = Server(tmp_path / "data")
    srv.default_upstream = None  # this server discovers pip's own index, as in production
    srv.start()
    try:
        index = f"{srv.url}/simple/"

        def install(tag: str) -> None:
            python = new_venv(tmp_path / f"pip-{tag}", client_env)
            run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-cache-dir",
                 "--index-url", index, *REQUIREMENTS], client_env, timeout=600)
            run([str(python), "-c", "import requests, flask, pydantic"], client_env)
            python = new_venv(tmp_path / f"uv-{tag}", client_env)
            env = {**client_env, "UV_CACHE_DIR": str(tmp_path / f"uv-cache-{tag}")}
            run([str(BIN / "uv"), "pip", "install", "--python", str(python), "--index-url", index, *REQUIREMENTS],
                env, timeout=600)
            run([str(python), "-c", "import requests, flask, pydantic"], client_env)

        install("online")
        srv.cli("index", "update", "pypi", "--offline")
        srv.wait_for_index("pypi", offline=True)
        install("offline")
    finally:
        srv.stop()
