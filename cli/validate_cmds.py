"""Specs, validation and restoring excluded images."""

from __future__ import annotations

from pathlib import Path

import typer

from aoi.settings import get_settings
from cli import names
from cli.choices import Source, positive
from cli.output import JSON_OPTION, emit, fail, table

spec_app = typer.Typer(help="Tone and compression specs (YAML, versioned, kept in the catalog).", no_args_is_help=True)


@spec_app.command("add")
def spec_add(file: Path = typer.Argument(..., help="A spec YAML file."), as_json: bool = JSON_OPTION) -> None:
    """Check a spec file and keep it in the catalog under its name and version."""
    from validation.records import register_spec
    from validation.specs import SpecError, parse_spec

    try:
        spec = parse_spec(file.read_text(), origin=file.name)
        register_spec(get_settings(), spec)
    except (SpecError, OSError) as err:
        fail(str(err), as_json, code=2)
    emit({"spec": spec.key, **spec.model_dump(mode="json")}, as_json, lambda d: print(f"spec {d['spec']} kept"))


@spec_app.command("derive")
def spec_derive(
    name: str = typer.Argument(..., help="Name of the new spec (the next version is made if it exists)."),
    source: str = typer.Option(
        ..., "--from", help="Reference set: batch:ID (or ID), dataset:NAME (or NAME), source:gray|color."
    ),
    k: float = typer.Option(1.5, "--k", callback=positive, help="Limits at mean ± k·σ (k above 0)."),
    per_machine: bool = typer.Option(False, "--per-machine", help="Also one set of limits per machine."),
    per_part: bool = typer.Option(
        False, "--per-part", help="Also one set per machine × part number (and per machine)."
    ),
    per_class: bool = typer.Option(
        False,
        "--per-class",
        help="One set per class within each of those scopes: each "
        "class is judged against its own tone, so what it shows is not taken for camera tone.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Derive tone limits at mean ± kσ of a reference set (docs/domain.md#tone-per-machine); images are later judged by
    the most
    specific limits that match them (machine × part, else machine, else class, else overall)."""
    from validation.records import Scope, derive_spec
    from validation.specs import SpecError

    try:
        spec, path = derive_spec(get_settings(), name, Scope.parse(source), k, per_machine, per_part, per_class)
    except SpecError as err:
        fail(str(err), as_json, code=2)
    emit(
        {"spec": spec.key, "file": str(path), **spec.model_dump(mode="json")},
        as_json,
        lambda d: print(f"spec {d['spec']} derived ({d['source']}), written to {d['file']}"),
    )


@spec_app.command("list")
def spec_list(as_json: bool = JSON_OPTION) -> None:
    """Specs kept in the catalog."""
    from validation.records import list_specs

    emit(list_specs(get_settings()), as_json, lambda rows: table(rows, ["key", "source", "created_at"], title="specs"))


@spec_app.command("show")
def spec_show(ref: str = typer.Argument(..., help="NAME or NAME@VERSION"), as_json: bool = JSON_OPTION) -> None:
    """One spec's limits."""
    from validation.specs import SpecError
    from validation.steps import load_spec

    try:
        _, spec = load_spec(get_settings(), ref)
    except SpecError as err:
        fail(str(err), as_json, code=2)
    emit({"spec": spec.key, **spec.model_dump(mode="json")}, as_json, lambda d: print(spec.to_yaml()))


def validate(
    spec: str = typer.Option(..., "--spec", help="NAME or NAME@VERSION (shipped specs are registered on first use)."),
    batch: int = typer.Option(None, "--batch", min=1, help="Validate one ingest batch."),
    dataset: str = typer.Option(None, "--dataset", help="Validate one dataset version."),
    source: Source = typer.Option(None, "--source", help="Validate every image of a source."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run a spec's Great Expectations checkpoint; failing images are excluded with the failed checks as reason."""
    from flows.prefect_server import PrefectUnavailable, ensure_server
    from validation.specs import SpecError

    chosen = [
        s
        for s in (
            batch is not None and f"batch:{batch}",
            dataset and f"dataset:{dataset}",
            source and f"source:{source.value}",
        )
        if s
    ]
    if len(chosen) != 1:
        fail("give exactly one of --batch, --dataset, --source", as_json, code=2)
    settings = get_settings()
    names.spec(settings, spec, as_json)
    if batch is not None:
        names.batch(settings, batch, as_json)
    if dataset:
        names.dataset_version(settings, dataset, as_json)
    try:
        ensure_server(settings)
        from flows.validate import validate as validate_flow

        result = validate_flow(chosen[0], spec).as_dict()
    except (SpecError, PrefectUnavailable) as err:
        fail(str(err), as_json, code=getattr(err, "exit_code", 2))

    def render(r: dict) -> None:
        print(f"{r['scope']}: {r['evaluated']} evaluated, {r['passed']} passed, {r['excluded']} excluded")
        table(
            [{"check": c, "images": n} for c, n in r["failed_by_check"].items()],
            ["check", "images"],
            title="failed checks",
        )
        for failure in r["set_failures"]:
            print(f"set failure ({failure['group']}): {failure['check']}: {failure['counts']}")
        print(f"Data Docs: {r['report']}")
        for picture in r["pictures"]:
            print(f"tone picture: {picture}")

    emit(result, as_json, render)


def restore(
    run: int = typer.Option(None, "--run", min=1, help="Restore every image a validation run excluded."),
    image: list[int] = typer.Option(None, "--image", help="Restore these image ids (repeatable)."),
    by: str = typer.Option(..., "--by", help="Who restores (recorded)."),
    note: str = typer.Option(None, "--note", help="Why (recorded)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Put excluded images back; nothing was deleted, and the exclusion rows keep who restored them and why."""
    from validation.records import restore as do_restore

    if run is None and not image:
        fail("give --run ID or --image ID", as_json, code=2)
    n = do_restore(get_settings(), run_id=run, image_ids=image or None, by=by, note=note)
    emit({"restored": n}, as_json, lambda d: print(f"restored {d['restored']} images"))
