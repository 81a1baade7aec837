"""Hosted indexes: private packages, uploaded through the legacy upload API.

Upload pipeline (architecture §5): the body has already been streamed into a temporary blob
with its digests; here the form and the archive are checked, then the blob is committed
(content-addressed, so an orphan is harmless) and only then one transaction inserts the row.
Identical bytes under an existing filename answer 200 (a retry); other bytes, 409.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
from packaging.utils import NormalizedName

from wheelcave.core.errors import CoreError
from wheelcave.core.filenames import DistFilename, parse_dist_filename
from wheelcave.core.metadata import CoreMetadata, parse_strict
from wheelcave.core.names import is_valid_project_name, validate_project_name
from wheelcave.core.pages import FileEntry, ProjectPage
from wheelcave.core.versions import same_release
from wheelcave.db.repository import IndexGone, FileRecord, IndexRecord, NewFile, Repository
from wheelcave.errors import NO_SPACE, BadRequest, Conflict, Forbidden, Gone, InsufficientStorage, NotFound
from wheelcave.indexes.archive import ArchiveError, MetadataTooLarge, read_core_metadata
from wheelcave.indexes.base import files_url
from wheelcave.indexes.known import KnownNames
from wheelcave.storage.base import BlobStore, TempBlob

__all__ = ["HostedIndex", "UploadForm", "UploadResult", "file_entry", "inspect_archive"]

_FILETYPES = {"wheel": "bdist_wheel", "sdist": "sdist"}


@dataclass(frozen=True)
class HostedPolicy:
    """What a hosted index allows. ``immutable`` (the default, as on the public index): a
    filename, once used, never takes other bytes, even after a delete. ``allow_overwrite``
    (scratch indexes) replaces a file on re-upload; it needs ``immutable = false``."""

    immutable: bool = True
    allow_overwrite: bool = False
    allow_delete: bool = True
    max_file_size: int | None = None
    #: Retention for ``wheelcave gc``: keep the newest N pre-releases per project.
    prerelease_keep: int | None = None
    #: The first uploader of a project owns it; others need an owner's grant to publish to it.
    project_ownership: bool = True

    KEYS = ("immutable", "allow_overwrite", "allow_delete", "max_file_size", "prerelease_keep", "project_ownership")

    @classmethod
    def from_config(cls, name: str, config: Mapping[str, Any]) -> HostedPolicy:
        unknown = set(config) - set(cls.KEYS)
        if unknown:
            raise BadRequest(f"Unknown settings for hosted index {name!r}: {', '.join(sorted(unknown))}.")
        for key in ("immutable", "allow_overwrite", "allow_delete", "project_ownership"):
            if key in config and not isinstance(config[key], bool):
                raise BadRequest(f"{key} must be true or false.")
        for key in ("max_file_size", "prerelease_keep"):
            value = config.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < (1 if key == "max_file_size" else 0)):
                raise BadRequest(f"{key} must be a whole number{' of bytes' if key == 'max_file_size' else ''}.")
        policy = cls(**{k: config[k] for k in cls.KEYS if k in config})
        if policy.immutable and policy.allow_overwrite:
            raise BadRequest(
                f"Index {name!r} cannot be immutable and allow overwrites: set immutable = false first."
            )
        return policy


@dataclass
class UploadForm:
    """A parsed upload request: form fields (repeatable) and the streamed ``content`` part."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    filename: str | None = None
    content_type: str | None = None
    temp: TempBlob | None = None

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class UploadResult:
    file: FileRecord
    created: bool
    warnings: Sequence[str] = ()


def file_entry(r: FileRecord) -> FileEntry:
    return FileEntry(
        filename=r.filename,
        url=files_url(r.sha256, r.filename),
        sha256=r.sha256,
        size=r.size,
        version=r.version,
        requires_python=r.requires_python,
        yanked=r.yanked,
        yanked_reason=r.yanked_reason,
        upload_time=r.upload_time,
        metadata_sha256=r.metadata_sha256,
        extra_digests={k: v for k, v in (("md5", r.md5), ("blake2b_256", r.blake2b_256)) if v},
        python_tag=r.python_tag,
        core_metadata=r.core_metadata,
    )


