"""Serving throughput per runtime, measured in one run on this machine:

1. the forward-pass limit per runtime: in-process batched forward passes of the production model (no HTTP, no
   decoding) on PyTorch fp32, the ONNX fp32 export and the ONNX INT8 export (`aoi export`), each in the engine
   the export measured fastest;
2. `/classify` of the served process (adaptive batching on) at concurrency 1, 8 and 32 per runtime
   (AOI_SERVING__RUNTIME=torch, then onnx with the fp32 export only, then onnx with the INT8 export too):
   requests/s, p50, p99, CPU per request;
3. the naive server on PyTorch: the same service with batching off (one forward pass per request).

Goals: INT8 forward >= 2.5x PyTorch fp32; /classify at c=32 on the export >= 1.5x the PyTorch runtime's and >= 50%
of its own runtime's limit; batched PyTorch >= 2x naive.
The model is the demo's gray architecture (resnet18, 64 px, 1 channel) with untrained weights: speed does not
depend on the weights, but an untrained network's near-tied logits make INT8's top-1 flip, so this bench relaxes
the parity gate for its own AOI_HOME (the gate is tested on trained models, tests/integration/test_export_real.py).
Images are generated 64 px gray PNGs. Client and server share this machine's cores.

    .venv/bin/python bench/serving.py [--requests 600]

Ends with one line of JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
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
ROOT = Path(__file__).resolve().parent.parent


def aoi(*args: str) -> dict:
    """``aoi ARGS --json`` in a child process with this bench's environment."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args, "--json"], capture_output=True, text=True, check=False, env=env, cwd=ROOT
    )
    if done.returncode != 0:
        raise SystemExit(f"aoi {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return json.loads(done.stdout)


def production_model(settings: Settings) -> str:
    """Register an untrained resnet18 (the demo's gray setting) as the production gray model, on a generated
    dataset version (its valid split calibrates INT8) and a generated blind set (parity is measured on it)."""
    taxonomy, prep = Taxonomy.load("gray"), Preprocessing(input_size=64, channels=1)
    folders = Path(tempfile.mkdtemp(prefix="aoi-bench-images-"))
    rng = np.random.default_rng(1)
    for part, per_class in (("train", 12), ("blind", 6)):
        for label in taxonomy.fine:
            (folders / part / label).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 255, (64, 64), dtype=np.uint8)
                Image.fromarray(pixels, "L").save(folders / part / label / f"{i}.png")
    aoi("ingest", str(folders / "train"), "--source", "gray", "--no-progress")
    aoi("dataset", "build", "bench-v1", "--source", "gray", "--seed", "1", "--split", "6:6:0")
    aoi(
        "dataset",
        "blind",
        "bench-blind",
        "--folder",
        str(folders / "blind"),
        "--source",
        "gray",
        "--date",
        "2026-07-17",
    )
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
        run = TrainingRun(kind="gray", dataset="bench-v1", status="succeeded", arch="resnet18")
        s.add(run)
        s.flush()
        s.add(
            ModelVersion(
                version="gray-bench",
                kind="gray",
                stage="production",
                run_id=db.saved_id(run),
                dataset="bench-v1",
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


RUNTIMES = (("torch fp32", "torch", None), ("export fp32", "onnx", False), ("export INT8", "onnx", True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600, help="requests per concurrency level (c=1: a quarter)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="aoi-bench-serving-"))
    port = 3900 + os.getpid() % 90
    base = {
        "AOI_HOME": str(home),
        "AOI_SERVING__PORT": str(port),
        "AOI_PREFECT__PORT": str(port + 100),  # its own Prefect server, not one another AOI_HOME holds
        "AOI_SERVING__LOG_FLUSH_S": "1",
        "AOI_EXPORT__MIN_TOP1_AGREEMENT": "0",  # untrained weights: see the module's docstring
        "AOI_EXPORT__MAX_ACCURACY_DELTA": "1",
    }
    os.environ.update(base)
    settings = Settings()
    try:
        production_model(settings)
    finally:
        aoi("ui", "--stop")  # the ingest and dataset commands started this AOI_HOME's Prefect server
    data = images()
    size = settings.serving.max_batch_size
    results: dict[str, dict] = {}
    limits: dict[str, float] = {}
    exported: dict[str, dict] = {}
    for name, runtime, int8 in RUNTIMES:
        os.environ["AOI_SERVING__RUNTIME"] = runtime
        os.environ["AOI_SERVING__BATCHING"] = "true"
        if int8 is not None:
            exported[name] = aoi("export", "gray-bench", *(["--int8"] if int8 else []))
        deployed = load_deployed(Settings(), "gray-bench")
        answering = deployed.describe()["runtime"]
        limits[name] = forward_limit(Settings(), data, size)
        print(
            f"{name:12s} limit: batched forward in-process {limits[name]:.0f} images/s (batch {size}, {answering})",
            flush=True,
        )
        results[name] = served(Settings(), data, args.requests)
        results[name]["runtime"] = answering
        for c in CONCURRENCY:
            figures = results[name][c]
            print(
                f"{name:12s} c={c:<3d} {figures['req_per_s']:7.1f} req/s  p50 {figures['p50_ms']:7.1f} ms  "
                f"p99 {figures['p99_ms']:7.1f} ms  errors {figures['errors']}  CPU per request: server "
                f"{figures['server_cpu_ms_per_request']:.1f} ms, client {figures['client_cpu_ms_per_request']:.1f} ms",
                flush=True,
            )
        print(f"{name:12s} batches {results[name]['batching']}", flush=True)
    os.environ["AOI_SERVING__RUNTIME"], os.environ["AOI_SERVING__BATCHING"] = "torch", "false"
    naive = served(Settings(), data, args.requests)
    top = max(CONCURRENCY)
    torch_rps = results["torch fp32"][top]["req_per_s"]
    summary = {
        "device": exported["export fp32"]["latency"]["device"],
        "limit_images_per_s": {name: round(v, 1) for name, v in limits.items()},
        "limit_cpu_ms_per_image": {name: round((os.cpu_count() or 1) / v * 1e3, 2) for name, v in limits.items()},
        "exports": {
            name: {k: e[k] for k in ("engine", "engines", "latency", "parity")} for name, e in exported.items()
        },
        "served": {name: {str(c): f for c, f in r.items()} for name, r in results.items()},
        "naive_torch": {str(c): f for c, f in naive.items()},
        "int8_forward_over_torch": round(limits["export INT8"] / limits["torch fp32"], 2),
        f"c{top}_over_torch": {
            name: round(r[top]["req_per_s"] / torch_rps, 2) for name, r in results.items() if name != "torch fp32"
        },
        f"c{top}_share_of_own_limit": {
            name: round(r[top]["req_per_s"] / limits[name], 3) for name, r in results.items()
        },
        f"batched_over_naive_c{top}": round(torch_rps / naive[top]["req_per_s"], 2),
        "goal": {"int8_forward_over_torch": 2.5, "over_torch": 1.5, "share_of_limit": 0.5, "over_naive": 2.0},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
