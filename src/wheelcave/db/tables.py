"""The schema (SQLAlchemy Core). Alembic migrations in ``migrations/`` create exactly this."""

from __future__ import annotations

import sqlalchemy as sa

from wheelcave.core.traffic import COUNTS as TRAFFIC_COUNTS

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Timestamp = sa.DateTime(timezone=True)

indexes = sa.Table(
    "indexes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    # Kind-specific settings and policy: members, upload_to, upstream, ttl, ...
    sa.Column("config", sa.JSON, nullable=False, default=dict),
    # Bumped by every write that changes what the index lists (page caches key on it).
    sa.Column("generation", sa.BigInteger, nullable=False, default=0),
    sa.Column("created_at", Timestamp, nullable=False),
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("index_id", sa.ForeignKey("indexes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    # The summary of the last file stored with one; kept by a trigger on files (migration 0006),
    # searched with SQLite FTS5 (project_search) or a PostgreSQL tsvector index.
    sa.Column("summary", sa.String(512), nullable=True),
    sa.UniqueConstraint("index_id", "name"),
)

blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("last_access", Timestamp, nullable=True),
)

files = sa.Table(
    "files",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("index_id", sa.ForeignKey("indexes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("project_id", sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("version", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("python_tag", sa.String(64), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("md5", sa.String(32), nullable=True),
    sa.Column("blake2b_256", sa.String(64), nullable=True),
    # Null only for mirrored files whose upstream page does not give a size (HTML pages).
    sa.Column("size", sa.BigInteger, nullable=True),
    sa.Column("requires_python", sa.String(256), nullable=True),
    sa.Column("yanked", sa.Boolean, nullable=False, default=False),
    sa.Column("yanked_reason", sa.Text, nullable=True),
    # Null for mirrored files whose upstream does not say (PEP 700 upload-time is optional).
    sa.Column("upload_time", Timestamp, nullable=True),
    sa.Column("uploader", sa.String(128), nullable=True),
    sa.Column("metadata_sha256", sa.String(64), nullable=True),
    # The core metadata fields (packaging raw names) as JSON, for the JSON API and the UI.
    sa.Column("core_metadata", sa.JSON, nullable=True),
    sa.Column("summary", sa.String(512), nullable=True),
    # Mirror indexes: where the bytes come from, whether the upstream serves PEP 658
    # metadata for the file, and whether the upstream stopped listing it.
    sa.Column("origin_url", sa.Text, nullable=True),
    sa.Column("upstream_metadata", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Column("origin_removed", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.UniqueConstraint("index_id", "filename"),
)
sa.Index("ix_files_sha256", files.c.sha256)
sa.Index("ix_files_project_id", files.c.project_id)
sa.Index("ix_files_index_upload_time", files.c.index_id, files.c.upload_time)

# A filename deleted from a hosted index: an immutable index never takes it again.
file_tombstones = sa.Table(
    "file_tombstones",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("index_id", sa.ForeignKey("indexes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("deleted_at", Timestamp, nullable=False),
    sa.Column("deleted_by", sa.String(64), nullable=True),
    sa.UniqueConstraint("index_id", "filename"),
)

mirror_pages = sa.Table(
    "mirror_pages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("index_id", sa.ForeignKey("indexes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("etag", sa.String(256), nullable=True),
    sa.Column("last_modified", sa.String(64), nullable=True),
    sa.Column("fetched_at", Timestamp, nullable=False),
    # "ok": the upstream lists the project; "missing": it answered 404/410.
    sa.Column("status", sa.String(16), nullable=False),
    # The files the upstream lists, as one record (core.mirror_listing's encoding), and how many.
    # Files get a row of their own only once a client asks for them (their bytes or metadata).
    # NULL: a page stored before listings existed, whose rows are its whole listing.
    sa.Column("listing", sa.LargeBinary, nullable=True),
    sa.Column("listed", sa.Integer, nullable=True),
    # The highest version the listing names (search shows it; the rows may have none of it).
    sa.Column("latest", sa.String(128), nullable=True),
    sa.UniqueConstraint("index_id", "project"),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(256), nullable=True),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", Timestamp, nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # Null for tokens minted for a trusted publisher (they act as the publisher, not a user).
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    sa.Column("publisher_id", sa.ForeignKey("trusted_publishers.id", ondelete="CASCADE"), nullable=True),
    # sha256 of the secret; the secret itself is never stored.
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("description", sa.String(256), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("last_used", Timestamp, nullable=True),
    sa.Column("expires_at", Timestamp, nullable=True),
    # Scope: null = everything the owner may do; else {"indexes": [...] | null,
    # "projects": [...] | null, "permissions": [...] | null}. Never more than the owner holds.
    sa.Column("scope", sa.JSON, nullable=True),
)

groups = sa.Table(
    "groups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", Timestamp, nullable=False),
)

group_members = sa.Table(
    "group_members",
    metadata,
    sa.Column("group_id", sa.ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)

# Grants on one index: principal is "user:<name>", "group:<name>", "authenticated" or "anonymous".
acl_entries = sa.Table(
    "acl_entries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("index_id", sa.ForeignKey("indexes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("principal", sa.String(80), nullable=False),
    sa.Column("permission", sa.String(16), nullable=False),
    sa.UniqueConstraint("index_id", "principal", "permission"),
)

# Who may publish new versions of a project in a hosted index ("user:<name>", "group:<name>",
# "publisher:<id>").
project_owners = sa.Table(
    "project_owners",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("index_id", sa.ForeignKey("indexes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("project", sa.String(200), nullable=False),
    sa.Column("principal", sa.String(80), nullable=False),
    sa.UniqueConstraint("index_id", "project", "principal"),
)

# CI identities (an OIDC issuer and required claims) that may publish to an index.
trusted_publishers = sa.Table(
    "trusted_publishers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("index_id", sa.ForeignKey("indexes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("project", sa.String(200), nullable=True),
    sa.Column("issuer", sa.String(512), nullable=False),
    sa.Column("claims", sa.JSON, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=True),
)

# One row: bumped by every change to credentials or rights (a password, a revoked token, a
# grant), so every worker and replica drops what it remembers within its poll interval.
auth_state = sa.Table(
    "auth_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("generation", sa.BigInteger, nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("actor", sa.String(64), nullable=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("index_name", sa.String(64), nullable=True),
    sa.Column("project", sa.String(200), nullable=True),
    sa.Column("filename", sa.String(255), nullable=True),
    sa.Column("address", sa.String(64), nullable=True),
    sa.Column("detail", sa.JSON, nullable=True),
)
sa.Index("ix_audit_log_at", audit_log.c.at)

#: Per-index counts of what mirrors served, in five-minute buckets (``bucket`` is the bucket's
#: start in Unix seconds); every process adds its own counts (wheelcave.core.traffic).
traffic = sa.Table(
    "traffic",
    metadata,
    sa.Column("index_name", sa.String(64), nullable=False),
    sa.Column("bucket", sa.BigInteger, nullable=False),
    *(sa.Column(name, sa.BigInteger, nullable=False, server_default="0") for name in TRAFFIC_COUNTS),
    sa.PrimaryKeyConstraint("index_name", "bucket"),
)

#: Where an index's events are POSTed (signed with ``secret``): ``events`` is a comma-joined
#: list of event names (wheelcave.core.webhooks.EVENTS), or "*".
webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("index_id", sa.ForeignKey("indexes.id", ondelete="CASCADE"), nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("secret", sa.String(128), nullable=False),
    sa.Column("events", sa.String(200), nullable=False),
    #: Made by an administrator: may reach this machine and private networks (else each
    #: delivery checks where the host resolves to, so a DNS change cannot point it inside).
    sa.Column("allow_private", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=True),
)

#: One event for one webhook: written in the transaction of the change it reports (an outbox),
#: sent by the server's dispatcher, retried with backoff until it is delivered or given up.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("webhook_id", sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending, sending, delivered, failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", Timestamp, nullable=False),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.String(300), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("delivered_at", Timestamp, nullable=True),
)
sa.Index("ix_webhook_deliveries_due", webhook_deliveries.c.status, webhook_deliveries.c.next_attempt_at)
sa.Index("ix_webhook_deliveries_webhook", webhook_deliveries.c.webhook_id, webhook_deliveries.c.id)


def project_lists_files() -> sa.ColumnElement[bool]:
    """Whether a ``projects`` row lists a file: a file row of its own, or (a mirror's project) a
    stored page whose listing has files nobody asked for yet."""
    pages = mirror_pages.c
    return sa.or_(
        sa.exists().where(files.c.project_id == projects.c.id),
        sa.exists().where(pages.index_id == projects.c.index_id, pages.project == projects.c.name, pages.listed > 0),
    )
