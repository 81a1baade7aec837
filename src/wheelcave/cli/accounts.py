"""``wheelcave user|token|group|acl|owner|publisher``: who may do what, from the command line.

These work on the data folder directly, with or without a running server; a running server
(every worker and replica) sees each change within a second.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from wheelcave.auth.access import Scope
from wheelcave.cli.common import ConfigFile, DataDir, fail, run, settings_for, split
from wheelcave.config import ConfigError, parse_duration
from wheelcave.core.names import normalize

__all__ = ["register"]

user_app = typer.Typer(no_args_is_help=True, help="Manage users.")
token_app = typer.Typer(no_args_is_help=True, help="Manage API tokens.")
group_app = typer.Typer(no_args_is_help=True, help="Manage groups of users.")
acl_app = typer.Typer(no_args_is_help=True, help="Grant and revoke rights on indexes.")
owner_app = typer.Typer(no_args_is_help=True, help="Manage who owns a project in a hosted index.")
publisher_app = typer.Typer(no_args_is_help=True, help="Manage trusted publishers (CI publishing with OIDC).")


def register(app: typer.Typer) -> None:
    for sub, name in ((user_app, "user"), (token_app, "token"), (group_app, "group"), (acl_app, "acl"),
                      (owner_app, "owner"), (publisher_app, "publisher")):
        app.add_typer(sub, name=name)


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise fail("empty password")
    return password


# ---------------------------------------------------------------- users

PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")]


@user_app.command("add")
def user_add(name: str, password_stdin: PasswordStdin = False,
             admin: Annotated[bool, typer.Option("--admin", help="Make the user an administrator.")] = False,
             data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Add a user."""
    password = _read_password(password_stdin)
    run(settings_for(data_dir, config), lambda svc: svc.people.add_user(name, password, is_admin=admin))
    typer.echo(f"user {name!r} added", err=True)


