"""`aoi images`: the gallery listing (no subcommand), and curation: relabel, exclude, restore, delete."""

from __future__ import annotations

import typer

from aoi.settings import get_settings
from cli import catalog_cmds
from cli.output import JSON_OPTION, emit, fail, table

images_app = typer.Typer(
    help="The image gallery (without a subcommand: the listing) and curation of images.",
    invoke_without_command=True,
    no_args_is_help=False,
)
images_app.callback()(catalog_cmds.images)

IDS = typer.Argument(..., min=1, help="Image ids (one or more: a selection changes in one transaction).")
BY = typer.Option(..., "--by", help="Who: an enabled workbench account (engineer or reviewer), recorded.")
WHY = typer.Option(..., "--why", help="Why (recorded in the images' history).")


def _curate(action: str, ids: list[int], by: str, why: str, as_json: bool, label: str | None = None) -> None:
    from aoi.catalog import db
    from aoi.labels import LabelMap
    from workbench import curation

    settings = get_settings()
    try:
        with db.session(settings.catalog_url) as s:
            curation.curator(s, by)
            if action == "relabel":
                labels = LabelMap.load(settings.ingest.label_map)
                changes = curation.relabel(s, ids, label or "", by, why, curation.Via.cli, labels=labels)
            else:
                do = {"exclude": curation.exclude, "restore": curation.restore, "delete": curation.delete}[action]
                changes = do(s, ids, by, why, curation.Via.cli)
            result = curation.summary(s, changes)
    except curation.CurationError as err:
        fail(str(err), as_json, code=2)

    def render(r: dict) -> None:
        table(
            r["images"],
            ["image_id", "old_label", "new_label", "old_status", "new_status", "blind"],
            title=f"{r['action']}: {r['changed']} image(s) by {r['by']} ({r['reason']})",
        )

    emit(result, as_json, render)


@images_app.command("relabel")
def relabel(
    ids: list[int] = IDS,
    label: str = typer.Option(..., "--label", help="The new label: a project label of the images' source."),
    by: str = BY,
    why: str = WHY,
    as_json: bool = JSON_OPTION,
) -> None:
    """Give images a new label (the next dataset version built from a parent takes it and counts it)."""
    _curate("relabel", ids, by, why, as_json, label=label)


@images_app.command("exclude")
def exclude(ids: list[int] = IDS, by: str = BY, why: str = WHY, as_json: bool = JSON_OPTION) -> None:
    """Leave images out of every new dataset version, with the reason (restore brings them back)."""
    _curate("exclude", ids, by, why, as_json)


@images_app.command("restore")
def restore(ids: list[int] = IDS, by: str = BY, why: str = WHY, as_json: bool = JSON_OPTION) -> None:
    """Bring back images excluded (by a person or by validation) or deleted."""
    _curate("restore", ids, by, why, as_json)


@images_app.command("delete")
def delete(ids: list[int] = IDS, by: str = BY, why: str = WHY, as_json: bool = JSON_OPTION) -> None:
    """Soft delete: images leave every new dataset version; their bytes stay until a store GC."""
    _curate("delete", ids, by, why, as_json)
