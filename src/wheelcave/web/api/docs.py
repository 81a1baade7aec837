"""The API's interactive docs at ``/api/v1/docs``: Swagger UI served from the
``swagger-ui-bundle`` package, so the page loads nothing from another origin and runs no
inline script (its start-up is a file of its own)."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

from wheelcave.errors import NotFound
from wheelcave.web.headers import CSP

__all__ = ["router"]

_ASSETS = Path(swagger_ui_bundle.swagger_ui_path)
_SERVED = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript", "favicon-32x32.png": "image/png"}
# Swagger UI sets style attributes from its scripts: styles may be inline on this page, scripts may not.
_DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>wheelcave API</title>
<link rel="stylesheet" href="docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/assets/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script src="docs/init.js"></script></body></html>
"""
_INIT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({url: "openapi.json", dom_id: "#swagger-ui", deepLinking: true});
});
"""

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def docs() -> Response:
    return HTMLResponse(_PAGE, headers={"Content-Security-Policy": _DOCS_CSP})


@router.get("/docs/init.js")
async def init() -> Response:
    return Response(_INIT, media_type="text/javascript")


@router.get("/docs/assets/{name}")
async def asset(name: str) -> Response:
    if name not in _SERVED:
        raise NotFound(f"No asset {name!r}.")
    return FileResponse(_ASSETS / name, media_type=_SERVED[name], headers={"Cache-Control": "public, max-age=86400"})
