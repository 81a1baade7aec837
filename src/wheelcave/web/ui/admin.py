"""Administration pages: users and groups (administrators), and an index's access list (read by
its managers, changed by administrators, as the API has it). Every change is a CSRF-checked
form and goes through :class:`AccountAdmin`, which checks names and audits it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from wheelcave.auth.access import PERMISSIONS
from wheelcave.auth.admin import Actor
from wheelcave.errors import Forbidden, NotFound
from wheelcave.web.access import require
from wheelcave.web.deps import client_address, services
from wheelcave.web.ui.account import _form, _root, _signed_in
from wheelcave.web.ui.render import page, render

__all__ = ["routes"]


def _admin(request: Request) -> Any:
    who = _signed_in(request)
    if not who.is_admin:
        raise NotFound("No such page.")  # as if it did not exist
    return who


def _actor(request: Request, who: Any) -> Actor:
    return Actor(who.name, client_address(request))


@page
async def users(request: Request) -> Response:
    _admin(request)
    svc = services(request)
    listed = await svc.accounts.list_users()
    groups = await svc.accounts.list_groups()
    return await render(request, "users.html", users=[{"name": u.name, "admin": u.is_admin, "password": bool(u.password_hash)}
                                                      for u in listed], groups=sorted(groups.items()))


@page
async def user_add(request: Request) -> Response:
    who = _admin(request)
    form = await _form(request)
    await services(request).people.add_user(form.get("name", "").strip(), form.get("password") or None,
                                            is_admin=form.get("admin") == "on", actor=_actor(request, who))
    return RedirectResponse(f"{_root(request)}admin/users", status_code=303)


@page
async def user_change(request: Request) -> Response:
    who = _admin(request)
    form = await _form(request)
    name = request.path_params["name"]
    people = services(request).people
    action = form.get("action")
    if action == "remove":
        if name == who.name:
            raise Forbidden("You cannot remove yourself.")
        await people.remove_user(name, actor=_actor(request, who))
    elif action in {"make-admin", "drop-admin"}:
        if name == who.name and action == "drop-admin":
            raise Forbidden("You cannot take away your own administrator right.")
        await people.set_admin(name, action == "make-admin", actor=_actor(request, who))
    else:
        raise NotFound("No such change.")
    return RedirectResponse(f"{_root(request)}admin/users", status_code=303)


@page
async def group_change(request: Request) -> Response:
    who = _admin(request)
    form = await _form(request)
    people = services(request).people
    name = form.get("group", "").strip()
    action = form.get("action")
    if action == "add":
        await people.add_group(name, actor=_actor(request, who))
    elif action == "remove":
        await people.remove_group(name, actor=_actor(request, who))
    elif action in {"add-member", "remove-member"}:
        members = [m.strip() for m in form.get("users", "").split(",") if m.strip()]
        await people.set_members(name, members, member=action == "add-member", actor=_actor(request, who))
    else:
        raise NotFound("No such change.")
    return RedirectResponse(f"{_root(request)}admin/users", status_code=303)


@page
async def access(request: Request) -> Response:
    index = request.path_params["index"]
    who = await require(request, "manage", index)
    entries = (await services(request).auth.access()).entries(index)
    return await render(request, "access.html", index=index, entries=[(p, sorted(v)) for p, v in entries.items()],
                        permissions=PERMISSIONS, can_change=who.is_admin)


@page
async def access_change(request: Request) -> Response:
    index = request.path_params["index"]
    who = await require(request, "manage", index)
    if not who.is_admin:
        raise Forbidden("Only administrators change access lists.")
    form = await _form(request)
    granted = form.get("action") == "grant"
    permissions = [p for p in PERMISSIONS if form.get(f"perm-{p}") == "on"] or [p for p in form.get("permissions", "").split(",") if p]
    await services(request).people.set_grants(index, form.get("principal", "").strip(), permissions, granted=granted,
                                              actor=_actor(request, who))
    return RedirectResponse(f"{_root(request)}index/{quote(index)}/access", status_code=303)


routes = [
    Route("/admin/users", users, methods=["GET", "HEAD"]),
    Route("/admin/users", user_add, methods=["POST"]),
    Route("/admin/users/{name}", user_change, methods=["POST"]),
    Route("/admin/groups", group_change, methods=["POST"]),
    Route("/index/{index}/access", access, methods=["GET", "HEAD"]),
    Route("/index/{index}/access", access_change, methods=["POST"]),
]
