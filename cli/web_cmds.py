"""Workbench commands: ``aoi web`` serves it, ``aoi users`` keeps its accounts."""

from __future__ import annotations

import getpass
import sys

import typer
from sqlmodel import col, select

from aoi.settings import get_settings
from cli.output import JSON_OPTION, emit, fail, table

users_app = typer.Typer(
    help="Workbench accounts: viewers read, engineers curate, reviewers approve.", no_args_is_help=True
)

ROLE_HELP = "viewer (reads), engineer (curates) or reviewer (curates and approves)."


def _read_password(as_json: bool) -> str:
    """The new password from standard input: asked twice without echo on a terminal, one line from a pipe."""
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            fail("the two passwords differ; nothing was changed", as_json, code=2)
        return first
    line = sys.stdin.readline()
    return line[:-1] if line.endswith("\n") else line


def users_add(
    name: str = typer.Argument(..., help="The user name people log in with."),
    role: str = typer.Option(..., "--role", help=ROLE_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Add an account; its password is read from standard input (never an option: it would show in `ps`)."""
    from aoi.catalog import db
    from aoi.catalog.models import UserRole
    from workbench.auth import add_user, check_name, check_password

    try:
        UserRole(role)
        name = check_name(name)
    except ValueError as err:
        message = str(err) if "user name" in str(err) else f"--role is one of viewer, engineer, reviewer, not {role!r}"
        fail(message, as_json, code=2)
    password = _read_password(as_json)
    try:
        check_password(password)
        with db.session(get_settings().catalog_url) as s:
            user = add_user(s, name, role, password)
    except ValueError as err:
        fail(f"{err}; nothing was changed", as_json, code=2)
    emit(
        {"name": user.name, "role": user.role, "created": True},
        as_json,
        lambda d: print(f"added {d['role']} {d['name']}"),
    )


def users_list(as_json: bool = JSON_OPTION) -> None:
    """The workbench's accounts (never their passwords or hashes)."""
    from aoi.catalog import db
    from aoi.catalog.models import AppUser

    with db.session(get_settings().catalog_url) as s:
        rows = s.exec(select(AppUser).order_by(col(AppUser.name))).all()
    data = [
        {"name": u.name, "role": u.role, "disabled": u.disabled, "created_at": u.created_at.isoformat()} for u in rows
    ]
    emit(data, as_json, lambda d: table(d, ["name", "role", "disabled", "created_at"], title=f"{len(d)} accounts"))


def users_disable(name: str = typer.Argument(..., help="The account to disable."), as_json: bool = JSON_OPTION) -> None:
    """Disable an account: it can no longer log in, and its open sessions end at their next request."""
    from aoi.catalog import db
    from workbench.auth import find_user

    with db.session(get_settings().catalog_url) as s:
        user = find_user(s, name)
        if user is None:
            fail(f"no user {name!r} (see `aoi users list`)", as_json, code=2)
            return
        changed = not user.disabled
        user.disabled = True
        s.add(user)
        s.commit()
    emit(
        {"name": name, "disabled": True, "changed": changed},
        as_json,
        lambda d: print(f"disabled {d['name']}" if d["changed"] else f"{d['name']} was disabled already"),
    )


users_app.command("add")(users_add)
users_app.command("list")(users_list)
users_app.command("disable")(users_disable)


def web(
    port: int = typer.Option(None, "--port", min=1, max=65535, help="Port (default AOI_WORKBENCH__PORT, 8200)."),
    host: str = typer.Option(None, "--host", help="Address (default AOI_WORKBENCH__HOST, 127.0.0.1)."),
    background: bool = typer.Option(False, "--background", help="Start in the background and return once it answers."),
    stop: bool = typer.Option(False, "--stop", help="Stop the background workbench of this AOI_HOME."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Serve the workbench: gallery, images, datasets, training records, models, drift (log in at /login)."""
    from workbench import server

    settings = get_settings()
    if background and stop:
        fail("--background and --stop exclude each other", as_json, code=2)
    if stop:
        result = server.stop(settings)
        emit(
            result,
            as_json,
            lambda d: print(
                f"stopped the workbench (pid {d['pid']})"
                if d["stopped"]
                else f"not stopped: pid {d['stale_pid']} in the pid file is stale ({d['reason']}); pid file removed"
                if "stale_pid" in d
                else "no background workbench of this AOI_HOME is running"
            ),
        )
        return
    try:
        server.check_bind(settings, host)
    except server.WebError as err:
        fail(str(err), as_json, code=2)
    if background:
        try:
            served = server.start_background(settings, port, host)
        except server.WebError as err:
            fail(str(err), as_json, code=4)
        emit(
            {"url": served.url, "pid": served.pid, "log": str(served.log), "started": served.started},
            as_json,
            lambda d: print(
                f"workbench: {d['url']} (pid {d['pid']}, {'started' if d['started'] else 'already running'}, "
                f"log {d['log']}); stop with `aoi web --stop`"
            ),
        )
        return
    print(f"workbench: {settings.workbench.url(host, port)} (Ctrl-C stops)", flush=True)
    server.run_foreground(settings, port, host)
