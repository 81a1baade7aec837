"""Streaming ``multipart/form-data`` for uploads: the ``content`` part goes straight into a
temporary blob, hashed on the way; the body is never held whole in memory."""

from __future__ import annotations

from email.message import Message

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from wheelcave.errors import NO_SPACE, BadRequest, InsufficientStorage, PayloadTooLarge
from wheelcave.indexes.hosted import UploadForm
from wheelcave.storage.base import BlobStore

__all__ = ["read_upload_form"]

_MAX_FIELDS_BYTES = 16 * 2**20  # all text fields and part headers together (long descriptions, attestations)
#: Parts in one form: twine sends about 30, and one per classifier or requirement; 200 MB of
#: empty fields would otherwise be a million parts to parse.
_MAX_PARTS = 2000
_FILE_PARTS = {"content"}
_IGNORED_FILE_PARTS = {"gpg_signature"}


def _disposition(value: str) -> tuple[str | None, str | None]:
    msg = Message()
    msg["content-disposition"] = value
    name = msg.get_param("name", header="content-disposition")
    filename = msg.get_param("filename", header="content-disposition")

    def text(v: object) -> str | None:
        if v is None:
            return None
        if isinstance(v, tuple):
            return str(v[2])
        return str(v)

    return text(name), text(filename)


class _FormBuilder:
    def __init__(self, blobs: BlobStore, max_file_size: int) -> None:
        self.blobs = blobs
        self.max_file_size = max_file_size
        self.form = UploadForm()
        self.ended = False
        self._fields_bytes = 0
        self._parts = 0
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, str] = {}
        self._target: str = "skip"  # "field", "file" or "skip"
        self._name = ""
        self._value = bytearray()

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.part_begin,
            "on_header_field": lambda d, s, e: self._header_bytes(self._header_field, d[s:e]),
            "on_header_value": lambda d, s, e: self._header_bytes(self._header_value, d[s:e]),
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.part_data,
            "on_part_end": self.part_end,
            "on_end": self.end,
        }

    def _count(self, size: int) -> None:
        self._fields_bytes += size
        if self._fields_bytes > _MAX_FIELDS_BYTES:
            raise PayloadTooLarge("Form fields too large: at most 16 MiB besides the file.")

    def _header_bytes(self, into: bytearray, data: bytes) -> None:
        self._count(len(data))
        into.extend(data)

    def part_begin(self) -> None:
        self._parts += 1
        if self._parts > _MAX_PARTS:
            raise PayloadTooLarge(f"Too many form fields: at most {_MAX_PARTS}.")
        self._headers = {}
        self._value = bytearray()

    def header_end(self) -> None:
        key = self._header_field.decode("latin-1").strip().lower()
        self._headers[key] = self._header_value.decode("utf-8", "replace").strip()
        self._header_field.clear()
        self._header_value.clear()

    def headers_finished(self) -> None:
        name, filename = _disposition(self._headers.get("content-disposition", ""))
        self._name = name or ""
        if filename is not None and self._name in _FILE_PARTS:
            if self.form.temp is not None:
                raise BadRequest("Only one file may be uploaded per request.")
            self.form.filename = filename
            self.form.content_type = self._headers.get("content-type")
            self.form.temp = self.blobs.new_temp()
            self._target = "file"
        elif filename is not None and self._name in _IGNORED_FILE_PARTS:
            self._target = "skip"
        else:
            self._target = "field"

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self._target == "file":
            assert self.form.temp is not None
            if self.form.temp.size + (end - start) > self.max_file_size:
                raise PayloadTooLarge(
                    f"File too large: the limit is {self.max_file_size} bytes."
                )
            self.form.temp.write(data[start:end])
        elif self._target == "field":
            self._count(end - start)
            self._value.extend(data[start:end])

    def part_end(self) -> None:
        if self._target == "field":
            value = self._value.decode("utf-8", "replace")
            self.form.fields.setdefault(self._name, []).append(value)
        self._target = "skip"

    def end(self) -> None:
        self.ended = True


async def read_upload_form(request: Request, blobs: BlobStore, max_file_size: int) -> UploadForm:
    """Parse the request body; on any error no temporary file is left behind."""
    content_type, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise BadRequest("The upload must be a multipart/form-data request.")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_file_size + _MAX_FIELDS_BYTES:
        raise PayloadTooLarge(f"File too large: the limit is {max_file_size} bytes.")
    builder = _FormBuilder(blobs, max_file_size)
    try:
        parser = MultipartParser(boundary, builder.callbacks())  # type: ignore[arg-type]
        async for chunk in request.stream():
            if chunk:
                parser.write(chunk)
        parser.finalize()
        if not builder.ended:
            raise BadRequest("The upload body is incomplete (truncated multipart data).")
    except MultipartParseError as exc:
        _discard(builder.form)
        raise BadRequest(f"Malformed multipart body: {exc}") from None
    except OSError as exc:
        _discard(builder.form)
        if exc.errno in NO_SPACE:
            raise InsufficientStorage("No space left on the server's storage; the upload was not kept.") from None
        raise
    except (Exception, ClientDisconnect, BaseException):
        _discard(builder.form)
        raise
    return builder.form


def _discard(form: UploadForm) -> None:
    if form.temp is not None:
        form.temp.discard()
        form.temp = None
