"""Feature lookups, measured in one run on this machine:

1. an online Feast lookup of a machine's camera parameters (SQLite online store, or Redis with AOI_FEAST_ONLINE),
   and of a machine's colour calibration (what /classify reads for a request that names its machine);
2. the same lookup in a Python dict (the floor);
3. /classify latency at concurrency 1 of a served gray model, and the share a lookup would take of it.

Goal: a lookup costs <= 10% of /classify.

    .venv/bin/python bench/features.py [--lookups 500]

Ends with one line of JSON.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aoi.settings import Settings
from features import calibration, camera_params, store
from serving import process
from serving.loadgen import run_load

MACHINES, PARTS = 20, 50


def _serving_bench():
    """bench/serving.py's model and images (the same production model and inputs)."""
    spec = importlib.util.spec_from_file_location("bench_serving", Path(__file__).with_name("serving.py"))
    if spec is None or spec.loader is None:
        raise FileNotFoundError("bench/serving.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def camera_table(settings: Settings, home: Path) -> list[tuple[str, str]]:
    pairs = [(f"vrs-{m:02d}", f"P-{p:04d}") for m in range(MACHINES) for p in range(PARTS)]
    path = home / "camera.csv"
    path.write_text(
        "machine_id,part_no,light,exposure,gain_r,gain_g,gain_b,effective_from\n"
        + "".join(f"{m},{p},48,13,9,6,13,2026-01-05\n" for m, p in pairs)
    )
    camera_params.import_csv(settings, path)
    return pairs


def calibration_table(settings: Settings) -> list[tuple[str]]:
    """A calibration row per machine (made-up values: the lookup's cost does not depend on them)."""
    import pandas as pd

    machines = [f"vrs-{m:02d}" for m in range(MACHINES)]
    at = pd.Timestamp("2026-01-05", tz="UTC")
    frame = pd.DataFrame(
        [
            {
                "machine_id": m,
                "effective_from": at,
                "computed_at": at,
                "reference_board": "PCB-10",
                "reference_images": 24,
                "batch_id": 1,
                **{v: 1.0 for v in calibration.VALUES},
            }
            for m in machines
        ]
    )
    frame[calibration.VALUES] = frame[calibration.VALUES].astype("float32")
    store.write_parquet(frame, calibration.source_path(settings))
    return [(m,) for m in machines]


def timed_ms(call, keys, n: int) -> np.ndarray:
    out = np.empty(n)
    for i in range(n):
        started = time.perf_counter()
        call(*keys[i % len(keys)])
        out[i] = (time.perf_counter() - started) * 1e3
    return out


def figures(ms: np.ndarray) -> dict:
    return {"p50_ms": round(float(np.median(ms)), 4), "p99_ms": round(float(np.percentile(ms, 99)), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=500)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="aoi-bench-features-"))
    os.environ.update({"AOI_HOME": str(home), "AOI_SERVING__PORT": str(3800 + os.getpid() % 90)})
    settings = Settings()
    pairs = camera_table(settings, home)
    fs = store.open_store(settings)
    store.apply(settings, fs)
    machines = calibration_table(settings)
    store.apply(settings, fs)
    store.materialize(settings, ["camera_params", "machine_calibration"], fs)
    rng = np.random.default_rng(0)
    keys = [pairs[i] for i in rng.integers(0, len(pairs), args.lookups)]
    store.camera_params_online(fs, *keys[0])  # warm-up: registry read, connection
    online = timed_ms(lambda m, p: store.camera_params_online(fs, m, p), keys, args.lookups)
    calibration.online(fs, *machines[0])
    calibrated = timed_ms(lambda m: calibration.online(fs, m), machines, args.lookups)
    table = {pair: {"light": 48} for pair in pairs}
    in_dict = timed_ms(lambda m, p: table[(m, p)], keys, args.lookups)
    print(
        f"online lookup ({store.online_store_config(settings)['type']}): camera parameters p50 "
        f"{np.median(online):.3f} ms, calibration p50 {np.median(calibrated):.3f} ms; "
        f"dict: p50 {np.median(in_dict) * 1e3:.2f} us",
        flush=True,
    )

    bench = _serving_bench()
    bench.production_model(settings)
    server = process.start_background(settings)
    try:
        data = bench.images()
        run_load(server.url, data, 20, 1)  # warm-up
        classify = run_load(server.url, data, 200, 1).figures()
    finally:
        process.stop(settings)
    share = float(np.median(online)) / classify["p50_ms"]
    calibration_share = float(np.median(calibrated)) / classify["p50_ms"]
    print(
        f"/classify c=1: p50 {classify['p50_ms']} ms; a camera-parameter lookup would be {share:.1%} of it, a "
        f"calibration lookup {calibration_share:.1%}",
        flush=True,
    )
    print(
        json.dumps(
            {
                "online_store": store.online_store_config(settings)["type"],
                "online_lookup": figures(online),
                "calibration_lookup": figures(calibrated),
                "dict_lookup": figures(in_dict),
                "online_over_dict": round(float(np.median(online) / np.median(in_dict)), 1),
                "classify_c1": classify,
                "lookup_share_of_classify": round(share, 4),
                "calibration_share_of_classify": round(calibration_share, 4),
                "goal": {"lookup_share_of_classify": 0.1},
            }
        )
    )


if __name__ == "__main__":
    main()
