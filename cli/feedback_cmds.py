"""`aoi feedback import FILE`: the confirmed truth of a batch of answers, as the VRS station found it."""

from __future__ import annotations

from pathlib import Path

import typer

from aoi.settings import get_settings
from cli.output import JSON_OPTION, console, emit, fail, table

feedback_app = typer.Typer(help="Confirmed truth from the line: what the answers really were.", no_args_is_help=True)

SHOWN = 20  # error lines listed per kind in the table view (--json lists them all)


@feedback_app.command("import")
def import_reports(
    file: Path = typer.Argument(
        ..., help="CSV (request_id,label[,by], header optional) or JSON lines ({request_id, label, by})."
    ),
    by: str | None = typer.Option(None, "--by", help="Who confirmed them, for lines that do not say (e.g. vrs-01)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Record a batch of confirmed labels (one per request id; a repeated report is counted, not duplicated)."""
    from aoi.catalog import db
    from serving.feedback import FeedbackError, FeedbackFileError, check_text, confirm_many, read_reports

    try:
        reports, named = read_reports(file)
        if by is not None:
            by = check_text("--by", by, 128)
    except (FeedbackFileError, FeedbackError) as err:
        fail(str(err), as_json, code=2)
    if not named and by is None:
        fail(f"{file} does not say who confirmed the answers: add a by column or give --by", as_json, code=2)
    settings = get_settings()
    with db.session(settings.catalog_url) as session:
        result = confirm_many(session, reports, "import", default_by=by).as_dict()
    result["file"] = str(file)

    def render(r: dict) -> None:
        console.print(
            f"{r['file']}: {r['lines']:,} lines, {r['imported']:,} imported, {r['already_confirmed']:,} already "
            f"confirmed, {r['conflicts']:,} conflicts, {r['unknown_request_ids']:,} unknown request ids, "
            f"{r['bad_labels']:,} bad labels, {r['bad_lines']:,} bad lines"
        )
        problems = sorted(
            (
                {"problem": name.replace("_", " "), **item}
                for name, items in r["details"].items()
                for item in items[:SHOWN]
            ),
            key=lambda item: item["line"],
        )
        if problems:
            table(problems, ["line", "problem", "request_id", "label", "on_record", "error"], title="Not imported")

    emit(result, as_json, render)
