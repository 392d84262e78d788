"""Tone pictures: per source and machine, histograms of brightness and the channel differences with the
spec's limits drawn on them, so a person sees at a glance where a machine's images sit against the spec."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from validation.specs import DEFAULT_DERIVED, Spec


def tone_histograms(frame: pd.DataFrame, spec: Spec, out_dir: Path, title_note: str = "") -> list[Path]:
    """One PNG per (source, machine) group of ``frame``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    frame = frame.assign(machine=frame["machine_id"].fillna("(no machine)").astype(str))
    for (source, machine), part in frame.groupby(["source", "machine"]):
        limits = spec.tone_limits_for(None if machine == "(no machine)" else machine)
        fig, axes = plt.subplots(1, len(DEFAULT_DERIVED), figsize=(4 * len(DEFAULT_DERIVED), 3.2))
        for ax, metric in zip(axes, DEFAULT_DERIVED, strict=True):
            ax.hist(part[metric], bins=40, color="#4c72b0")
            if metric in limits:
                for edge in (limits[metric].min, limits[metric].max):
                    if edge is not None:
                        ax.axvline(edge, color="#c44e52", linestyle="--", linewidth=1.5)
            ax.set_title(metric)
            ax.set_xlabel("gray levels")
        axes[0].set_ylabel("images")
        fig.suptitle(f"{source} / {machine}: {len(part)} images vs spec {spec.key} (dashed: limits){title_note}")
        fig.tight_layout()
        path = out_dir / f"tone_{source}_{re.sub(r'[^A-Za-z0-9_.-]', '_', machine)}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths
