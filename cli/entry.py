"""The ``aoi`` entry: ``--version``, the quiet terminal, and one line (exit code 2) for every usage or settings
error, and for any user error of ours a command let through, instead of Click's usage block or a traceback."""

from __future__ import annotations

import sys
from importlib import metadata
from typing import Any

import typer
from pydantic import ValidationError
from rich.markup import escape
from typer._click import exceptions as click  # Typer 0.29 carries its own Click
from typer.core import TyperGroup

from aoi.settings import Settings, mask_password
from cli.output import emit, err_console

DISTRIBUTION = "aoi-mlops"

# The exit codes of `aoi` (the README's table lists the same; a test checks both against the code).
EXIT_CODES = {
    0: "success",
    1: "the command ran and failed, or found a problem it reports (a failed ingest, a store check that is not "
    "clean, a decision not recorded in time)",
    2: "a user error: unknown name, invalid option or filter value, invalid AOI_* setting; nothing was changed",
    3: "a public data set or the Prefect server is unavailable (offline, not downloaded, not reachable)",
    4: "the classification service could not be started in the background",
    5: "`aoi demo` already ran in this AOI_HOME",
    130: "interrupted (Ctrl-C)",
}


def version() -> str:
    return metadata.version(DISTRIBUTION)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"aoi {version()}")
        raise typer.Exit()


def entry(
    show_version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print the version of aoi and exit."
    ),
) -> None:
    """AOI defect classification MLOps: ingest, validate, train, gate, serve, monitor."""
    from cli import quiet

    quiet.quiet_user_errors()
    if quiet.is_the_program():
        quiet.install()


def settings_error(err: Any) -> str | None:
    """One line naming each invalid AOI_* variable (never its value), or None when ``err`` is not about settings."""
    if not isinstance(err, ValidationError) or err.title != Settings.__name__:
        return None
    parts = []
    for e in err.errors():
        variable = "AOI_" + "__".join(str(p) for p in e["loc"] if not isinstance(p, int)).upper()
        parts.append(f"{variable}: {e['msg']}")
    return "invalid setting " + "; ".join(parts)


def user_error(err: BaseException) -> bool:
    """An error of ours the user can act on (an unknown name, a refused request) that a command let through: it
    still ends as one line and exit code 2."""
    from cli.quiet import USER_ERRORS

    return any(t.__name__ in USER_ERRORS for t in type(err).__mro__)


class AoiGroup(TyperGroup):
    """Click's usage errors and invalid settings as one line (JSON with --json), exit code 2."""

    def main(  # type: ignore[override]
        self,
        args: list[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        as_json = "--json" in argv
        try:
            code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.NoArgsIsHelpError as err:
            err.show()
            code = 0 if err.ctx is None else err.exit_code
        except click.UsageError as err:
            where = f" (see `{err.ctx.command_path} --help`)" if err.ctx is not None and not as_json else ""
            code = _report(err.format_message() + where, as_json, 2)
        except click.ClickException as err:
            code = _report(err.format_message(), as_json, err.exit_code)
        except typer.Abort:
            err_console.print("aborted")
            code = 1
        except Exception as err:
            message = settings_error(err)
            if message is None and not user_error(err):
                raise  # a bug: its traceback is what a report needs
            code = _report(message or str(err), as_json, 2)
        if standalone_mode:
            sys.exit(code or 0)
        return code


def _report(message: str, as_json: bool, code: int) -> int:
    message = mask_password(message.replace("Value error, ", ""))  # pydantic's prefix on an enum's refusal
    if as_json:
        emit({"error": message}, True)
    else:
        err_console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return code
