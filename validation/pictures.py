"""Tone pictures: per source and machine, and per source and label, histograms of brightness and the channel
differences with the spec's limits drawn on them, so a person sees at a glance where a machine's images sit
against the spec, and whether a class sits apart because of what it shows (a missing hole brightens a crop)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from validation.specs import DEFAULT_DERIVED, Limits, Spec

NONE = "(none)"


def _edges(ax, limits: dict[str, Limits], metric: str, style: str, colour: str) -> None:
    if metric in limits:
        for edge in (limits[metric].min, limits[metric].max):
            if edge is not None:
                ax.axvline(edge, color=colour, linestyle=style, linewidth=1.5)


def _picture(plt, part: pd.DataFrame, limits: dict[str, Limits], title: str, path: Path) -> Path:
    fig, axes = plt.subplots(1, len(DEFAULT_DERIVED), figsize=(4 * len(DEFAULT_DERIVED), 3.2))
    for ax, metric in zip(axes, DEFAULT_DERIVED, strict=True):
        ax.hist(part[metric], bins=40, color="#4c72b0")
        _edges(ax, limits, metric, "--", "#c44e52")
        ax.set_title(metric)
        ax.set_xlabel("gray levels")
    axes[0].set_ylabel("images")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def tone_histograms(frame: pd.DataFrame, spec: Spec, out_dir: Path, title_note: str = "") -> list[Path]:
    """One PNG per (source, machine) group of ``frame`` and one per source with every label; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    frame = frame.assign(machine=frame["machine_id"].fillna("(no machine)").astype(str))
    for (source, machine), part in frame.groupby(["source", "machine"]):
        limits = spec.tone_limits_for(None if machine == "(no machine)" else machine)
        title = f"{source} / {machine}: {len(part)} images vs spec {spec.key} (dashed: limits){title_note}"
        paths.append(_picture(plt, part, limits, title, out_dir / f"tone_{source}_{_safe(machine)}.png"))
    if "label" in frame:
        for source, part in frame.groupby("source"):
            paths.append(_labels_picture(plt, part, spec, out_dir / f"tone_{source}_by_label.png", title_note))
    return paths


def _labels_picture(plt, frame: pd.DataFrame, spec: Spec, path: Path, title_note: str) -> Path:
    """One figure per source: each label's histogram as a coloured step line over the overall limits (dashed),
    and each label's own limits (dotted, in its colour) where the spec has them."""
    labels = frame["label"].fillna(NONE).astype(str)
    fig, axes = plt.subplots(1, len(DEFAULT_DERIVED), figsize=(4 * len(DEFAULT_DERIVED), 3.6))
    colours = plt.get_cmap("tab10").colors
    for ax, metric in zip(axes, DEFAULT_DERIVED, strict=True):
        for i, label in enumerate(sorted(labels.unique())):
            colour = colours[i % len(colours)]
            ax.hist(frame.loc[labels == label, metric], bins=40, histtype="step", color=colour, label=label)
            own = spec.tone_limits_for(None, None, None if label == NONE else label)
            if own != spec.tone:
                _edges(ax, own, metric, ":", colour)
        _edges(ax, spec.tone, metric, "--", "black")
        ax.set_title(metric)
        ax.set_xlabel("gray levels")
    axes[0].set_ylabel("images")
    axes[-1].legend(fontsize=7)
    source = frame["source"].iloc[0]
    fig.suptitle(
        f"{source} per label: {len(frame)} images vs spec {spec.key} (dashed: overall limits, dotted: "
        f"each class's own){title_note}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
