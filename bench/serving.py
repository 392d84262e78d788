"""Serving throughput, measured in one run on this machine:

1. the limit: in-process batched forward passes of the production model (no HTTP, no decoding);
2. `/classify` of the served process (adaptive batching on) at concurrency 1, 8 and 32: requests/s, p50, p99;
3. the same for a naive server: the same service with batching off (one forward pass per request);
4. the cost of keeping answers (serving/keep.py): batched /classify at concurrency 32 with nothing kept
   (AOI_SERVING__KEEP_SHARE=0), the default share (0.02) and every answer kept (1.0, the worst case: as if every
   answer were doubtful), in alternating rounds, each round with images not sent before (so the store writes them).

Goals: batched /classify at concurrency 32 >= 50% of the limit and >= 2x the naive server; with every answer
kept >= 0.9x the throughput with none kept.
The model is the demo's gray architecture (resnet18, 64 px, 1 channel) with untrained weights: speed does not
depend on the weights. Its threshold is set near 0 so its answers are confident (route FINAL): the keep share
alone decides what is kept. Images are generated 64 px gray PNGs. Client and server share this machine's cores.

    .venv/bin/python bench/serving.py [--requests 600] [--keep-rounds 2] [--keeping-only]

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
                threshold=1e-6,  # never Unknown: what is kept is the share's choice (phase 4)
            )
        )
        s.commit()
    return "gray-bench"


def images(n: int = 64, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
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


def keeping(settings: Settings, requests: int, rounds: int) -> dict:
    """Batched /classify at c=32 per keep share, in alternating rounds (drift on a shared machine hits every share
    alike); fresh images every round. Returns figures per share, with what the service kept."""
    shares = {"off": "0", "default": "0.02", "all": "1.0"}
    runs: dict[str, list[dict]] = {name: [] for name in shares}
    seed = 1000
    for _ in range(rounds):
        for name, share in shares.items():
            os.environ["AOI_SERVING__KEEP_SHARE"] = share
            seed += 1
            data = images(requests, seed)
            server = process.start_background(Settings())
            try:
                root = psutil.Process(server.pid)
                pids = [root.pid, *(p.pid for p in root.children(recursive=True))]
                run_load(server.url, images(64, 7), 64, 8)  # warm-up: images kept in every share alike
                server_cpu = _cpu_s(pids)
                figures = run_load(server.url, data, requests, max(CONCURRENCY)).figures()
                kept = httpx.get(f"{server.url}/model", timeout=10).json()["kept_answers"]
                if not _idle(server.url):  # the writer's work counts too: wait until it has written everything
                    print("keep: the writer did not catch up within 30 s", flush=True)
                figures["server_cpu_ms_per_request"] = round((_cpu_s(pids) - server_cpu) / requests * 1e3, 2)
                figures["kept_answers"] = kept
            finally:
                process.stop(settings)
            runs[name].append(figures)
            print(
                f"keep {name:7s} share {share:4s} {figures['req_per_s']:7.1f} req/s  p50 {figures['p50_ms']:7.1f} ms  "
                f"p99 {figures['p99_ms']:7.1f} ms  errors {figures['errors']}  server CPU "
                f"{figures['server_cpu_ms_per_request']:.1f} ms/request  kept "
                f"{figures['kept_answers']['kept'] + figures['kept_answers']['queued']} (skipped "
                f"{figures['kept_answers']['skipped_queue_full']})",
                flush=True,
            )
    os.environ.pop("AOI_SERVING__KEEP_SHARE", None)
    out: dict = {}
    for name, done in runs.items():
        out[name] = {
            "req_per_s": round(sum(f["req_per_s"] for f in done) / len(done), 1),
            "p50_ms": round(sum(f["p50_ms"] for f in done) / len(done), 1),
            "p99_ms": round(max(f["p99_ms"] for f in done), 1),
            "errors": sum(f["errors"] for f in done),
            "rounds": [f["req_per_s"] for f in done],
            "server_cpu_ms_per_request": round(sum(f["server_cpu_ms_per_request"] for f in done) / len(done), 2),
        }
    out["all_over_off"] = round(out["all"]["req_per_s"] / out["off"]["req_per_s"], 3)
    out["default_over_off"] = round(out["default"]["req_per_s"] / out["off"]["req_per_s"], 3)
    # The server is CPU-bound: the ratio of its CPU per request is what the throughput ratio tends to on a machine
    # whose other load does not move between runs (this one's throughput moves with its neighbours).
    cpu = {name: out[name]["server_cpu_ms_per_request"] for name in shares}
    out["all_over_off_by_cpu"] = round(cpu["off"] / cpu["all"], 3)
    out["default_over_off_by_cpu"] = round(cpu["off"] / cpu["default"], 3)
    return out


def _idle(url: str, timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/model", timeout=10).json()["kept_answers"]["queued"] == 0:
            return True
        time.sleep(0.2)
    return False


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


def _print_keeping(keep: dict) -> None:
    print(
        f"keeping: every answer kept {keep['all_over_off']:.3f}x, the default share {keep['default_over_off']:.3f}x "
        f"the throughput with none kept (by server CPU per request: {keep['all_over_off_by_cpu']:.3f}x and "
        f"{keep['default_over_off_by_cpu']:.3f}x)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600, help="requests per concurrency level (c=1: a quarter)")
    parser.add_argument("--keep-rounds", type=int, default=2, help="rounds of the keeping comparison (phase 4)")
    parser.add_argument("--keeping-only", action="store_true", help="run phase 4 only")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="aoi-bench-serving-"))
    port = 3900 + os.getpid() % 90
    base = {"AOI_HOME": str(home), "AOI_SERVING__PORT": str(port), "AOI_SERVING__LOG_FLUSH_S": "1"}
    os.environ.update(base)
    settings = Settings()
    production_model(settings)
    if args.keeping_only:
        keep = keeping(settings, args.requests, args.keep_rounds)
        _print_keeping(keep)
        print(json.dumps({"keeping": keep, "goal": {"keep_all_over_off": 0.9}}))
        return
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
    os.environ["AOI_SERVING__BATCHING"] = "true"
    keep = keeping(settings, args.requests, args.keep_rounds)
    _print_keeping(keep)
    top = max(CONCURRENCY)
    batched, naive = results["batched"][top]["req_per_s"], results["naive"][top]["req_per_s"]
    summary = {
        "limit_images_per_s": round(limit, 1),
        "limit_cpu_ms_per_image": round((os.cpu_count() or 1) / limit * 1e3, 2),
        "batched": {str(c): f for c, f in results["batched"].items()},
        "naive": {str(c): f for c, f in results["naive"].items()},
        f"batched_c{top}_share_of_limit": round(batched / limit, 3),
        f"batched_over_naive_c{top}": round(batched / naive, 2),
        "keeping": keep,
        "goal": {"share_of_limit": 0.5, "over_naive": 2.0, "keep_all_over_off": 0.9},
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
