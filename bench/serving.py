"""Serving throughput, measured in one run on this machine:

1. the limit: in-process batched forward passes of the production model (no HTTP, no decoding);
2. `/classify` of the served process (adaptive batching on) at concurrency 1, 8 and 32: requests/s, p50, p99;
3. the same for a naive server: the same service with batching off (one forward pass per request).

Goal: batched /classify at concurrency 32 >= 50% of the limit and >= 2x the naive server.
The model is the demo's gray architecture (resnet18, 64 px, 1 channel) with untrained weights: speed does not
depend on the weights. Images are generated 64 px gray PNGs. Client and server share this machine's cores.

    .venv/bin/python bench/serving.py [--requests 600]

Ends with one line of JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aoi.catalog import db
from aoi.catalog.models import ModelVersion, TrainingRun
from aoi.preprocess import Preprocessing, preprocess
from aoi.settings import Settings
from serving import process
from serving.loadgen import run_load
from serving.models import load_deployed
from training.model import build_model
from training.registry import save_model
from training.taxonomy import Taxonomy

CONCURRENCY = (1, 8, 32)


def production_model(settings: Settings) -> str:
    """Register an untrained resnet18 (the demo's gray setting) as the production gray model."""
    taxonomy, prep = Taxonomy.load("gray"), Preprocessing(input_size=64, channels=1)
    model = build_model("resnet18", len(taxonomy.fine), prep.channels)
    tag = save_model(
        settings,
        kind="gray",
        version="gray-bench",
        state_dict=model.state_dict(),
        taxonomy=taxonomy.as_dict(),
        prep=prep.as_dict(),
        arch="resnet18",
        metrics={},
    )
    with db.session(settings.catalog_url) as s:
        run = TrainingRun(kind="gray", dataset="bench", status="succeeded", arch="resnet18")
        s.add(run)
        s.flush()
        s.add(
            ModelVersion(
                version="gray-bench",
                kind="gray",
                stage="production",
                run_id=db.saved_id(run),
                dataset="bench",
                arch="resnet18",
                bento_tag=tag,
                stage_changed_by="bench/serving.py",
            )
        )
        s.commit()
    return "gray-bench"


def images(n: int = 64) -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8), "L").save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def forward_limit(settings: Settings, data: list[bytes], batch_size: int, seconds: float = 5.0) -> float:
    """Images per second of batched forward passes in this process (the ceiling for any server)."""
    deployed = load_deployed(settings, "gray-bench")
    batch = np.stack([preprocess(data[i % len(data)], deployed.prep).numpy() for i in range(batch_size)])
    deployed.probabilities(batch)  # warm-up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        deployed.probabilities(batch)
        done += batch_size
    return done / (time.perf_counter() - started)


def _cpu_s(pids: list[int]) -> float:
    return sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)


def served(settings: Settings, data: list[bytes], requests: int) -> dict:
    """Figures per concurrency level, with the CPU the server and this client spent per request: both share
    this machine's cores with the model, which is what keeps /classify below the in-process limit."""
    server = process.start_background(settings)
    try:
        root = psutil.Process(server.pid)
        pids = [root.pid, *(p.pid for p in root.children(recursive=True))]
        run_load(server.url, data, 64, 8)  # warm-up
        out: dict[int | str, dict] = {}
        for c in CONCURRENCY:
            n = requests if c > 1 else requests // 4
            server_cpu, client_cpu = _cpu_s(pids), time.process_time()
            figures = run_load(server.url, data, n, c).figures()
            figures["server_cpu_ms_per_request"] = round((_cpu_s(pids) - server_cpu) / n * 1e3, 2)
            figures["client_cpu_ms_per_request"] = round((time.process_time() - client_cpu) / n * 1e3, 2)
            out[c] = figures
        out["batching"] = httpx.get(f"{server.url}/model", timeout=10).json()["batching"]["gray"]
        return out
    finally:
        process.stop(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600, help="requests per concurrency level (c=1: a quarter)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="aoi-bench-serving-"))
    port = 3900 + os.getpid() % 90
    base = {"AOI_HOME": str(home), "AOI_SERVING__PORT": str(port), "AOI_SERVING__LOG_FLUSH_S": "1"}
    os.environ.update(base)
    settings = Settings()
    production_model(settings)
    data = images()
    limit = forward_limit(settings, data, settings.serving.max_batch_size)
    print(
        f"limit: batched forward in-process {limit:.0f} images/s (batch {settings.serving.max_batch_size})", flush=True
    )
    results = {}
    for name, batching in (("batched", "true"), ("naive", "false")):
        os.environ["AOI_SERVING__BATCHING"] = batching
        results[name] = served(Settings(), data, args.requests)
        for c in CONCURRENCY:
            figures = results[name][c]
            print(
                f"{name:8s} c={c:<3d} {figures['req_per_s']:7.1f} req/s  p50 {figures['p50_ms']:7.1f} ms  "
                f"p99 {figures['p99_ms']:7.1f} ms  errors {figures['errors']}  CPU per request: server "
                f"{figures['server_cpu_ms_per_request']:.1f} ms, client {figures['client_cpu_ms_per_request']:.1f} ms",
                flush=True,
            )
        print(f"{name:8s} batches {results[name]['batching']}", flush=True)
    top = max(CONCURRENCY)
    batched, naive = results["batched"][top]["req_per_s"], results["naive"][top]["req_per_s"]
    summary = {
        "limit_images_per_s": round(limit, 1),
        "limit_cpu_ms_per_image": round((os.cpu_count() or 1) / limit * 1e3, 2),
        "batched": {str(c): f for c, f in results["batched"].items()},
        "naive": {str(c): f for c, f in results["naive"].items()},
        f"batched_c{top}_share_of_limit": round(batched / limit, 3),
        f"batched_over_naive_c{top}": round(batched / naive, 2),
        "goal": {"share_of_limit": 0.5, "over_naive": 2.0},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
