"""Metrics function vs a plain full-resolution Pillow decode, on the real data sets, in one run.

Both read the same bytes from memory; rounds alternate between the two so that machine noise hits both
alike, and each figure is the median over rounds. Goal: ratio >= 2 on DeepPCB's 640x640 JPEGs.

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
from aoi.metrics import measure  # noqa: E402
from aoi.settings import Settings  # noqa: E402


def full_decode(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()


def rate(fn, blobs: list[bytes]) -> float:
    start = time.perf_counter()
    for blob in blobs:
        fn(blob)
    return len(blobs) / (time.perf_counter() - start)


def compare(name: str, files: list[Path], rounds: int) -> dict:
    blobs = [p.read_bytes() for p in files]
    for blob in blobs[:50]:  # warm up caches and lazy tables
        measure(blob)
        full_decode(blob)
    metrics_rates, decode_rates = [], []
    for _ in range(rounds):
        decode_rates.append(rate(full_decode, blobs))
        metrics_rates.append(rate(measure, blobs))
    m, d = statistics.median(metrics_rates), statistics.median(decode_rates)
    result = {"images": len(blobs), "metrics_img_per_s": round(m, 1), "full_decode_img_per_s": round(d, 1),
              "ratio": round(m / d, 2)}  # fmt: skip
    print(f"{name:10s} {len(blobs):5d} images: metrics {m:8.1f} img/s, full decode {d:8.1f} img/s, "
          f"ratio {m / d:.2f}x", file=sys.stderr)  # fmt: skip
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
    print(json.dumps({"bench": "metrics", "rounds": args.rounds, **figures, "goal_ratio_deeppcb": 2.0,
                      "goal_met": figures["deeppcb"]["ratio"] >= 2.0}))  # fmt: skip


if __name__ == "__main__":
    main()
