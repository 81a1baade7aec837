"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Error(BaseModel):
    """Every error answer has this shape."""

    error: str = Field(description="A stable kebab-case code, e.g. not-found, file-exists.")
    message: str = Field(description="One line for a person.")
    code: str = Field(description="The status and the message, as the public index's upload API words it.")
    title: str = Field(description="The status's reason phrase.")


class IndexOut(BaseModel):
    name: str
    kind: Literal["hosted", "mirror", "virtual"]
    config: dict[str, Any]


class IndexCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    kind: Literal["hosted", "mirror", "virtual"]
    config: dict[str, Any] = Field(default_factory=dict)
    private: bool = Field(default=False, description="Start with no read grant (administrators only, until granted).")


class IndexPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    config: dict[str, Any] = Field(description="Settings to change; others keep their values.")


class ProjectSummary(BaseModel):
    name: str
    display_name: str


class FileOut(BaseModel):
    filename: str
    version: str
    url: str
    sha256: str
    size: int | None
    requires_python: str | None
    yanked: bool
    yanked_reason: str | None
    upload_time: datetime | None
    metadata_sha256: str | None


class ProjectOut(BaseModel):
    name: str
    display_name: str | None
    versions: list[str]
    files: list[FileOut]


class ReleaseOut(BaseModel):
    project: str
    version: str
    files: list[FileOut]


class YankIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=1000)


class Changed(BaseModel):
    files: list[str]


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    project: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=128)
    source: str = Field(alias="from", min_length=1, max_length=64)
    target: str = Field(alias="to", min_length=1, max_length=64)


class FetchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: str = Field(min_length=1, max_length=200)
    version: str | None = Field(default=None, max_length=128)


class SearchHit(BaseModel):
    name: str
    display_name: str
    version: str
    summary: str | None
    index: str


class AuditEntry(BaseModel):
    id: int
    at: datetime
    actor: str | None
    action: str
    index: str | None
    project: str | None
    filename: str | None
    address: str | None
    detail: dict[str, Any] | None


class UserOut(BaseModel):
    name: str
    is_admin: bool


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=8, max_length=1000)
    is_admin: bool = False


Permission = Literal["read", "upload", "yank", "delete", "manage"]
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str | None = Field(default=None, min_length=8, max_length=1000)
    is_admin: bool | None = Field(default=None, description="Administrators only.")


class TokenOut(BaseModel):
    id: int
    user: str | None = Field(description="The owner; null for a trusted publisher's minted token.")
    prefix: str
    description: str | None
    indexes: list[str] | None = Field(description="The indexes it may act on; null: every one its owner may.")
    projects: list[str] | None = Field(description="The projects it may change; null: any.")
    permissions: list[str] | None = Field(description="What it may do; null: whatever its owner may.")
    created_at: datetime
    last_used: datetime | None
    expires_at: datetime | None


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str | None = Field(default=None, description="Whose token (admins only; default: yourself).")
    description: str | None = Field(default=None, max_length=256)
    index: str | None = Field(default=None, max_length=64, description="Scope the token to one index.")
    indexes: list[str] | None = Field(default=None, max_length=100, description="Scope the token to these indexes.")
    projects: list[str] | None = Field(default=None, max_length=1000, description="Scope the token to these projects.")
    permissions: list[Permission] | None = None
    expires_in: str | None = Field(default=None, max_length=32, description="Lifetime, e.g. 90d, 12h, 3600.")


class TokenCreated(TokenOut):
    token: str = Field(description="The secret: shown once, stored only as a hash.")


class WhoAmI(BaseModel):
    name: str | None
    is_admin: bool
    groups: list[str] = Field(default_factory=list)
    indexes: list[str] | None = None
    projects: list[str] | None = None
    permissions: list[str] | None = None
    expires_at: datetime | None = None


class GroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=_NAME)


class GroupOut(BaseModel):
    name: str
    members: list[str]


class MembersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    users: list[str] = Field(min_length=1, max_length=1000)


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    principal: str = Field(min_length=1, max_length=80,
                           description="NAME or user:NAME, group:NAME, authenticated or anonymous.")
    permissions: list[Permission] = Field(min_length=1)


class AclEntry(BaseModel):
    principal: str
    permissions: list[str]


class OwnerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    principal: str = Field(min_length=1, max_length=80, description="NAME, user:NAME or group:NAME.")


class PublisherIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    issuer: str = Field(min_length=8, max_length=512, description="The OIDC issuer URL (its iss claim).")
    claims: dict[str, str] = Field(description="Claims the CI's token must carry, e.g. repository, workflow, "
                                   "environment.")
    project: str | None = Field(default=None, max_length=200, description="Only this project (default: any).")


class PublisherOut(BaseModel):
    id: int
    index: str
    project: str | None
    issuer: str
    claims: dict[str, str]
    created_at: datetime
    created_by: str | None


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2048, description="Where to POST events (http or https).")
    events: list[str] = Field(default_factory=lambda: ["*"], max_length=10,
                              description="upload, yank, unyank, delete, promote, or * for all.")
    secret: str | None = Field(default=None, min_length=16, max_length=128,
                               description="The HMAC-SHA256 key; made for you when left out.")


class WebhookOut(BaseModel):
    id: int
    index: str
    url: str
    events: list[str]
    created_at: datetime
    created_by: str | None


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Shown once: receivers check X-Wheelcave-Signature with it.")


class DeliveryOut(BaseModel):
    id: int
    event: str
    status: Literal["pending", "sending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
