"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Error(BaseModel):
    """Every error answer has this shape."""

    error: str = Field(description="A stable kebab-case code, e.g. not-found, file-exists.")
    message: str = Field(description="One line for a person.")


class IndexOut(BaseModel):
    name: str
    kind: Literal["hosted", "mirror", "virtual"]
    config: dict[str, Any]


class IndexCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    kind: Literal["hosted", "mirror", "virtual"]
    config: dict[str, Any] = Field(default_factory=dict)


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


class TokenOut(BaseModel):
    id: int
    user: str
    prefix: str
    description: str | None
    index: str | None
    permissions: list[str] | None
    created_at: datetime


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str | None = Field(default=None, description="Whose token (admins only; default: yourself).")
    description: str | None = Field(default=None, max_length=256)
    index: str | None = Field(default=None, description="Scope the token to one index.")
    permissions: list[Literal["upload", "yank", "delete", "manage"]] | None = None


class TokenCreated(TokenOut):
    token: str = Field(description="The secret: shown once, stored only as a hash.")


class WhoAmI(BaseModel):
    name: str | None
    is_admin: bool
    index: str | None
    permissions: list[str]
