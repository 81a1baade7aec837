"""Signed-in pages: sign in and out, API tokens (made and revoked; a new one shown once),
yanking and unyanking a release, and the audit log for administrators. Every form posts a
CSRF token (see :mod:`wheelcave.web.ui.session`); every action is checked with the same
rights as the API (``require``)."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from wheelcave.auth.admin import Actor
from wheelcave.core.names import is_valid_project_name, normalize
from wheelcave.errors import BadRequest, NotFound, Unauthorized
from wheelcave.indexes.hosted import HostedIndex
from wheelcave.indexes.mirror import MirrorIndex
from wheelcave.web import actions
from wheelcave.web.access import require
from wheelcave.web.deps import client_address, services, site_url
from wheelcave.web.ui.render import page, render, when
from wheelcave.web.ui.session import check_csrf, end_session, start_session

__all__ = ["routes"]

_MAX_FORM = 64 * 1024


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form, its CSRF token checked."""
    if int(request.headers.get("content-length") or 0) > _MAX_FORM:
        raise BadRequest("This form is too large.")
    form = await request.form(max_files=0, max_fields=50)
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    check_csrf(request, values.get("csrf"))
    return values


def _local(target: str | None, fallback: str) -> str:
    """Only a path on this site (never ``//other`` or a scheme) may be where a form returns to."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\\\" in target or urlsplit(target).scheme:
        return fallback
    return target


def _root(request: Request) -> str:
    return urlsplit(site_url(request)).path or "/"


@page
async def login_form(request: Request) -> Response:
    return await render(request, "login.html", next=_local(request.query_params.get("next"), _root(request)), error=None)


@page
async def login(request: Request) -> Response:
    form = await _form(request)
    name, password = form.get("username", "").strip(), form.get("password", "")
    target = _local(form.get("next"), _root(request))
    if not name or not password:
        return await render(request, "login.html", 400, next=target, error="Give your user name and password.")
    header = "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()
    try:  # the API's sign-in: the same throttling, hashing and audit of failures
        who = await services(request).auth.authenticate(header, client_address(request))
    except Unauthorized:
        return await render(request, "login.html", 401, next=target, error="Wrong user name or password.")
    if who is None:
        return await render(request, "login.html", 401, next=target, error="Wrong user name or password.")
    response = RedirectResponse(target, status_code=303)
    await start_session(request, response, who)
    return response


@page
async def logout(request: Request) -> Response:
    await _form(request)
    response = RedirectResponse(_root(request), status_code=303)
    end_session(response)
    return response


def _signed_in(request: Request) -> Any:
    who = request.scope.get("wheelcave.principal")
    if who is None:
        raise Unauthorized("Sign in first.")
    return who


def _rows(listed: Any, owner: str) -> list[dict[str, Any]]:
    return [{"id": t.id, "prefix": t.prefix, "description": t.description or "", "expires": when(t.expires_at),
             "last_used": when(t.last_used), "scope": json.dumps(dict(t.scope), sort_keys=True) if t.scope else "everything you may do"}
            for t in listed if t.user_name == owner]


@page
async def tokens(request: Request) -> Response:
    who = _signed_in(request)
    listed = await services(request).accounts.list_tokens(who.name)
    return await render(request, "tokens.html", tokens=_rows(listed, who.name), created=None)


@page
async def token_create(request: Request) -> Response:
    who = _signed_in(request)
    form = await _form(request)
    description = form.get("description", "").strip()[:200] or None
    svc = services(request)
    _, secret = await svc.people.create_token(who.name, description=description,
                                              actor=Actor(who.name, client_address(request)))
    listed = await svc.accounts.list_tokens(who.name)
    response = await render(request, "tokens.html", 201, tokens=_rows(listed, who.name), created=secret)
    response.headers["Cache-Control"] = "no-store"  # the secret is shown once, and never cached
    return response


@page
async def token_revoke(request: Request) -> Response:
    who = _signed_in(request)
    await _form(request)
    try:
        token_id = int(request.path_params["token_id"])
    except ValueError:
        raise NotFound("No such token.") from None
    await services(request).people.revoke_token(token_id, by=who, actor=Actor(who.name, client_address(request)))
    return RedirectResponse(f"{_root(request)}account/tokens", status_code=303)


async def _set_yank(request: Request, yanked: bool) -> Response:
    index_name, project, version = (request.path_params[k] for k in ("index", "project", "version"))
    form = await _form(request)
    project = normalize(project)
    who = await require(request, "yank", index_name, project)
    index = await services(request).registry.get(index_name)
    if not isinstance(index, HostedIndex):
        raise BadRequest(f"Index {index_name!r} is a {index.kind} index; releases are yanked where they were uploaded.")
    reason = form.get("reason", "").strip()[:500] or None
    await index.set_yanked(project, version, yanked=yanked, reason=reason, actor=who.name, address=client_address(request))
    services(request).registry.note_bump(index.id)
    back = f"{_root(request)}index/{quote(index_name)}/project/{project}/{quote(version)}/"
    return RedirectResponse(back, status_code=303)


@page
async def yank(request: Request) -> Response:
    return await _set_yank(request, True)


@page
async def unyank(request: Request) -> Response:
    return await _set_yank(request, False)


@page
async def delete(request: Request) -> Response:
    index_name, project, version = (request.path_params[k] for k in ("index", "project", "version"))
    await _form(request)
    who = await require(request, "delete", index_name, normalize(project))
    await actions.delete_release(request, who, index_name, project, version)
    return RedirectResponse(f"{_root(request)}index/{quote(index_name)}/", status_code=303)


@page
async def promote(request: Request) -> Response:
    index_name, project, version = (request.path_params[k] for k in ("index", "project", "version"))
    form = await _form(request)
    who = await require(request, "read", index_name)
    target = form.get("target", "").strip()
    await actions.promote_release(request, who, project, version, index_name, target)
    return RedirectResponse(f"{_root(request)}index/{quote(target)}/project/{normalize(project)}/{quote(version)}/",
                            status_code=303)


@page
async def audit(request: Request) -> Response:
    who = _signed_in(request)
    if not who.is_admin:
        raise NotFound("No such page.")
    filters = {k: (request.query_params.get(k) or "").strip()[:200] or None for k in ("index", "actor", "action", "project")}
    entries = await services(request).repo.audit_entries(200, **filters)
    rows = [{**e, "at": when(e.get("at"))} for e in entries]
    return await render(request, "audit.html", entries=rows, filters={k: v or "" for k, v in filters.items()})


@page
async def fetch_from_upstream(request: Request) -> Response:
    """Pull a project's newest release (or a chosen one) from a mirror's upstream into its cache."""
    index_name = request.path_params["index"]
    form = await _form(request)
    project = form.get("project", "").strip()
    if not is_valid_project_name(project):
        raise BadRequest("Give a valid project name.")
    who = await require(request, "manage", index_name)
    index = await services(request).registry.get(index_name)
    if not isinstance(index, MirrorIndex):
        raise BadRequest(f"Index {index_name!r} is not a mirror.")
    version = form.get("version", "").strip() or None
    files = await index.fetch_release(normalize(project), version)
    await services(request).repo.audit({"actor": who.name, "action": "mirror.fetch", "index_name": index_name,
                                        "project": normalize(project), "address": client_address(request),
                                        "detail": {"version": version, "files": files}})
    return RedirectResponse(f"{_root(request)}index/{quote(index_name)}/project/{normalize(project)}/", status_code=303)


routes = [
    Route("/login", login_form, methods=["GET", "HEAD"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/account/tokens", tokens, methods=["GET", "HEAD"]),
    Route("/account/tokens", token_create, methods=["POST"]),
    Route("/account/tokens/{token_id}/revoke", token_revoke, methods=["POST"]),
    Route("/index/{index}/project/{project}/{version}/yank", yank, methods=["POST"]),
    Route("/index/{index}/project/{project}/{version}/unyank", unyank, methods=["POST"]),
    Route("/index/{index}/project/{project}/{version}/delete", delete, methods=["POST"]),
    Route("/index/{index}/project/{project}/{version}/promote", promote, methods=["POST"]),
    Route("/admin/audit", audit, methods=["GET", "HEAD"]),
    Route("/index/{index}/fetch", fetch_from_upstream, methods=["POST"]),
]