class HostedIndex:
    kind = "hosted"
    private = True

    def __init__(
        self, record: IndexRecord, repo: Repository, blobs: BlobStore, *, max_metadata_size: int,
        generation: Callable[[], int] | None = None,
    ) -> None:
        self.record = record
        self.name = record.name
        self.id = record.id
        self.repo = repo
        self.blobs = blobs
        self.max_metadata_size = max_metadata_size
        self.policy = HostedPolicy.from_config(record.name, record.config)
        #: The index's generation as this process knows it (the page cache's token for it).
        self.generation = generation
        #: Projects found absent, with the generation they were absent at: a virtual index asks
        #: its hosted members about every project a client resolves, nearly all of them public.
        self._absent: dict[str, int] = {}
        #: Its project names at the generation this process knows: a new name needs no query.
        self.known = KnownNames(lambda limit: repo.project_names(self.id, limit))

    def dependencies(self) -> Sequence[int]:
        return (self.id,)

    def cache_ttl(self) -> float | None:
        return None

    async def project(
        self, name: NormalizedName, *, with_metadata: bool = False, cooldown: bool = True
    ) -> ProjectPage | None:
        del cooldown  # a hosted index's own files are never held back
        if not is_valid_project_name(name):
            return None
        # Absent at the generation this process knows: as fresh as a cached page would be (any
        # write to the index bumps it; this process's own writes at once, others' when seen).
        generation = self.generation() if self.generation else None
        if generation is not None and (
            self._absent.get(name) == generation or not await self.known.may_have(name, generation)
        ):
            return None
        if not with_metadata:
            found = await self.repo.page_entries(self.id, name)
            if found is None:
                self._note_absent(name, generation)
                return None
            return ProjectPage(name=name, files=found[1], display_name=found[0])
        records = await self.repo.project_files(self.id, name, with_metadata=True)
        if not records:
            self._note_absent(name, generation)
            return None
        return ProjectPage(
            name=name, files=[file_entry(r) for r in records], display_name=records[0].display_name
        )

    def _note_absent(self, name: str, generation: int | None) -> None:
        if generation is None:
            return
        if len(self._absent) >= 100_000:
            self._absent.clear()
        self._absent[name] = generation

    async def list_projects(self) -> list[tuple[str, str]]:
        return await self.repo.list_projects(self.id)

    async def set_yanked(
        self, project: str, version: str | None, *, yanked: bool, reason: str | None = None,
        filename: str | None = None, actor: str | None = None, address: str | None = None,
    ) -> list[str]:
        """PEP 592 yank (or unyank) of a release or one file; NotFound if nothing matches."""
        try:
            name = validate_project_name(project)
        except CoreError as exc:
            raise BadRequest(str(exc)) from None
        audit = {
            "actor": actor, "action": "file.yank" if yanked else "file.unyank",
            "index_name": self.name, "project": name, "filename": filename, "address": address,
        }
        changed = await self.repo.set_yanked(
            self.id, name, version, filename, yanked=yanked, reason=reason or None, audit=audit
        )
        if not changed:
            what = filename or (f"{name} {version}" if version else name)
            raise NotFound(f"Nothing to {'yank' if yanked else 'unyank'}: no {what} in index {self.name!r}.")
        return changed

    async def delete(
        self, project: str, version: str | None = None, filename: str | None = None, *,
        actor: str | None = None, address: str | None = None,
    ) -> list[str]:
        if not self.policy.allow_delete:
            raise Forbidden(f"Index {self.name!r} does not allow deletes (allow_delete = false).")
        try:
            name = validate_project_name(project)
        except CoreError as exc:
            raise BadRequest(str(exc)) from None
        audit = {"actor": actor, "action": "file.delete", "index_name": self.name, "project": name,
                 "filename": filename, "address": address}
        deleted = await self.repo.delete_files(self.id, name, version, filename, audit)
        if not deleted:
            what = filename or (f"{name} {version}" if version else name)
            raise NotFound(f"Nothing to delete: no {what} in index {self.name!r}.")
        return deleted

    async def receive(
        self, records: Sequence[FileRecord], *, source: str, actor: str | None, address: str | None = None
    ) -> list[str]:
        """Promotion into this index: list the same bytes here, refusing what the policy forbids."""
        todo = []
        for r in records:
            existing = await self.repo.find_file(self.id, r.filename)
            if existing is not None:
                if existing.sha256 == r.sha256:
                    continue  # promoted before: nothing to do
                if not self.policy.allow_overwrite:
                    raise Conflict(f"File already exists: {r.filename} in index {self.name!r} has other bytes")
                raise Conflict(f"{r.filename} exists in {self.name!r}; promotion never overwrites")
            if self.policy.immutable and await self.repo.find_tombstone(self.id, r.filename):
                raise Conflict(f"File already exists: {r.filename} was deleted from {self.name!r}, which never takes a filename twice")
            todo.append(r)
        if todo:
            audit = {"actor": actor, "action": "release.promote", "index_name": self.name,
                     "project": records[0].project, "address": address,
                     "detail": {"from": source, "files": [r.filename for r in todo]}}
            return await self.repo.copy_files(todo, self.id, audit)
        return []

    # ------------------------------------------------------------ upload

    async def upload(
        self, form: UploadForm, *, uploader: str, address: str | None, upload_time: datetime | None = None,
    ) -> UploadResult:
        """Validate and store one uploaded file; the temp blob is consumed either way.
        ``upload_time``: when the file was first published (an import), if not now."""
        try:
            return await self._upload(form, uploader=uploader, address=address, upload_time=upload_time)
        except OSError as exc:
            if exc.errno in NO_SPACE:
                raise InsufficientStorage("No space left on the server's storage; the upload was not kept.") from None
            raise
        finally:
            if form.temp is not None:
                form.temp.discard()  # a no-op once committed (the file was moved)

    async def _upload(
        self, form: UploadForm, *, uploader: str, address: str | None, upload_time: datetime | None,
    ) -> UploadResult:
        dist, name = _check_form(form)
        temp = form.temp
        assert temp is not None  # _check_form refuses a form without content
        existing = await self.repo.find_file(self.id, dist.filename)
        if existing is not None and (existing.sha256 == temp.digests.sha256 or not self.policy.allow_overwrite):
            return _same_or_conflict(existing, temp.digests.sha256)
        if existing is None and self.policy.immutable and await self.repo.find_tombstone(self.id, dist.filename):
            raise Conflict(
                f"File already exists: {dist.filename} was used by a file that has since been deleted, "
                "and this index never takes a filename twice"
            )
        metadata_bytes = await anyio.to_thread.run_sync(self._metadata_bytes, temp, dist)
        try:
            meta = parse_strict(metadata_bytes)
        except CoreError as exc:
            raise BadRequest(f"{exc}. See the core metadata specification.") from None
        _check_metadata(meta, dist, name, form)
        # The blob is committed before its row, so a row never points at missing bytes.
        sha256 = await anyio.to_thread.run_sync(self.blobs.commit, temp)
        metadata_sha = None
        if dist.kind == "wheel":  # PEP 658 metadata for wheels only, as on the public index
            metadata_sha = await anyio.to_thread.run_sync(self.blobs.put_bytes, metadata_bytes)
        new = NewFile(
            index_id=self.id, project=dist.project, display_name=meta.name,
            filename=dist.filename, version=str(meta.version), kind=dist.kind,
            python_tag=dist.python_tag, sha256=sha256, md5=temp.digests.md5,
            blake2b_256=temp.digests.blake2b_256, size=temp.size,
            requires_python=meta.requires_python, uploader=uploader,
            metadata_sha256=metadata_sha, core_metadata=dict(meta.fields),
            metadata_size=len(metadata_bytes), upload_time=upload_time,
        )
        audit = {
            "actor": uploader, "action": "file.upload", "index_name": self.name,
            "project": dist.project, "filename": dist.filename, "address": address,
            "detail": {"sha256": sha256, "size": temp.size, "version": str(meta.version)},
        }
        if existing is not None:  # allow_overwrite: replace in place
            audit["action"] = "file.overwrite"
            replaced = await self.repo.replace_file(existing.id, new, audit)
            assert replaced is not None
            return UploadResult(file=replaced, created=True, warnings=meta.warnings)
        for _ in range(3):
            try:
                record = await self.repo.add_file(new, audit)
            except IndexGone:
                raise NotFound(f"Index {self.name!r} was deleted while the upload was written.") from None
            if record is not None:
                return UploadResult(file=record, created=True, warnings=meta.warnings)
            # lost a race for this filename: the unique constraint decided
            existing = await self.repo.find_file(self.id, dist.filename)
            if existing is not None:
                return _same_or_conflict(existing, sha256)
            # the winner's row was deleted meanwhile: the name is free again (unless tombstoned)
            if self.policy.immutable and await self.repo.find_tombstone(self.id, dist.filename):
                raise Conflict(f"File already exists: {dist.filename} was used by a file that has since been deleted, "
                               "and this index never takes a filename twice")
        raise Conflict(f"{dist.filename} is being uploaded and deleted at once; try again.", code="concurrent-change")

    def _metadata_bytes(self, temp: TempBlob, dist: DistFilename) -> bytes:
        temp.finish()
        try:
            return read_core_metadata(temp.path, dist, self.max_metadata_size)
        except MetadataTooLarge as exc:
            raise BadRequest(str(exc), code="metadata-too-large") from None
        except ArchiveError as exc:
            raise BadRequest(str(exc), code="invalid-archive") from None


