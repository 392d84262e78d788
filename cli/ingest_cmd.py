"""``aoi ingest``: run the ingest flow on one input and report what landed."""

from __future__ import annotations

from pathlib import Path

import typer

from aoi.settings import get_settings
from cli.choices import Format, Source, value
from cli.output import JSON_OPTION, emit, err_console, fail, table
from flows.prefect_server import PrefectUnavailable

FORMAT_HELP = "folder (one sub-folder per class), deeppcb, labelme (zip), labelimg (zip), csv (manifest)"


def ingest(
    path: Path = typer.Argument(..., help="Folder, zip archive or CSV manifest to ingest."),
    format: Format = typer.Option(Format.folder, "--format", "-f", help=FORMAT_HELP),
    source: Source = typer.Option(None, help="gray (AOI) or color (VRS); default from the layout or image mode."),
    machine: str = typer.Option(None, help="machine_id for every image without its own."),
    part: str = typer.Option(None, help="part_no for every image without its own."),
    reference: bool = typer.Option(
        False,
        "--reference",
        help="Reference samples: the machine's shots of the "
        "reference board (--part names the board), for colour calibration; not for training.",
    ),
    progress: bool = typer.Option(True, help="Show a progress bar on stderr."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Ingest labelled images: discover, hash and de-duplicate, measure, store, catalog. Re-running adds nothing."""
    if not path.exists():
        fail(f"input not found: {path}", as_json, code=2)
    if reference and format != "csv" and not (machine and part):  # a CSV manifest names them per row
        fail("--reference needs --machine (who shot it) and --part (the reference board)", as_json, code=2)
    try:
        result = run_ingest(path, format.value, value(source), machine, part, progress, reference)
    except PrefectUnavailable as err:
        fail(str(err), as_json, code=err.exit_code)
    except Exception as err:  # the batch is recorded as failed; the same command resumes it
        fail(
            f"ingest failed: {type(err).__name__}: {err}; the batch is marked failed, run the same "
            "command again to resume it",
            as_json,
            code=1,
        )

    def render(r: dict) -> None:
        table(
            [{"label": k, "added": v} for k, v in r["by_label"].items()],
            ["label", "added"],
            title=f"batch {r['batch_id']} ({r['status']})",
        )
        print(
            f"added {r['added']}, duplicates {r['duplicates']}, quarantined {r['quarantined']}, "
            f"skipped {r['skipped']} (of {r['discovered']} discovered)"
        )
        if r["quarantined"]:
            print(f"see why: aoi quarantine --batch {r['batch_id']}")

    emit(result, as_json, render)
    for warning in result.get("warnings", []):
        err_console.print(f"[yellow]warning:[/yellow] {warning}")
    if result.get("refused"):
        err_console.print(f"[red]refused:[/red] {result['refused']}")
        raise typer.Exit(1)


def run_ingest(
    path: Path,
    fmt: str,
    source: str | None,
    machine: str | None,
    part: str | None,
    progress: bool,
    reference: bool = False,
) -> dict:
    from flows.prefect_server import ensure_server

    settings = get_settings()
    ensure_server(settings)
    from flows.ingest_batch import ingest as ingest_flow  # imported after the Prefect client is pointed at its server

    return ingest_flow(str(path), fmt, source, machine, part, progress, reference).as_dict()
