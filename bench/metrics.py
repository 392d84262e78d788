"""Metrics function vs a plain full-resolution Pillow decode, on the real data sets, in one run; and what the
image quality metrics (sharpness, smear) cost against the tone and compression metrics alone, as measured
before they existed (``quality=False`` at the former 32-pixel decode).

All read the same bytes from memory; rounds alternate between them so that machine noise hits each alike,
and each figure is the median over rounds. Goal: ratio >= 2 on DeepPCB's 640x640 JPEGs.

    .venv/bin/python bench/metrics.py [--rounds 5] [--limit 1000]

Ends with one line of JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aoi.image_metrics import measure

FORMER_MIN_SIDE = 32  # the tone metrics' decode before the quality metrics existed
from aoi.settings import Settings


def full_decode(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()


def tone_only(data: bytes) -> None:
    measure(data, quality=False, min_side=FORMER_MIN_SIDE)


def rate(fn, blobs: list[bytes]) -> tuple[float, float]:
    """(images a second of wall time, CPU microseconds an image): on a shared machine the CPU time is the
    steadier figure, since other people's jobs stretch the wall time."""
    start, cpu = time.perf_counter(), time.process_time()
    for blob in blobs:
        fn(blob)
    return len(blobs) / (time.perf_counter() - start), (time.process_time() - cpu) / len(blobs) * 1e6


def compare(name: str, files: list[Path], rounds: int) -> dict:
    blobs = [p.read_bytes() for p in files]
    for blob in blobs[:50]:  # warm up caches and lazy tables
        measure(blob)
        full_decode(blob)
        tone_only(blob)
    runs: dict[str, list[tuple[float, float]]] = {"decode": [], "metrics": [], "tone": []}
    for _ in range(rounds):
        runs["decode"].append(rate(full_decode, blobs))
        runs["metrics"].append(rate(measure, blobs))
        runs["tone"].append(rate(tone_only, blobs))
    wall = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
    cpu = {k: statistics.median(r[1] for r in v) for k, v in runs.items()}
    m, d = wall["metrics"], wall["decode"]
    result = {
        "images": len(blobs),
        "metrics_img_per_s": round(m, 1),
        "full_decode_img_per_s": round(d, 1),
        "ratio": round(m / d, 2),
        "cpu_ratio": round(cpu["decode"] / cpu["metrics"], 2),
        "metrics_cpu_us_per_img": round(cpu["metrics"], 1),
        "tone_only_cpu_us_per_img": round(cpu["tone"], 1),
        "full_decode_cpu_us_per_img": round(cpu["decode"], 1),
        "quality_cost_cpu_us_per_img": round(cpu["metrics"] - cpu["tone"], 1),
        "quality_cost_ratio": round(cpu["metrics"] / cpu["tone"], 2),
    }
    print(
        f"{name:10s} {len(blobs):5d} images: metrics {m:8.1f} img/s, full decode {d:8.1f} img/s, ratio {m / d:.2f}x "
        f"(CPU {result['cpu_ratio']:.2f}x); CPU a image: tone only {cpu['tone']:6.1f} us, with quality "
        f"{cpu['metrics']:6.1f} us ({result['quality_cost_ratio']:.2f}x)",
        file=sys.stderr,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=0, help="At most this many files per set (0: all).")
    args = parser.parse_args()
    root = Settings().datasets_dir
    sets = {
        "deeppcb": sorted(root.glob("DeepPCB/PCBData/*/*/*.jpg")),
        "pku": sorted(root.glob("pku-pcb-roi/*/*.jpg")),
    }
    if not all(sets.values()):
        sys.exit(f"data sets not found under AOI_DATASETS_DIR={root}")
    figures = {name: compare(name, files[: args.limit or None], args.rounds) for name, files in sets.items()}
    print(
        json.dumps(
            {
                "bench": "metrics",
                "rounds": args.rounds,
                **figures,
                "goal_ratio_deeppcb": 2.0,
                "goal_met": figures["deeppcb"]["ratio"] >= 2.0,
            }
        )
    )


if __name__ == "__main__":
    main()