def inspect_archive(path: Path, filename: str, max_metadata_size: int) -> tuple[DistFilename, CoreMetadata, bytes]:
    """The checks an upload makes of its file, for a file on disk (imports): a valid
    distribution filename, an archive whose core metadata parses strictly and names the same
    project and version. Raises BadRequest with the upload's message."""
    try:
        dist = parse_dist_filename(filename)
    except CoreError as exc:
        raise BadRequest(str(exc), code="invalid-filename") from None
    try:
        metadata_bytes = read_core_metadata(path, dist, max_metadata_size)
    except MetadataTooLarge as exc:
        raise BadRequest(str(exc), code="metadata-too-large") from None
    except ArchiveError as exc:
        raise BadRequest(str(exc), code="invalid-archive") from None
    try:
        meta = parse_strict(metadata_bytes)
    except CoreError as exc:
        raise BadRequest(f"{exc}. See the core metadata specification.") from None
    form = UploadForm(fields={"name": [dist.project], "version": [str(dist.version)]}, filename=filename)
    _check_metadata(meta, dist, validate_project_name(dist.project), form)
    return dist, meta, metadata_bytes


def _same_or_conflict(existing: FileRecord, sha256: str) -> UploadResult:
    if hmac.compare_digest(existing.sha256, sha256):
        return UploadResult(file=existing, created=False)
    raise Conflict(f"File already exists: {existing.filename}")


