"""Pictures of training: per-run curves and the trend of the last runs."""

from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def training_curves(epochs: list[dict], path: Path, title: str) -> Path:
    """Loss and accuracy / mean detection rate per epoch."""
    plt = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    x = [e["epoch"] + 1 for e in epochs]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    left.plot(x, [e["train_loss"] for e in epochs], "o-", label="train loss")
    left.plot(x, [e["valid_loss"] for e in epochs], "o-", label="valid loss")
    right.plot(x, [e["train_accuracy"] for e in epochs], "o-", label="train accuracy")
    right.plot(x, [e["valid_accuracy"] for e in epochs], "o-", label="valid accuracy")
    right.plot(x, [e["mean_detection_rate"] for e in epochs], "o-", label="mean detection rate (valid)")
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    right.set_ylim(0, 1.02)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def runs_trend(runs: list[dict], path: Path) -> Path:
    """Mean detection rate of the last runs, in run order."""
    plt = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([str(r["run_id"]) for r in runs], [r["mean_detection_rate"] or 0 for r in runs], "o-")
    ax.set_xlabel("run")
    ax.set_ylabel("mean detection rate")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"last {len(runs)} training runs")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def sparkline(values: list[float | None]) -> str:
    """The trend in one terminal line."""
    bars = "▁▂▃▄▅▆▇█"
    return "".join("·" if v is None else bars[min(int(v * (len(bars) - 1) + 0.5), len(bars) - 1)] for v in values)
