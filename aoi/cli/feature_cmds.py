"""Machine commands: the team's camera-parameter table in the Feast feature store."""

from __future__ import annotations

from pathlib import Path

import typer

from aoi.cli.output import JSON_OPTION, emit, fail, table
from aoi.settings import get_settings

machines_app = typer.Typer(help="Per-machine camera parameters (Feast): import the team's CSV, list pairs.",
                           no_args_is_help=True)  # fmt: skip


@machines_app.command("import")
def import_(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV: machine_id, part_no, light, exposure, "
                                "gain_r, gain_g, gain_b[, effective_from]"),  # fmt: skip
    as_json: bool = JSON_OPTION,
) -> None:
    """Add the CSV's rows to the camera-parameter table and publish it to the online store (Auto VRS reads it)."""
    from features import camera_params, store

    settings = get_settings()
    try:
        result = camera_params.import_csv(settings, file)
        fs = store.open_store(settings)
        store.apply(settings, fs)
        result["online"] = store.materialize(settings, ["camera_params"], fs)["camera_params"]
    except (camera_params.CameraParamsError, store.FeatureStoreError) as err:
        fail(str(err), as_json, code=2)
    emit(result, as_json, lambda d: print(f"{d['file']}: {d['added']} rows added, {d['already_there']} already there; "
                                          f"table {d['table_rows']} rows, online {d['online']}"))  # fmt: skip


@machines_app.command("list")
def list_(as_json: bool = JSON_OPTION) -> None:
    """The machine / part pairs with the camera parameters in force now."""
    from features import camera_params

    rows = camera_params.pairs(get_settings())
    emit({"pairs": rows}, as_json, lambda d: table(d["pairs"], ["machine_id", "part_no", "light", "exposure", "gain_r",
                                                              "gain_g", "gain_b", "effective_from"],
                                                   title=f"{len(d['pairs'])} machine / part pairs"))  # fmt: skip


@machines_app.command("refresh")
def refresh(as_json: bool = JSON_OPTION) -> None:
    """Run the `features` flow: rolling tone statistics per machine from the catalog, apply, materialise."""
    from aoi.prefect_server import PrefectUnavailable, ensure_server
    from features.store import FeatureStoreError

    try:
        ensure_server(get_settings())
        from flows.features import features

        result = features()
    except (PrefectUnavailable, FeatureStoreError) as err:
        fail(str(err), as_json, code=2)
    emit(result, as_json, lambda d: print(f"tone statistics: {d['tone_stats']['rows']} rows for "
                                          f"{d['tone_stats']['machines']} machines; online: {d['online']}"))  # fmt: skip
