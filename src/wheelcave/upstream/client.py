"""The upstream client: one warm httpx connection pool per upstream index.

Project pages are asked for as PEP 691 JSON first (HTML understood), conditionally (ETag,
Last-Modified), with a size cap; credentials come from the upstream URL's userinfo and are
sent only to the upstream's own origin; proxies come from the environment (``HTTP(S)_PROXY``,
``NO_PROXY``), as pip does. Failures raise :class:`UpstreamError` / :class:`UpstreamTimeout`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.to_thread
import httpx

from wheelcave.core.errors import CoreError
from wheelcave.core.redact import mask_url, redact
from wheelcave.core.remote import RemotePage, parse_project_list, parse_project_page
from wheelcave.errors import UpstreamError, UpstreamTimeout
from wheelcave.upstream.h2frames import quiet_data_frames
from wheelcave.upstream.locks import fast_free_locks
from wheelcave.upstream.streams import use_asyncio_streams

_CONTENT_RANGE = re.compile(r"bytes (\d{1,15})-(\d{1,15})/(\d{1,15})")

__all__ = ["Fetched", "Missing", "NotModified", "UpstreamClient", "mask_url"]

log = logging.getLogger("wheelcave.upstream")
_PARSE_INLINE = 256 * 1024
ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"


quiet_data_frames()  # h2 would hex-dump every DATA frame it receives (upstream/h2frames.py)
fast_free_locks()  # a free lock of httpcore's costs no turn of the event loop (upstream/locks.py)


@dataclass(frozen=True)
class Fetched:
    page: RemotePage
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True)
class NotModified:
    pass


@dataclass(frozen=True)
class Missing:
    status: int


class UpstreamClient:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_page_size: int = 32 * 2**20,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        parts = urlsplit(url if url.endswith("/") else url + "/")
        self.auth = (parts.username or "", parts.password or "") if parts.username else None
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        self.base = urlunsplit(parts._replace(netloc=netloc))
        self.origin = (parts.scheme, netloc)
        self.max_page_size = max_page_size
        #: A page request as a whole (httpx's timeouts are per read: an upstream sending a byte
        #: a second would never trip them).
        self.deadline = timeout
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=50),
            follow_redirects=True,
            trust_env=True,
            http2=True,  # used where an https upstream offers it (ALPN); plain HTTP/1.1 otherwise
            transport=transport,
            headers={"User-Agent": "wheelcave"},
        )
        if transport is None:
            use_asyncio_streams(self.client)  # half the CPU a MB of the default backend

    def _auth(self, url: str) -> tuple[str, str] | None:
        parts = urlsplit(url)
        netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        return self.auth if (parts.scheme, netloc) == self.origin else None

    async def aclose(self) -> None:
        await self.client.aclose()

    def project_url(self, project: str) -> str:
        return f"{self.base}{project}/"

    async def _get_capped(self, url: str, headers: dict[str, str], limit: int | None = None) -> tuple[httpx.Response, bytes]:
        try:
            with anyio.fail_after(self.deadline):
                return await self._get_capped_within(url, headers, limit or self.max_page_size)
        except TimeoutError:
            raise UpstreamTimeout(f"upstream {mask_url(url)} did not answer in time") from None

    async def _get_capped_within(self, url: str, headers: dict[str, str], limit: int) -> tuple[httpx.Response, bytes]:
        try:
            async with self.client.stream("GET", url, headers=headers, auth=self._auth(url)) as response:
                if response.status_code != 200:
                    return response, b""
                length = response.headers.get("content-length")
                if length and length.isdigit() and int(length) > limit:
                    msg = f"upstream answer {mask_url(url)} is {length} bytes, over the {limit}-byte limit"
                    raise UpstreamError(msg)
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        msg = f"upstream answer {mask_url(url)} is over the {limit}-byte limit"
                        raise UpstreamError(msg)
                    chunks.append(chunk)
                return response, b"".join(chunks)
        except httpx.TimeoutException:
            raise UpstreamTimeout(f"upstream {mask_url(url)} did not answer in time") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise UpstreamError(f"upstream {mask_url(url)} failed: {type(exc).__name__}: {redact(str(exc))}") from None

    async def fetch_project(self, project: str, etag: str | None = None, last_modified: str | None = None) -> Fetched | NotModified | Missing:
        url = self.project_url(project)
        headers = {"Accept": ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        response, body = await self._get_capped(url, headers)
        if response.status_code == 304:
            return NotModified()
        if response.status_code in {404, 410}:
            return Missing(response.status_code)
        if response.status_code != 200:
            raise UpstreamError(f"upstream {mask_url(url)} answered {response.status_code}")
        try:
            content_type = response.headers.get("content-type", "")
            if len(body) > _PARSE_INLINE:  # a big page: parsed on a thread, the loop keeps serving
                page = await anyio.to_thread.run_sync(parse_project_page, body, content_type, str(response.url))
            else:
                page = parse_project_page(body, content_type, str(response.url))
        except CoreError as exc:
            raise UpstreamError(f"bad page from {mask_url(url)}: {redact(str(exc))}") from None
        if page.problems:  # one line a page, not one a file (.egg, .exe: many pages list dozens)
            shown = "; ".join(page.problems[:3]) + (f"; and {len(page.problems) - 3} more" if len(page.problems) > 3 else "")
            log.info("upstream.skipped_entries url=%s count=%d: %s", mask_url(url), len(page.problems), redact(shown))
        return Fetched(page, response.headers.get("etag"), response.headers.get("last-modified"))

    async def list_projects(self) -> list[str]:
        response, body = await self._get_capped(self.base, {"Accept": ACCEPT})
        if response.status_code != 200:
            raise UpstreamError(f"upstream {mask_url(self.base)} answered {response.status_code}")
        try:
            return parse_project_list(body, response.headers.get("content-type", ""))
        except CoreError as exc:
            raise UpstreamError(f"bad project list from {mask_url(self.base)}: {redact(str(exc))}") from None

    async def fetch_small(self, url: str, limit: int) -> bytes | None:
        """A small file (``.metadata``); None on 404."""
        response, body = await self._get_capped(url, {"Accept-Encoding": "identity"}, limit)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise UpstreamError(f"upstream {mask_url(url)} answered {response.status_code}")
        return body

    async def fetch_range(self, url: str, first: int, last: int | None, limit: int) -> tuple[int, int, bytes] | None:
        """Bytes ``first``..``last`` of a file (or its last ``-first`` bytes when ``last`` is None)
        as (offset, total size, bytes); None when the upstream answers the whole file instead
        (it ignores Range: its body is not read)."""
        wanted = f"bytes={first}" if last is None else f"bytes={first}-{last}"
        headers = {"Range": wanted, "Accept-Encoding": "identity"}
        try:
            with anyio.fail_after(self.deadline):
                async with self.client.stream("GET", url, headers=headers, auth=self._auth(url)) as response:
                    if response.status_code == 200:
                        return None
                    if response.status_code != 206:
                        raise UpstreamError(f"upstream {mask_url(url)} answered {response.status_code} to a range request")
                    found = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", "").strip())
                    if found is None:
                        raise UpstreamError(f"upstream {mask_url(url)} sent a range without a usable Content-Range")
                    start, end, total = (int(x) for x in found.groups())
                    if end < start or end >= total or end - start + 1 > limit:
                        raise UpstreamError(f"upstream {mask_url(url)} sent an impossible range {start}-{end}/{total}")
                    chunks, size = [], 0
                    async for chunk in response.aiter_raw():
                        size += len(chunk)
                        if size > end - start + 1:
                            raise UpstreamError(f"upstream {mask_url(url)} sent more than the range it named")
                        chunks.append(chunk)
                    if size != end - start + 1:
                        raise UpstreamError(f"upstream {mask_url(url)} sent {size} of {end - start + 1} bytes of a range")
                    return start, total, b"".join(chunks)
        except TimeoutError:
            raise UpstreamTimeout(f"upstream {mask_url(url)} did not answer in time") from None
        except httpx.TimeoutException:
            raise UpstreamTimeout(f"upstream {mask_url(url)} did not answer in time") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise UpstreamError(f"upstream {mask_url(url)} failed: {type(exc).__name__}: {redact(str(exc))}") from None

    @asynccontextmanager
    async def download(self, url: str) -> AsyncIterator[httpx.Response]:
        """Stream a file: the response is open (status 200) inside the block."""
        try:
            request = self.client.build_request("GET", url, headers={"Accept-Encoding": "identity"})
            response = await self.client.send(request, stream=True, auth=self._auth(url))
        except httpx.TimeoutException:
            raise UpstreamTimeout(f"upstream {mask_url(url)} did not answer in time") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise UpstreamError(f"upstream {mask_url(url)} failed: {type(exc).__name__}: {redact(str(exc))}") from None
        try:
            if response.status_code != 200:
                raise UpstreamError(f"upstream {mask_url(url)} answered {response.status_code}")
            yield response
        finally:
            await response.aclose()
