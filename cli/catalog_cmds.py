"""Catalog commands: the gallery query, quarantine, batches, label counts, migrations, store check, quality backfill."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from aoi.settings import get_settings
from cli.choices import Source, Status, value
from cli.output import JSON_OPTION, emit, fail, table

db_app = typer.Typer(help="Catalog database: migrations.", no_args_is_help=True)
store_app = typer.Typer(help="Image store: consistency with the catalog.", no_args_is_help=True)


def _time(value: str | None, as_json: bool) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"not an ISO 8601 time: {value!r} (e.g. 2026-11-22 or 2026-11-22T08:00:00Z)", as_json, code=2)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def images(
    ctx: typer.Context,
    label: str = typer.Option(None, help="Only this label (e.g. SPUR)."),
    status: Status = typer.Option(None, help="Only images with this status."),
    source: Source = typer.Option(None, help="gray (AOI) or color (VRS)."),
    machine: str = typer.Option(None, help="Only this machine_id."),
    part: str = typer.Option(None, help="Only this part_no."),
    batch: int = typer.Option(None, min=1, help="Only this ingest batch."),
    name: str = typer.Option(None, help="File name contains this."),
    since: str = typer.Option(None, help="Ingested at or after (ISO 8601)."),
    until: str = typer.Option(None, help="Ingested before (ISO 8601)."),
    min_width: int = typer.Option(None, min=1, help="Width at least this many pixels."),
    min_height: int = typer.Option(None, min=1, help="Height at least this many pixels."),
    limit: int = typer.Option(None, min=1, help="At most this many rows."),
    offset: int = typer.Option(0, min=0, help="Skip this many rows."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The image gallery: catalog rows filtered by label, status, machine, upload time and resolution.
    Subcommands curate: relabel, exclude, restore, delete (each with --by WHO --why TEXT)."""
    if ctx.invoked_subcommand is not None:  # `aoi images relabel ...`: the listing's options are not used
        return
    from aoi.catalog.queries import GalleryFilter
    from aoi.catalog.queries import images as query

    since_at, until_at = _time(since, as_json), _time(until, as_json)
    if since_at is not None and until_at is not None and since_at >= until_at:
        fail(f"--since {since} is not before --until {until}", as_json, code=2)
    rows = query(
        get_settings().catalog_url,
        GalleryFilter(
            label=label,
            status=value(status),
            source=value(source),
            machine_id=machine,
            part_no=part,
            batch_id=batch,
            name_contains=name,
            since=since_at,
            until=until_at,
            min_width=min_width,
            min_height=min_height,
            limit=limit,
            offset=offset,
        ),
    )
    emit(
        rows,
        as_json,
        lambda r: table(
            r,
            [
                "id",
                "file_name",
                "source",
                "label",
                "status",
                "width",
                "height",
                "format",
                "jpeg_quality",
                "brightness",
                "machine_id",
                "ingested_at",
            ],
            title=f"{len(r)} images",
        ),
    )


def quarantine(
    batch: int = typer.Option(None, min=1, help="Only this ingest batch."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Files that were not ingested, with the reason (bytes kept under AOI_HOME/quarantine when readable)."""
    from aoi.catalog.queries import quarantine as query

    rows = query(get_settings().catalog_url, batch)
    emit(rows, as_json, lambda r: table(r, ["id", "batch_id", "file", "reason"], title=f"{len(r)} quarantined"))


def batches(as_json: bool = JSON_OPTION) -> None:
    """Ingest batches: input, status and counts."""
    from aoi.catalog.queries import batches as query

    rows = query(get_settings().catalog_url)
    emit(
        rows,
        as_json,
        lambda r: table(
            r,
            ["id", "format", "input_path", "status", "added", "duplicates", "quarantined", "started_at"],
            title="ingest batches",
        ),
    )


def summary(as_json: bool = JSON_OPTION) -> None:
    """Images per source, label and status."""
    from aoi.catalog.queries import label_counts

    rows = label_counts(get_settings().catalog_url)
    emit(rows, as_json, lambda r: table(r, ["source", "label", "status", "images"], title="catalog"))


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head"), as_json: bool = JSON_OPTION) -> None:
    """Apply catalog migrations (SQLite or PostgreSQL, from AOI_DB_URL)."""
    from aoi.catalog import db
    from aoi.settings import mask_password

    settings = get_settings()
    at = db.upgrade(settings.catalog_url, revision)
    emit(
        {"db_url": mask_password(settings.catalog_url), "revision": at, "head": db.head_revision()},
        as_json,
        lambda d: print(f"catalog {d['db_url']} at revision {d['revision']} (head {d['head']})"),
    )


@store_app.command("check")
def store_check(
    fix: bool = typer.Option(False, help="Delete orphan files and stale temporary files."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Compare the image store with the catalog: orphan files, missing files, leftovers of a crash."""
    from aoi.catalog.queries import store_check as check

    report = check(get_settings(), fix=fix)

    def render(r: dict) -> None:
        print(
            f"{r['images']} catalogued images, {r['files']} stored files, {len(r['orphans'])} orphans, "
            f"{len(r['missing'])} missing, {r['temp_files']} temporary files" + (f", fixed {r['fixed']}" if fix else "")
        )

    emit(report, as_json, render)
    if not report["ok"] and not fix:
        raise typer.Exit(1)


@store_app.command("measure-quality")
def store_measure_quality(as_json: bool = JSON_OPTION) -> None:
    """Measure sharpness and smear of images catalogued before they existed, from their stored bytes."""
    from aoi.catalog.queries import measure_quality

    emit(
        measure_quality(get_settings()),
        as_json,
        lambda r: print(
            f"measured {r['measured']} images; {r['too_small']} too small to judge, {r['missing']} "
            f"missing from the store, {r['unreadable']} unreadable"
        ),
    )
