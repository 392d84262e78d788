"""Dataset versions: build, blind sets, and their description."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import typer

from aoi.settings import get_settings
from cli import names
from cli.choices import GroupBy, Source, value
from cli.output import JSON_OPTION, console, emit, err_console, fail, table

dataset_app = typer.Typer(help="Dataset versions (frozen manifests) and blind-test sets.", no_args_is_help=True)


def _cleaning_table(version: dict) -> None:
    """The report's cleaning table: count per class before and after each rule."""
    classes = sorted({c for step in version["cleaning"] for c in step["before"]})
    rows = [{"rule": "start", **version["cleaning"][0]["before"]}] if version["cleaning"] else []
    for step in version["cleaning"]:
        over = step.get("over_limit") or {}
        mark = (" [class loss allowed: " + ", ".join(f"{c} -{s:.0%}" for c, s in over.items()) + "]") if over else ""
        if "images" in step:  # people's changes: how many images, and how many since the parent
            since = f", {step['since_parent']} since the parent" if step.get("since_parent") is not None else ""
            mark += f" ({step['images']} images{since})"
        rows.append({"rule": step["rule"] + mark, **{c: f"{n}*" if c in over else n for c, n in step["after"].items()}})
    table(
        rows,
        ["rule", *classes],
        title=f"cleaning table of {version['name']}"
        + (
            " (* over AOI_DATASETS__MAX_CLASS_LOSS, allowed by --allow-class-loss)"
            if version.get("class_loss_allowed") and any(step.get("over_limit") for step in version["cleaning"])
            else ""
        ),
    )


def show_version(version: dict) -> None:
    console.print(
        f"[bold]{version['name']}[/bold] ({version['role']}, {version['source']}): {version['images']} images"
        + (f", blind date {version['blind_date']}" if version.get("blind_date") else "")
        + (f", parent {version['parent']}" if version.get("parent") else "")
    )
    _cleaning_table(version)
    classes = sorted({c for counts in version["counts"].values() for c in counts})
    table(
        [{"split": s, **c} for s, c in version["counts"].items()],
        ["split", *classes],
        title="images per split and class",
    )
    if version["dropped_blind"]:
        what = "already in training sets" if version["role"] == "blind" else "in blind test sets"
        console.print(f"dropped {version['dropped_blind']} images {what}")


@dataset_app.command("build")
def build(
    name: str = typer.Argument(..., help="Name of the new (immutable) dataset version."),
    source: Source = typer.Option(..., help="The images' source."),
    spec: str = typer.Option(None, help="Validate the source against this spec first; excluded images are left out."),
    per_class: int = typer.Option(None, "--per-class", min=1, help="At most N images per class (seeded sample)."),
    split: str = typer.Option("8:1:1", help="train:valid:test ratio."),
    group_by: GroupBy = typer.Option(
        GroupBy.source_image, "--group-by", help="source_image: crops of one image stay together; none."
    ),
    seed: int = typer.Option(0, help="Seed of sampling and splits: the same seed gives the same version."),
    parent: str = typer.Option(None, help="The dataset version this one derives from (lineage)."),
    allow_class_loss: bool = typer.Option(
        False,
        "--allow-class-loss",
        help="Accept a validation rule that removes "
        "more of a class than AOI_DATASETS__MAX_CLASS_LOSS (recorded in the version).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Freeze a manifest of the source's labelled images: cleaning table, group-aware seeded splits, no blind image.
    A validation that removes more than AOI_DATASETS__MAX_CLASS_LOSS of a class refuses the build."""
    from datasets.versions import DatasetError
    from flows.prefect_server import PrefectUnavailable, ensure_server
    from validation.specs import SpecError

    settings = get_settings()
    names.new_dataset_version(settings, name, as_json)
    names.split_ratio(split, as_json)
    if spec is not None:
        names.spec(settings, spec, as_json)
    if parent is not None:
        names.dataset_version(settings, parent, as_json)
    try:
        ensure_server(settings)
        from flows.dataset import build_dataset

        version = build_dataset(
            name, source.value, spec, per_class, split, group_by.value, seed, parent, allow_class_loss
        ).as_dict()
    except (DatasetError, SpecError, ValueError, PrefectUnavailable) as err:
        fail(str(err), as_json, code=getattr(err, "exit_code", 2))
    for warning in version.get("warnings", []):
        err_console.print(f"[yellow]warning:[/yellow] {warning}")
    emit(version, as_json, show_version)


@dataset_app.command("blind")
def blind(
    name: str = typer.Argument(..., help="Name of the blind-test set, e.g. deeppcb-blind-0717."),
    batch: int = typer.Option(None, min=1, help="Images of this ingest batch."),
    folder: Path = typer.Option(None, help="Ingest this folder (one sub-folder per class) and use its images."),
    groups_from: Path = typer.Option(
        None, "--groups-from", help="A DeepPCB split list (e.g. PCBData/test.txt): its image pairs."
    ),
    name_pattern: str = typer.Option(
        None, "--name-pattern", help="Only file names matching this regex (e.g. '^(11|12)_' for PKU boards)."
    ),
    source: Source = typer.Option(None, help="Only images of this source."),
    date: str = typer.Option(None, help="The blind test's date, YYYY-MM-DD."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register a dated blind-test set; its images can never enter a training, valid or test split."""
    from datasets.versions import DatasetError, deeppcb_groups, register_blind

    settings = get_settings()
    names.calendar_date(date, as_json)
    names.new_dataset_version(settings, name, as_json)  # before --folder ingests anything
    shas = None
    if folder is not None:
        from aoi.store import sha256_of
        from cli.ingest_cmd import run_ingest

        run_ingest(folder, "folder", value(source), None, None, progress=not as_json)
        # By content: files already catalogued (under any name, in any batch) belong to the blind set too.
        shas = {sha256_of(p.read_bytes()) for p in folder.rglob("*") if p.is_file() and not p.is_symlink()}
    try:
        groups = deeppcb_groups(str(groups_from)) if groups_from else None
        version = register_blind(
            settings.catalog_url,
            name,
            source=value(source),
            batch_id=batch,
            groups=groups,
            name_pattern=name_pattern,
            shas=shas,
            date=date,
        )
    except (DatasetError, OSError) as err:
        fail(str(err), as_json, code=2)
    emit(version, as_json, show_version)


@dataset_app.command("show")
def show(name: str = typer.Argument(...), as_json: bool = JSON_OPTION) -> None:
    """Counts per split and class, the cleaning table and lineage of one version."""
    from datasets.versions import DatasetError, describe

    try:
        emit(describe(get_settings().catalog_url, name), as_json, show_version)
    except DatasetError as err:
        fail(str(err), as_json, code=2)


@dataset_app.command("list")
def list_(as_json: bool = JSON_OPTION) -> None:
    """Every dataset version with its role (train or blind)."""
    from datasets.versions import list_versions

    emit(
        list_versions(get_settings().catalog_url),
        as_json,
        lambda rows: table(
            rows, ["name", "role", "source", "images", "parent", "blind_date", "created_at"], title="dataset versions"
        ),
    )


@dataset_app.command("manifest")
def manifest(name: str = typer.Argument(...)) -> None:
    """The frozen manifest as CSV on stdout: sha256, label, split, group, image_id."""
    from datasets.versions import DatasetError
    from datasets.versions import manifest as rows_of

    try:
        rows = rows_of(get_settings().catalog_url, name)
    except DatasetError as err:
        fail(str(err), False, code=2)
    writer = csv.DictWriter(sys.stdout, fieldnames=["sha256", "label", "split", "group", "image_id"])
    writer.writeheader()
    writer.writerows(rows)
