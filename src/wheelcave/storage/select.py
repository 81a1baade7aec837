"""Which blob store a data folder uses: the local folder (``[storage] path``), or an object
store (``[storage] url``) with that folder as its local spool."""

from __future__ import annotations

from pathlib import Path

from wheelcave.storage.base import BlobStore

__all__ = ["OBJECT_STORE_SCHEMES", "open_blob_store"]

OBJECT_STORE_SCHEMES = ("s3://", "s3a://", "gs://", "az://", "azure://", "abfs://", "abfss://")


def open_blob_store(blob_dir: Path, url: str = "") -> BlobStore:
    if url == "memory:":
        msg = "an in-memory blob store cannot be opened by another process"
        raise ValueError(msg)
    if not url:
        from wheelcave.storage.filesystem import FilesystemBlobStore

        return FilesystemBlobStore(blob_dir)
    from wheelcave.storage.objectstore import ObjectBlobStore

    return ObjectBlobStore(url, blob_dir)
