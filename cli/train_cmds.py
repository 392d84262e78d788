"""Training, training records and model versions."""

from __future__ import annotations

from typing import Any

import typer
from pydantic import ValidationError

from aoi.settings import get_settings
from cli import names
from cli.choices import Arch
from cli.output import JSON_OPTION, console, emit, fail, table
from training.params import TrainParams

_PARAMS = TrainParams.model_fields


def _option(name: str, *flags: str) -> Any:
    """A `aoi train` option with its default and help from TrainParams (declared once there)."""
    field = _PARAMS[name]
    return typer.Option(field.default, *flags, help=field.description)


def train(
    dataset: str = typer.Option(..., help=_PARAMS["dataset"].description),
    arch: Arch = typer.Option(Arch(_PARAMS["arch"].default), help=_PARAMS["arch"].description),
    epochs: int = _option("epochs"),
    workers: int = _option("workers"),
    gpu: bool = _option("gpu", "--gpu"),
    per_class: int = _option("per_class", "--per-class"),
    batch_size: int = _option("batch_size", "--batch-size"),
    lr: float = _option("lr"),
    input_size: int = _option("input_size", "--input-size"),
    seed: int = _option("seed"),
    tone_jitter: float = _option("tone_jitter", "--tone-jitter"),
    amp: bool | None = typer.Option(
        None, "--amp/--no-amp", show_default="where the device supports it", help=_PARAMS["amp"].description
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Train a classifier on a dataset version with Ray Train; the best epoch becomes a candidate model version."""
    from flows.prefect_server import PrefectUnavailable, ensure_server
    from training.runs import TrainingError

    options = {k: v for k, v in locals().items() if k in _PARAMS} | {"arch": arch.value}
    try:
        params = TrainParams(**options)
    except ValidationError as err:
        fail(_one_line(err), as_json, code=2)
    names.dataset_version(get_settings(), dataset, as_json, role="train")
    try:
        ensure_server(get_settings())
        from flows.train import train as train_flow

        result = train_flow(params).as_dict()
    except (TrainingError, PrefectUnavailable) as err:
        fail(str(err), as_json, code=getattr(err, "exit_code", 2))
    emit(
        result,
        as_json,
        lambda r: console.print(
            f"run {r['run_id']} {r['status']}: model {r['model_version']}, mean detection rate "
            f"{r['mean_detection_rate']:.3f}, valid accuracy {r['valid_accuracy']:.3f}, {r['duration_s']} s; "
            f"curves {r['curves']}"
        ),
    )


def _one_line(err: ValidationError) -> str:
    """A refused parameter as the user typed it: ``--tone-jitter 0.9: Input should be less than or equal...``."""
    first = err.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else "parameter"
    return f"--{name.replace('_', '-')} {first.get('input')!r}: {first['msg']}"


def runs(last: int = typer.Option(10, min=1, help="How many of the latest runs."), as_json: bool = JSON_OPTION) -> None:
    """Training records and the trend of the last runs (a PNG chart and a line here)."""
    from training.curves import runs_trend, sparkline
    from training.runs import runs as query

    settings = get_settings()
    rows = query(settings, last)
    trend = str(runs_trend(rows, settings.reports_dir / "training" / "trend.png")) if rows else None

    def render(d: dict) -> None:
        table(
            d["runs"],
            [
                "run_id",
                "model_version",
                "status",
                "kind",
                "dataset",
                "arch",
                "mean_detection_rate",
                "labelled_images",
                "total_images",
                "label_kinds",
                "started_at",
                "duration_s",
            ],
            title="training runs",
        )
        console.print(
            f"mean detection rate, last {len(d['runs'])} runs: "
            f"{sparkline([r['mean_detection_rate'] for r in d['runs']])}"
            f"  (chart: {d['trend']})"
        )

    emit({"runs": rows, "trend": trend}, as_json, render)


def models(as_json: bool = JSON_OPTION) -> None:
    """Model versions with their kind, stage and key metrics."""
    from export.exports import as_dict, exports_of, summary
    from training.runs import models as query

    settings = get_settings()
    rows = query(settings)
    exported = exports_of(settings, [r["version"] for r in rows])
    for r in rows:  # each export with its parity figures and the latency measured on its device
        r["exports"] = [as_dict(e) for e in exported.get(r["version"], [])]
        r["export"] = "; ".join(summary(e) for e in exported.get(r["version"], [])) or None

    emit(
        rows,
        as_json,
        lambda rows: table(
            rows,
            [
                "version",
                "kind",
                "stage",
                "arch",
                "dataset",
                "mean_detection_rate",
                "valid_accuracy",
                "threshold",
                "bento_tag",
                "export",
            ],
            title="model versions",
        ),
    )
