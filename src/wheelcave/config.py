"""Settings: one frozen object from the TOML file, ``WHEELCAVE_<SECTION>_<KEY>`` variables and
command-line options (in rising precedence), validated once at start-up and passed down.

The file is ``<data>/wheelcave.toml`` or the ``--config`` path::

    [server]
    host = "127.0.0.1"
    port = 8080
    workers = 1
    engine = "uvicorn"       # or "granian" (pip install 'wheelcave[granian]'): the HTTP server
    access_log = true        # one line per request (with its request id)
    log_format = "text"      # or "json": one JSON object a line
    shutdown_timeout = 30    # seconds in-flight uploads and downloads get to finish on SIGTERM
    public_url = ""          # the root URL clients use (behind a proxy); absolute links use it
    tls_cert = ""            # serve HTTPS: a PEM certificate (chain) and its key
    tls_key = ""
    [database]
    url = "sqlite:///wheelcave-data/wheelcave.db"   # or postgresql://user@host/db
    sqlite_synchronous = "full"   # "normal": faster commits, the last ones may be lost to a power loss
    poll = "0.5s"                 # how often a process looks for changes made by others
    poll_with_notify = "10s"      # the same on PostgreSQL while LISTEN/NOTIFY tells it at once
    listen = true                 # false: no LISTEN (a pooler in transaction mode cannot keep one)
    [storage]
    path = "wheelcave-data/blobs"   # the blobs, or only the local spool when url is set
    url = ""                 # s3://bucket/prefix (also gs://, az://): blobs in an object store,
                             # credentials and endpoint from AWS_* (GOOGLE_*, AZURE_*) variables
    redirect = 0             # seconds: > 0 sends clients to presigned URLs of the store instead
                             # of streaming the bytes through wheelcave (0: stream)
    [upload]
    max_file_size = "2GiB"
    max_metadata_size = "4MiB"
    [cache]
    page_max_age = 600       # Cache-Control max-age of simple pages, seconds
    [auth]
    anonymous_read = true
    # Trusted publishing: the OIDC issuers whose CI tokens may be exchanged for upload tokens
    # (default: GitHub Actions and GitLab.com), and the audience those tokens must name.
    oidc_issuers = ["https://token.actions.githubusercontent.com", "https://gitlab.com"]
    oidc_audience = "wheelcave"
    [webhooks]
    poll = "1s"              # how often each server process looks for deliveries to send
    retry_base = "10s"       # a failed delivery waits this, then twice as long each time (at most 1h)
    max_attempts = 10        # then it is marked failed
    timeout = "10s"          # for each POST
    [indexes.dev]              # indexes declared here are created or updated to match at start
    kind = "hosted"
    immutable = false
    allow_overwrite = true
    [indexes.team]
    kind = "virtual"
    members = ["dev", "main"]
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wheelcave.storage.select import OBJECT_STORE_SCHEMES

__all__ = ["ConfigError", "Settings", "load_settings", "parse_duration", "parse_size"]

_SIZE = re.compile(r"(?i)\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)?\s*")
_UNITS = {
    None: 1, "b": 1, "kb": 10**3, "kib": 2**10, "mb": 10**6, "mib": 2**20,
    "gb": 10**9, "gib": 2**30, "tb": 10**12, "tib": 2**40,
}

# (section, key) -> Settings field
_KEYS: dict[tuple[str, str], str] = {
    ("server", "host"): "host",
    ("server", "port"): "port",
    ("server", "workers"): "workers",
    ("server", "engine"): "engine",
    ("server", "access_log"): "access_log",
    ("server", "log_format"): "log_format",
    ("server", "shutdown_timeout"): "shutdown_timeout",
    ("server", "public_url"): "public_url",
    ("server", "tls_cert"): "tls_cert",
    ("server", "tls_key"): "tls_key",
    ("server", "session_secret"): "session_secret",
    ("database", "url"): "database_url",
    ("database", "sqlite_synchronous"): "sqlite_synchronous",
    ("database", "poll"): "change_poll",
    ("database", "poll_with_notify"): "change_poll_notified",
    ("database", "listen"): "listen",
    ("storage", "path"): "blob_dir",
    ("storage", "url"): "storage_url",
    ("storage", "redirect"): "storage_redirect",
    ("upload", "max_file_size"): "max_file_size",
    ("upload", "max_metadata_size"): "max_metadata_size",
    ("cache", "page_max_age"): "page_max_age",
    ("auth", "anonymous_read"): "anonymous_read",
    ("auth", "oidc_issuers"): "oidc_issuers",
    ("auth", "oidc_audience"): "oidc_audience",
    ("webhooks", "poll"): "webhook_poll",
    ("webhooks", "retry_base"): "webhook_retry_base",
    ("webhooks", "max_attempts"): "webhook_max_attempts",
    ("webhooks", "timeout"): "webhook_timeout",
}
ENGINES = ("uvicorn", "granian")
DEFAULT_OIDC_ISSUERS = ("https://token.actions.githubusercontent.com", "https://gitlab.com")


class ConfigError(ValueError):
    pass


def parse_size(value: object) -> int:
    """``"2GiB"`` → 2147483648; plain integers are bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.fullmatch(str(value))
    if not match:
        msg = f"not a size: {value!r} (use e.g. 512MiB, 2GiB or a number of bytes)"
        raise ConfigError(msg)
    unit = match.group(2).lower() if match.group(2) else None
    return int(match.group(1)) * _UNITS[unit]


