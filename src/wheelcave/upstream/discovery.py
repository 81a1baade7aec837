"""The index pip on this machine uses, read at run time (never written in our code).

In pip's order: ``PIP_INDEX_URL``, then ``index-url`` from pip's configuration files
(``[install]`` before ``[global]``), then pip's built-in default.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Mapping

__all__ = ["PIP_DEFAULT", "pip_index_url"]

log = logging.getLogger("wheelcave.upstream")

#: The value of a mirror's ``upstream`` that means "whatever pip uses here".
PIP_DEFAULT = "pip"


def _from_pip_config() -> str | None:
    try:
        from pip._internal.configuration import Configuration

        config = Configuration(isolated=False)
        config.load()
        values = dict(config.items())
    except Exception as exc:  # noqa: BLE001 - pip internals may change; fall back
        log.debug("upstream.pip_config_unreadable: %s", exc)
        return None
    for key in (":env:.index-url", "install.index-url", "global.index-url"):
        value = values.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip().split()[0]
    return None


def _pip_builtin_default() -> str:
    try:
        from pip._internal.models.index import PyPI

        return str(PyPI.simple_url)
    except Exception:  # noqa: BLE001 - fall back to what pip's help says
        out = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--help"], capture_output=True, text=True, check=False
        ).stdout
        match = re.search(r"\(default\s+(https?://\S+?)\)", " ".join(out.split()))
        if not match:
            msg = "cannot find pip's default index URL; set the mirror's upstream explicitly"
            raise RuntimeError(msg) from None
        return match.group(1)


def pip_index_url(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if env.get("PIP_INDEX_URL", "").strip():
        return env["PIP_INDEX_URL"].strip().split()[0]
    return _from_pip_config() or _pip_builtin_default()