def _check_form(form: UploadForm) -> tuple[DistFilename, NormalizedName]:
    action = form.get(":action")
    if action in {"submit", "doc_upload", "upload_docs"}:
        raise Gone(f"The {action!r} action is not supported; upload files with 'file_upload'.")
    if action not in {None, "file_upload"}:
        raise BadRequest(f"Unknown :action {action!r}.")
    version = form.get("protocol_version")
    if version not in {None, "1"}:
        raise BadRequest("Unknown protocol version.")
    if form.temp is None or not form.filename:
        raise BadRequest("Upload payload does not have a file.")
    if form.content_type and form.content_type.lower().startswith("image/"):
        raise BadRequest("Invalid distribution file: the content part is typed as an image.")
    try:
        dist = parse_dist_filename(form.filename)
    except CoreError as exc:
        raise BadRequest(str(exc), code="invalid-filename") from None
    name_field = form.get("name")
    if not name_field:
        raise BadRequest("The 'name' field is required.")
    try:
        name = validate_project_name(name_field)
    except CoreError as exc:
        raise BadRequest(str(exc), code="invalid-name") from None
    if not form.get("version"):
        raise BadRequest("The 'version' field is required.")
    filetype = form.get("filetype")
    if filetype is not None and filetype != _FILETYPES[dist.kind]:
        raise BadRequest(f"filetype {filetype!r} does not match {dist.filename!r}.")
    _check_digests(form)
    return dist, name


def _check_digests(form: UploadForm) -> None:
    assert form.temp is not None
    computed = {
        "sha256_digest": form.temp.digests.sha256,
        "blake2_256_digest": form.temp.digests.blake2b_256,
        "md5_digest": form.temp.digests.md5,
    }
    given = {k: (form.get(k) or "").strip().lower() for k in computed}
    given = {k: v for k, v in given.items() if v}
    if not given:
        raise BadRequest("Include at least one message digest (sha256_digest, blake2_256_digest).")
    for key, value in given.items():
        if not hmac.compare_digest(value, computed[key]):
            raise BadRequest(
                f"The digest supplied does not match a digest calculated from the uploaded file ({key})."
            )


def _check_metadata(meta: CoreMetadata, dist: DistFilename, name: NormalizedName, form: UploadForm) -> None:
    try:
        meta_name = validate_project_name(meta.name)
    except CoreError as exc:
        raise BadRequest(f"Invalid Name in the file's core metadata: {exc}") from None
    if meta_name != name:
        raise BadRequest(
            f"The name field {form.get('name')!r} does not match the file's metadata Name {meta.name!r}."
        )
    if not dist.matches(meta.name, meta.version):
        raise BadRequest(
            f"Filename {dist.filename!r} does not match the file's metadata "
            f"(Name {meta.name!r}, Version {meta.version})."
        )
    form_version = form.get("version") or ""
    if not same_release(form_version, str(meta.version)):
        raise BadRequest(
            f"The version field {form_version!r} does not match the file's metadata Version {meta.version}."
        )
