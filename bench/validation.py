"""Great Expectations checkpoint vs a plain pandas range check giving the same verdicts, on the DeepPCB crops.

The metrics table is built once (the DeepPCB importer's crops, measured as ingest does); a spec is derived
from it (mean ± 1.5σ per tone metric, plus a compression spec). Each round runs the GX checkpoint (with its
Data Docs action) and the pandas check over the same table; figures are medians over rounds, and the
verdicts (which image failed which check) are compared for identity.

    .venv/bin/python bench/validation.py [--rounds 5] [--limit N]

Ends with one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aoi.labels import LabelMap
from aoi.settings import Settings
from ingest import pipeline
from ingest.importers import ImportContext, get_importer
from validation.engines import GXRunner, run_pandas
from validation.specs import CompressionSpec, Limits, derive


def crop_metrics(settings: Settings, limit: int) -> pd.DataFrame:
    found = get_importer("deeppcb")(settings.datasets_dir / "DeepPCB", ImportContext(settings.ingest, LabelMap.load()))
    candidates = found.candidates[: limit or None]
    loaded, _ = pipeline.read_and_hash(candidates)
    measured, _ = pipeline.decode_and_measure(loaded, settings)
    rows = [{"id": i + 1, "machine_id": None, "source": "gray", **m.metrics.as_dict()} for i, m in enumerate(measured)]
    return pd.DataFrame(rows)


def verdict_map(verdict) -> dict:
    return {k: sorted(v) for k, v in verdict.failed.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=0, help="At most this many crops (0: all).")
    args = parser.parse_args()
    settings = Settings()
    if not (settings.datasets_dir / "DeepPCB").is_dir():
        sys.exit(f"DeepPCB not found under AOI_DATASETS_DIR={settings.datasets_dir}")
    start = time.perf_counter()
    frame = crop_metrics(settings, args.limit)
    print(f"metrics table: {len(frame)} crops in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    spec = derive("bench-deeppcb", frame, k=1.5).model_copy(
        update={
            "compression": CompressionSpec(formats=("PNG",), bytes_per_pixel=Limits(max=2.0), compressed="forbidden")
        }
    )
    with tempfile.TemporaryDirectory(prefix="aoi-bench-gx-") as tmp:
        runner = GXRunner(Path(tmp), Path(tmp) / "docs")
        first = time.perf_counter()
        gx_verdict = runner.run(spec, frame)  # creates suites, definitions, checkpoint
        first_s = time.perf_counter() - first
        gx_times, pd_times = [], []
        for _ in range(args.rounds):
            t = time.perf_counter()
            gx_verdict = runner.run(spec, frame)
            gx_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            pd_verdict = run_pandas(spec, frame)
            pd_times.append(time.perf_counter() - t)
    gx_s, pd_s = statistics.median(gx_times), statistics.median(pd_times)
    identical = (
        verdict_map(gx_verdict) == verdict_map(pd_verdict) and gx_verdict.set_failures == pd_verdict.set_failures
    )
    print(
        f"GX checkpoint {gx_s * 1000:.1f} ms (first run {first_s * 1000:.0f} ms), pandas {pd_s * 1000:.2f} ms, "
        f"ratio {gx_s / pd_s:.1f}x, identical verdicts: {identical}, failing images {len(pd_verdict.failed)}",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "bench": "validation",
                "rows": len(frame),
                "rounds": args.rounds,
                "gx_checkpoint_ms": round(gx_s * 1000, 2),
                "gx_first_run_ms": round(first_s * 1000, 1),
                "pandas_ms": round(pd_s * 1000, 3),
                "ratio": round(gx_s / pd_s, 2),
                "goal_ratio": 5.0,
                "goal_met": gx_s / pd_s <= 5.0,
                "identical_verdicts": identical,
                "failing_images": len(pd_verdict.failed),
                "failed_by_check": pd_verdict.by_check(),
            }
        )
    )


if __name__ == "__main__":
    main()
