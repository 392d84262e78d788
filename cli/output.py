"""How commands report: one JSON document on stdout with ``--json``, a readable table otherwise."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()
err_console = Console(stderr=True)

JSON_OPTION = typer.Option(False, "--json", help="Print one JSON document on stdout.")


def _masked(data: Any) -> Any:
    """``data`` with the password of every URL in it masked: no output of the CLI prints one."""
    from aoi.settings import mask_password

    if isinstance(data, str):
        return mask_password(data)
    if isinstance(data, dict):
        return {k: _masked(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_masked(v) for v in data]
    if type(data) is tuple:  # a named tuple or other subclass is left as it is
        return tuple(_masked(v) for v in data)
    return data


def emit(data: Any, as_json: bool, render: Callable[[Any], None] | None = None) -> None:
    data = _masked(data)
    if as_json:
        sys.stdout.write(json.dumps(data, default=str, indent=2) + "\n")
        sys.stdout.flush()
    elif render is not None:
        render(data)
    else:
        console.print_json(json.dumps(data, default=str))


def table(rows: Sequence[dict], columns: Sequence[str], title: str | None = None) -> None:
    t = Table(title=title)
    for column in columns:
        t.add_column(column)
    for row in rows:
        t.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    console.print(t)


def fail(message: str, as_json: bool, code: int = 1, **extra: Any) -> None:
    """Report an error the user can act on, then exit with ``code``."""
    from aoi.settings import mask_password

    message = mask_password(message)
    if as_json:
        emit({"error": message, **extra}, True)
    else:
        err_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)  # one line, never wrapped
    raise typer.Exit(code)