@user_app.command("passwd")
def user_passwd(name: str, password_stdin: PasswordStdin = False, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Set a user's password (a running server refuses the old one within a second)."""
    password = _read_password(password_stdin)
    run(settings_for(data_dir, config), lambda svc: svc.people.set_password(name, password))
    typer.echo(f"password of {name!r} changed", err=True)


@user_app.command("admin")
def user_admin(name: str, grant: Annotated[bool, typer.Option("--grant/--revoke", help="Make or unmake an administrator.")] = True,
               data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Make a user an administrator, or no longer one."""
    run(settings_for(data_dir, config), lambda svc: svc.people.set_admin(name, grant))
    typer.echo(f"{name!r} is {'now' if grant else 'no longer'} an administrator", err=True)


@user_app.command("remove")
def user_remove(name: str, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Remove a user with their tokens, memberships, grants and ownerships."""
    run(settings_for(data_dir, config), lambda svc: svc.people.remove_user(name))
    typer.echo(f"user {name!r} removed", err=True)


@user_app.command("list")
def user_list(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """List users."""
    for u in run(settings_for(data_dir, config), lambda svc: svc.accounts.list_users()):
        typer.echo(f"{u.name}\t{'admin' if u.is_admin else 'user'}")


@user_app.command("import-htpasswd")
def user_import_htpasswd(file: Path, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Create users from an htpasswd file (pypiserver's): bcrypt and {SHA} entries; each is
    re-hashed with argon2id at the user's first sign-in. Nothing is created if a line is refused."""
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {file}: {exc}") from None
    created, existing = run(settings_for(data_dir, config), lambda svc: svc.people.import_htpasswd(text))
    for name in created:
        typer.echo(f"created {name}")
    for name in existing:
        typer.echo(f"exists already, left alone: {name}", err=True)


# ---------------------------------------------------------------- tokens

@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option("--user", help="The user the token acts as.")],
    description: Annotated[str | None, typer.Option(help="What the token is for.")] = None,
    index: Annotated[str | None, typer.Option(help="Limit it to these indexes (comma-separated).")] = None,
    project: Annotated[str | None, typer.Option(help="Limit its changes to these projects (comma-separated).")] = None,
    permissions: Annotated[str | None, typer.Option(help="read,upload,yank,delete,manage (with --index: default upload).")] = None,
    expires: Annotated[str | None, typer.Option(help="Lifetime, e.g. 90d, 12h.")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Create an API token (printed once; use it as the password of user __token__). It never
    carries more than its user holds at the moment it is used."""
    indexes, projects, perms = split(index), split(project), split(permissions)
    if indexes is not None and perms is None:
        perms = ["upload"]
    scope = None
    if indexes is not None or projects is not None or perms is not None:
        scope = Scope(frozenset(indexes) if indexes is not None else None,
                      frozenset(normalize(p) for p in projects) if projects is not None else None,
                      frozenset(perms) if perms is not None else None)
    try:
        lifetime = parse_duration(expires) if expires is not None else None
    except ConfigError as exc:
        raise fail(str(exc)) from None
    _, secret = run(settings_for(data_dir, config), lambda svc: svc.people.create_token(
        user, description=description, scope=scope, expires_in=lifetime))
    typer.echo(secret)
    typer.echo("hint: use it with HTTP Basic as user '__token__'; it is not shown again", err=True)


@token_app.command("list")
def token_list(user: Annotated[str | None, typer.Option("--user")] = None, data_dir: DataDir = None,
               config: ConfigFile = None) -> None:
    """List tokens (id, owner, prefix, created, last used, expires, scope, description); never secrets."""
    for t in run(settings_for(data_dir, config), lambda svc: svc.accounts.list_tokens(user)):
        scope = "all"
        if t.scope:
            scope = ";".join(f"{k}={','.join(sorted(v))}" for k, v in sorted(t.scope.items()) if v is not None)
        owner = t.user_name or f"publisher:{t.publisher_id}"
        when = (lambda d: f"{d:%Y-%m-%d %H:%M}" if d else "-")
        typer.echo(f"{t.id}\t{owner}\t{t.prefix}…\t{when(t.created_at)}\t{when(t.last_used)}\t{when(t.expires_at)}"
                   f"\t{scope}\t{t.description or ''}")


@token_app.command("revoke")
def token_revoke(token_id: int, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Revoke a token by id (a running server refuses it within a second)."""
    run(settings_for(data_dir, config), lambda svc: svc.people.revoke_token(token_id))
    typer.echo(f"token {token_id} revoked", err=True)


# ---------------------------------------------------------------- groups

@group_app.command("add")
def group_add(name: str, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Create a group."""
    run(settings_for(data_dir, config), lambda svc: svc.people.add_group(name))
    typer.echo(f"group {name!r} created", err=True)


@group_app.command("remove")
def group_remove(name: str, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Remove a group (its members stay; its grants and ownerships go)."""
    run(settings_for(data_dir, config), lambda svc: svc.people.remove_group(name))
    typer.echo(f"group {name!r} removed", err=True)


@group_app.command("members")
def group_members(
    name: str,
    add: Annotated[str | None, typer.Option(help="Users to add (comma-separated).")] = None,
    remove: Annotated[str | None, typer.Option(help="Users to remove (comma-separated).")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Show a group's members, or change them."""
    async def go(svc: object) -> list[str]:
        from wheelcave.services import Services

        assert isinstance(svc, Services)
        if add:
            await svc.people.set_members(name, split(add) or [], member=True)
        if remove:
            await svc.people.set_members(name, split(remove) or [], member=False)
        groups = await svc.accounts.list_groups()
        if name not in groups:
            raise fail(f"no group named {name!r}")
        return groups[name]

    for user in run(settings_for(data_dir, config), go):
        typer.echo(user)


@group_app.command("list")
def group_list(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """List groups and their members."""
    for name, members in run(settings_for(data_dir, config), lambda svc: svc.accounts.list_groups()).items():
        typer.echo(f"{name}\t{','.join(members)}")


# ---------------------------------------------------------------- access lists

Principal = Annotated[str, typer.Argument(help="NAME or user:NAME, group:NAME, authenticated, anonymous.")]
Permissions = Annotated[str, typer.Argument(help="Comma-separated: read,upload,yank,delete,manage.")]


@acl_app.command("show")
def acl_show(index: Annotated[str | None, typer.Argument(help="Only this index.")] = None,
             data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Show the grants: index, principal, permissions."""
    grants = run(settings_for(data_dir, config), lambda svc: svc.accounts.grants())
    merged: dict[tuple[str, str], list[str]] = {}
    for name, principal, permission in grants:
        if index is None or name == index:
            merged.setdefault((name, principal), []).append(permission)
    for (name, principal), perms in sorted(merged.items()):
        typer.echo(f"{name}\t{principal}\t{','.join(sorted(perms))}")


@acl_app.command("grant")
def acl_grant(index: str, principal: Principal, permissions: Permissions, data_dir: DataDir = None,
              config: ConfigFile = None) -> None:
    """Grant rights on an index."""
    run(settings_for(data_dir, config), lambda svc: svc.people.set_grants(index, principal, split(permissions) or [], granted=True))
    typer.echo(f"granted {permissions} on {index!r} to {principal}", err=True)


@acl_app.command("revoke")
def acl_revoke(index: str, principal: Principal, permissions: Permissions, data_dir: DataDir = None,
               config: ConfigFile = None) -> None:
    """Take rights on an index away (from every token of theirs too, within a second)."""
    run(settings_for(data_dir, config), lambda svc: svc.people.set_grants(index, principal, split(permissions) or [], granted=False))
    typer.echo(f"revoked {permissions} on {index!r} from {principal}", err=True)


# ---------------------------------------------------------------- owners

@owner_app.command("list")
def owner_list(index: str, project: str, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Show who owns a project."""
    async def go(svc: object) -> list[str]:
        from wheelcave.services import Services

        assert isinstance(svc, Services)
        record = await svc.repo.find_index(index)
        if record is None:
            raise fail(f"no index named {index!r}")
        return await svc.accounts.owners(record.id, normalize(project))

    for owner in run(settings_for(data_dir, config), go):
        typer.echo(owner)


@owner_app.command("add")
def owner_add(index: str, project: str, principal: Principal, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Make a user or group an owner of a project."""
    run(settings_for(data_dir, config), lambda svc: svc.people.set_owner(index, project, principal, owner=True))
    typer.echo(f"{principal} owns {project!r} in {index!r}", err=True)


@owner_app.command("remove")
def owner_remove(index: str, project: str, principal: Principal, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Take a project's ownership from a user or group."""
    run(settings_for(data_dir, config), lambda svc: svc.people.set_owner(index, project, principal, owner=False))
    typer.echo(f"{principal} no longer owns {project!r} in {index!r}", err=True)


# ---------------------------------------------------------------- trusted publishers

@publisher_app.command("add")
def publisher_add(
    index: str,
    issuer: Annotated[str, typer.Option(help="The OIDC issuer URL (its iss claim), e.g. GitHub Actions' or GitLab's.")],
    claim: Annotated[list[str], typer.Option(help="KEY=VALUE the CI's token must carry (repeat): repository=owner/name, "
                                              "workflow=release.yml, environment=pypi, ...")],
    project: Annotated[str | None, typer.Option(help="Only this project (default: any the index lets it publish).")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Let a CI identity publish to a hosted index without a stored secret."""
    claims = {}
    for item in claim:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise fail(f"--claim takes KEY=VALUE, not {item!r}")
        claims[key] = value
    publisher_id = run(settings_for(data_dir, config),
                       lambda svc: svc.people.add_publisher(index, issuer, claims, project))
    typer.echo(str(publisher_id))
    typer.echo(f"trusted publisher {publisher_id} may publish to {index!r}", err=True)


@publisher_app.command("list")
def publisher_list(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """List trusted publishers: id, index, project, issuer, claims."""
    for p in run(settings_for(data_dir, config), lambda svc: svc.accounts.publishers()):
        claims = ",".join(f"{k}={v}" for k, v in sorted(p.claims.items()))
        typer.echo(f"{p.id}\t{p.index_name}\t{p.project or '*'}\t{p.issuer}\t{claims}")


@publisher_app.command("remove")
def publisher_remove(publisher_id: int, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Remove a trusted publisher (and the tokens minted for it)."""
    run(settings_for(data_dir, config), lambda svc: svc.people.remove_publisher(publisher_id))
    typer.echo(f"trusted publisher {publisher_id} removed", err=True)
