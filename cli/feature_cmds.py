"""Machine commands: the team's camera-parameter table in the Feast feature store."""

from __future__ import annotations

from pathlib import Path

import typer

from aoi.settings import get_settings
from cli.output import JSON_OPTION, emit, fail, table

machines_app = typer.Typer(
    help="Per-machine camera parameters (Feast): import the team's CSV, list pairs.", no_args_is_help=True
)


@machines_app.command("import")
def import_(
    file: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        help="CSV: machine_id, part_no, light, exposure, gain_r, gain_g, gain_b[, effective_from]",
    ),
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
    emit(
        result,
        as_json,
        lambda d: print(
            f"{d['file']}: {d['added']} rows added, {d['already_there']} already there; "
            f"table {d['table_rows']} rows, online {d['online']}"
        ),
    )


@machines_app.command("list")
def list_(as_json: bool = JSON_OPTION) -> None:
    """The machine / part pairs with the camera parameters in force now."""
    from features import camera_params

    rows = camera_params.pairs(get_settings())
    emit(
        {"pairs": rows},
        as_json,
        lambda d: table(
            d["pairs"],
            ["machine_id", "part_no", "light", "exposure", "gain_r", "gain_g", "gain_b", "effective_from"],
            title=f"{len(d['pairs'])} machine / part pairs",
        ),
    )


@machines_app.command("refresh")
def refresh(as_json: bool = JSON_OPTION) -> None:
    """Run the `features` flow: tone statistics and colour calibration per machine from the catalog, apply,
    materialise."""
    from features.store import FeatureStoreError
    from flows.prefect_server import PrefectUnavailable, ensure_server

    try:
        ensure_server(get_settings())
        from flows.refresh_features import features

        result = features().as_dict()
    except (PrefectUnavailable, FeatureStoreError) as err:
        fail(str(err), as_json, code=getattr(err, "exit_code", 2))

    def render(d: dict) -> None:
        print(
            f"tone statistics: {d['tone_stats']['rows']} rows for {d['tone_stats']['machines']} machines; "
            f"calibration: {d['calibration']['rows']} rows for {d['calibration']['machines']} machines; "
            f"online: {d['online']}"
        )
        for problem in d["calibration"]["problems"]:
            print(f"calibration problem: {problem}")

    emit(result, as_json, render)


@machines_app.command("check")
def check(
    line: Path = typer.Option(None, help="The simulated line's folder (default: AOI_HOME/simulated-line)."),
    model: str = typer.Option(
        None,
        help="Colour model version for the accuracy table (default: production colour, else the newest colour model).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """SIMULATION: each simulated machine's mean tone and a colour model's accuracy, with and without its colour
    calibration, against the unshifted crops."""
    from demo.simulated_line import default_folder
    from evaluation.line_check import check as run

    settings = get_settings()
    folder = line or default_folder(settings)
    if not (folder / "line.json").exists():
        fail(f"no simulated line in {folder}: run `aoi simulate line` first", as_json, code=2)
    result = run(settings, folder, model or newest_color_model(settings))
    emit(result, as_json, render_check)


def newest_color_model(settings) -> str | None:
    """The production colour model, else the newest colour model version; None when there is none."""
    from training.runs import models

    color = [m for m in models(settings) if m["kind"] == "color"]
    production = [m for m in color if m["stage"] == "production"]
    return (production or color or [{"version": None}])[-1]["version"]


def render_check(d: dict) -> None:
    print(d["simulation"])
    table(
        [
            {
                **r,
                **{k: " ".join(f"{v:.1f}" for v in r[k]) for k in ("reference_rgb", "captured_rgb", "calibrated_rgb")},
            }
            for r in d["tone"]
        ],
        [
            "machine_id",
            "images",
            "calibrated_images",
            "reference_rgb",
            "captured_rgb",
            "calibrated_rgb",
            "max_error_captured",
            "max_error_calibrated",
            "within_goal",
        ],
        title=f"mean tone R G B per simulated machine (goal: within {d['tone_goal']:g} gray levels of the reference)",
    )
    if d.get("tone_by_part"):
        table(
            [
                {**r, **{k: " ".join(f"{v:.1f}" for v in r[k]) for k in ("captured_rgb", "calibrated_rgb")}}
                for r in d["tone_by_part"]
            ],
            [
                "machine_id",
                "part_no",
                "images",
                "captured_rgb",
                "calibrated_rgb",
                "max_error_captured",
                "max_error_calibrated",
                "within_goal",
            ],
            title="mean tone R G B per simulated machine and part number (each part has its own tone)",
        )
    if "accuracy" in d:
        columns = [
            "images",
            "unshifted",
            "without_calibration",
            "with_calibration",
            "gap_with_calibration",
            "within_goal",
        ]
        for key, scope, title in (
            ("accuracy", ["machine_id"], "machine"),
            ("accuracy_by_part", ["machine_id", "part_no"], "machine and part number"),
        ):
            table(
                [
                    {**r, **{k: f"{r[k]:.1%}" for k in ("unshifted", "without_calibration", "with_calibration")}}
                    for r in d.get(key, [])
                ],
                [*scope, *columns],
                title=f"accuracy of {d['model_version']} per simulated {title} (goal: with calibration within 1 point)",
            )


simulate_app = typer.Typer(
    help="SIMULATION of line data the public sets lack (machines, parts, tone).", no_args_is_help=True
)


@simulate_app.command("line")
def simulate_line(
    out: Path = typer.Option(None, help="Folder to write the simulated line into (default: AOI_HOME/simulated-line)."),
    per_machine: int = typer.Option(150, min=1, help="Line captures per simulated machine."),
    progress: bool = typer.Option(True, help="Show progress bars on stderr."),
    as_json: bool = JSON_OPTION,
) -> None:
    """SIMULATION: 4 VRS machines shoot PKU crops with their own channel gains (one with a brightness offset);
    their reference samples, captures and camera parameters are ingested, then the features flow runs."""
    from demo import public_sets
    from demo.simulated_line import default_folder
    from flows.prefect_server import PrefectUnavailable, ensure_server

    settings = get_settings()
    try:
        source = public_sets.require(settings, "pku-pcb-roi")
        ensure_server(settings)
    except (public_sets.DatasetUnavailable, PrefectUnavailable) as err:
        fail(str(err), as_json, code=getattr(err, "exit_code", 3))
    from flows.line import line

    try:
        result = line(
            str(source), str(out or default_folder(settings)), per_machine, progress and not as_json
        ).as_dict()
    except ValueError as err:  # too few crops for the asked captures
        fail(str(err), as_json, code=2)
    emit(result, as_json, render_line)


def render_line(d: dict) -> None:
    print(d["simulation"])
    print(
        f"simulated line in {d['folder']}: machines {', '.join(d['machines'])}; reference samples: batch "
        f"{d['reference']['batch_id']} (+{d['reference']['added']}); captures: batch {d['captures']['batch_id']} "
        f"(+{d['captures']['added']}); camera parameters: +{d['camera_params']['added']} rows"
    )
    if d["blind"]:
        print(f"captures held out as blind set {d['blind']['name']} ({d['blind']['images']} images)")
    c = d["features"]["calibration"]
    print(f"calibration: {c['rows']} rows for {c['machines']} machines; online: {d['features']['online']}")
    for problem in c["problems"]:
        print(f"calibration problem: {problem}")
