"""A project's long description as safe HTML, the way the public index shows it:
readme_renderer for reStructuredText, Markdown (GitHub flavour) and plain text, whose output is
cleaned by nh3 (no script, no event handler, no ``javascript:`` URL survives)."""

from __future__ import annotations

import functools
import html

import nh3

__all__ = ["render_readme"]

#: Larger descriptions are shown as plain text (rendering is not free, and nobody reads 2 MB).
MAX_RENDERED = 512 * 1024


def render_readme(text: str | None, content_type: str | None) -> str:
    """Safe HTML for ``text``; plain text (escaped) when the markup does not render. Rendered
    once per text (a release's description never changes; reStructuredText costs tens of ms)."""
    if not text:
        return ""
    return _rendered(text, content_type)


@functools.lru_cache(maxsize=256)
def _rendered(text: str, content_type: str | None) -> str:
    kind = (content_type or "text/x-rst").split(";")[0].strip().lower()
    rendered: str | None = None
    if len(text) <= MAX_RENDERED:
        try:
            if kind == "text/markdown":
                from readme_renderer.markdown import render as markdown

                variant = "GFM" if "variant=commonmark" not in (content_type or "").lower() else "CommonMark"
                rendered = markdown(text, variant=variant)
            elif kind == "text/plain":
                rendered = None
            else:
                from readme_renderer.rst import render as rst

                rendered = rst(text)
        except Exception:  # noqa: BLE001 - any renderer failure falls back to plain text
            rendered = None
    if rendered is None:
        return f"<pre>{html.escape(text)}</pre>"
    # readme_renderer cleans its output already; a second, strict pass keeps only what a page
    # needs (a renderer upgrade must not widen what reaches the browser).
    return nh3.clean(rendered, url_schemes={"http", "https", "mailto"}, link_rel="nofollow noopener")
