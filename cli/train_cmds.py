"""Training, training records and model versions."""

from __future__ import annotations

import typer

from aoi.settings import get_settings
from cli import names
from cli.choices import Arch, positive
from cli.output import JSON_OPTION, console, emit, fail, table


def train(
    dataset: str = typer.Option(..., help="A training dataset version (aoi dataset list)."),
    arch: Arch = typer.Option(Arch.resnet18, help="The classifier's architecture."),
    epochs: int = typer.Option(3, min=1),
    workers: int = typer.Option(1, min=1, help="Ray Train workers."),
    gpu: bool = typer.Option(False, "--gpu", help="One GPU per worker, channels-last."),
    per_class: int = typer.Option(500, "--per-class", min=1, help="Images drawn per class per epoch (balanced)."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    lr: float = typer.Option(1e-3, callback=positive, help="Learning rate (above 0)."),
    input_size: int = typer.Option(64, "--input-size", min=8, help="Side of the square input, in pixels."),
    seed: int = typer.Option(0),
    tone_jitter: float = typer.Option(
        0.0,
        "--tone-jitter",
        min=0.0,
        max=0.5,
        help="Augment: each channel's gain drawn from 1 ± this (tone robustness, docs/domain.md#joint-tone).",
    ),
    amp: bool | None = typer.Option(
        None,
        "--amp/--no-amp",
        show_default="where the device supports it",
        help="Mixed precision: fp16 on a GPU, bfloat16 on a CPU with bfloat16 instructions.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Train a classifier on a dataset version with Ray Train; the best epoch becomes a candidate model version."""
    from flows.prefect_server import PrefectUnavailable, ensure_server
    from training.runs import TrainingError

    names.dataset_version(get_settings(), dataset, as_json, role="train")
    try:
        ensure_server(get_settings())
        from flows.train import train as train_flow

        result = train_flow(
            dataset, arch.value, epochs, workers, gpu, per_class, batch_size, lr, input_size, seed, tone_jitter, amp
        )
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
    from training.runs import models as query

    emit(
        query(get_settings()),
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
            ],
            title="model versions",
        ),
    )
