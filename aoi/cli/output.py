"""How commands report: one JSON document on stdout with ``--json``, a readable table otherwise."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)

JSON_OPTION = typer.Option(False, "--json", help="Print one JSON document on stdout.")


def emit(data: Any, as_json: bool, render: Callable[[Any], None] | None = None) -> None:
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
    if as_json:
        emit({"error": message, **extra}, True)
    else:
        err_console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)