_DURATION = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> float:
    """``"7d"`` → 604800.0; plain numbers are seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.fullmatch(str(value))
    if not match:
        msg = f"not a duration: {value!r} (use e.g. 7d, 12h, 30m or seconds)"
        raise ConfigError(msg)
    return float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off"}:
        return False
    msg = f"not a boolean: {value!r}"
    raise ConfigError(msg)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    #: The HTTP server that runs the app: uvicorn, or granian (an optional dependency).
    engine: str = "uvicorn"
    access_log: bool = True
    #: "text" or "json" (one object a line); every line carries its request's id.
    log_format: str = "text"
    #: Seconds in-flight requests get to finish after SIGTERM (new connections are refused).
    shutdown_timeout: int = 30
    tls_cert: str = ""
    tls_key: str = ""
    public_url: str = ""
    #: Signs web sessions; empty: a secret kept in the data folder (replicas must share one).
    session_secret: str = ""
    database_url: str = ""
    sqlite_synchronous: str = "full"
    blob_dir: Path = Path()
    #: An object store for the blobs (``s3://bucket/prefix``); empty: the blob folder.
    storage_url: str = ""
    #: Seconds a presigned URL of the object store lives; 0: downloads stream through wheelcave.
    storage_redirect: int = 0
    max_file_size: int = 2 * 2**30
    max_metadata_size: int = 4 * 2**20
    page_max_age: int = 0
    anonymous_read: bool = True
    oidc_issuers: tuple[str, ...] = DEFAULT_OIDC_ISSUERS
    oidc_audience: str = "wheelcave"
    #: Seconds between looks for others' changes (index generations, grants); while PostgreSQL's
    #: LISTEN/NOTIFY works, the longer one (a fallback: notifications say it at once).
    change_poll: float = 0.5
    change_poll_notified: float = 10.0
    #: PostgreSQL: LISTEN for change notifications (off behind a pooler in transaction mode).
    listen: bool = True
    webhook_poll: float = 1.0
    webhook_retry_base: float = 10.0
    webhook_max_attempts: int = 10
    webhook_timeout: float = 10.0
    #: ``[indexes.<name>]`` tables of the file: kind and settings, applied at start-up.
    declared_indexes: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        return json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in data.items()})

    @classmethod
    def from_json(cls, text: str) -> Settings:
        data = json.loads(text)
        data.setdefault("declared_indexes", {})
        data["data_dir"] = Path(data["data_dir"])
        data["blob_dir"] = Path(data["blob_dir"])
        if "oidc_issuers" in data:
            data["oidc_issuers"] = tuple(data["oidc_issuers"])
        return cls(**data)


def _coerce(field: str, value: object) -> object:
    if field in {"webhook_poll", "webhook_retry_base", "webhook_timeout", "change_poll", "change_poll_notified"}:
        seconds = parse_duration(value)
        if not 0 < seconds <= 86400:
            msg = f"{field} must be between 0 and one day, not {value!r}"
            raise ConfigError(msg)
        return seconds
    if field in {"port", "workers", "page_max_age", "shutdown_timeout", "webhook_max_attempts", "storage_redirect"}:
        try:
            return int(str(value))
        except ValueError:
            msg = f"{field} must be a whole number, not {value!r}"
            raise ConfigError(msg) from None
    if field in {"max_file_size", "max_metadata_size"}:
        return parse_size(value)
    if field in {"access_log", "anonymous_read", "listen"}:
        return _bool(value)
    if field == "oidc_issuers":
        items = value if isinstance(value, list) else [v for v in str(value).split(",") if v.strip()]
        issuers = tuple(str(v).strip().rstrip("/") for v in items)
        bad = [i for i in issuers if not i.startswith(("https://", "http://"))]
        if bad:
            msg = f"oidc_issuers must be issuer URLs, not {bad[0]!r}"
            raise ConfigError(msg)
        return issuers
    return str(value)


def load_settings(
    data_dir: str | Path | None = None,
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    env = os.environ if environ is None else environ
    base = Path(data_dir or env.get("WHEELCAVE_DATA_DIR") or "wheelcave-data").absolute()
    values: dict[str, object] = {}

    path = Path(config_file) if config_file else base / "wheelcave.toml"
    if config_file and not path.is_file():
        msg = f"config file not found: {path}"
        raise ConfigError(msg)
    if path.is_file():
        try:
            doc = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            msg = f"{path}: {exc}"
            raise ConfigError(msg) from None
        for section, table in doc.items():
            if section == "indexes":
                values["declared_indexes"] = _declared_indexes(path, table)
                continue
            if not isinstance(table, dict):
                msg = f"{path}: [{section}] must be a table"
                raise ConfigError(msg)
            for key, value in table.items():
                field = _KEYS.get((section, key))
                if field is None:
                    msg = f"{path}: unknown setting {section}.{key}"
                    raise ConfigError(msg)
                values[field] = _coerce(field, value)

    for (section, key), field in _KEYS.items():
        name = f"WHEELCAVE_{section.upper()}_{key.upper()}"
        if name in env:
            values[field] = _coerce(field, env[name])

    for field, value in (overrides or {}).items():
        if value is not None:
            values[field] = _coerce(field, value) if field in _FIELDS_COERCED else value

    if not values.get("database_url"):
        values["database_url"] = f"sqlite:///{base / 'wheelcave.db'}"
    blob_dir = Path(str(values.get("blob_dir") or base / "blobs"))
    values["blob_dir"] = blob_dir if blob_dir.is_absolute() else (base / blob_dir)
    settings = Settings(data_dir=base, **values)  # type: ignore[arg-type]
    if settings.workers < 1:
        msg = "workers must be at least 1"
        raise ConfigError(msg)
    if settings.public_url and (not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", settings.public_url)
                                or not settings.public_url.endswith("/")):
        msg = f"public_url must be an http(s) URL ending in '/', like https://pypi.example.com/ (not {settings.public_url!r})"
        raise ConfigError(msg)
    if settings.storage_url and not settings.storage_url.startswith(OBJECT_STORE_SCHEMES):
        msg = f"storage.url must be an object store URL ({', '.join(OBJECT_STORE_SCHEMES)}), not {settings.storage_url!r}"
        raise ConfigError(msg)
    if not 0 <= settings.storage_redirect <= 7 * 86400:
        msg = "storage.redirect must be between 0 and 604800 seconds (seven days, S3's limit)"
        raise ConfigError(msg)
    if settings.storage_redirect and not settings.storage_url:
        msg = "storage.redirect needs storage.url (presigned URLs come from an object store)"
        raise ConfigError(msg)
    if settings.webhook_max_attempts < 1:
        msg = "webhooks.max_attempts must be at least 1"
        raise ConfigError(msg)
    if settings.log_format not in ("text", "json"):
        msg = f"log_format must be \"text\" or \"json\", not {settings.log_format!r}"
        raise ConfigError(msg)
    if settings.engine not in ENGINES:
        msg = f"engine must be one of {', '.join(ENGINES)}, not {settings.engine!r}"
        raise ConfigError(msg)
    if settings.sqlite_synchronous not in ("full", "normal"):
        msg = f"sqlite_synchronous must be \"full\" or \"normal\", not {settings.sqlite_synchronous!r}"
        raise ConfigError(msg)
    if bool(settings.tls_cert) != bool(settings.tls_key):
        msg = "tls_cert and tls_key go together: give both to serve HTTPS, or neither"
        raise ConfigError(msg)
    for path in (settings.tls_cert, settings.tls_key):
        if path and not Path(path).is_file():
            msg = f"TLS file not found: {path}"
            raise ConfigError(msg)
    return settings


_FIELDS_COERCED = set(_KEYS.values()) - {"database_url", "blob_dir", "host", "tls_cert", "tls_key", "public_url",
                                          "sqlite_synchronous", "session_secret", "engine",
                                          "log_format"}


def _declared_indexes(path: Path, table: object) -> dict[str, dict[str, Any]]:
    if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
        msg = f"{path}: [indexes] holds one table per index: [indexes.NAME] with kind = ..."
        raise ConfigError(msg)
    out: dict[str, dict[str, Any]] = {}
    for name, spec in table.items():
        if spec.get("kind") not in {"hosted", "mirror", "virtual"}:
            msg = f"{path}: [indexes.{name}] needs kind = \"hosted\", \"mirror\" or \"virtual\""
            raise ConfigError(msg)
        settings = {k: v for k, v in spec.items() if k != "kind"}
        for key in ("cooldown",):
            if key in settings:
                settings[key] = parse_duration(settings[key])
        if "max_file_size" in settings:
            settings["max_file_size"] = parse_size(settings["max_file_size"])
        out[str(name)] = {"kind": spec["kind"], "config": settings}
    return out
