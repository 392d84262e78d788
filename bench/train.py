"""The same per-worker training loop, same data, model and epochs: called directly in one process, and under
Ray Train with one worker. Throughput is training samples per second of the epochs themselves (each side
times its own epochs); Ray's fixed costs (cluster start, worker group start, checkpoint upload) are reported
separately. Goal: Ray >= 0.9x the direct loop.

    .venv/bin/python bench/train.py [--images 1500] [--epochs 4] [--per-class 300] [--threads N]

Epochs shorter than about 10 s measure start-up (oneDNN's first kernels, Ray's actors still starting) more than
training. ``--threads`` (default: every core) sets torch's threads on both sides: on a 2-core machine Ray's own
processes (controller, raylet, a dozen actors: about 11% of one core when idle) compete with a loop that uses
both cores; with one thread each, they run beside it.

Data: DeepPCB crops (AOI_DATASETS_DIR), cut by the DeepPCB importer into a temporary image store.
Ends with one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aoi.labels import LabelMap
from aoi.preprocess import Preprocessing
from aoi.settings import Settings
from aoi.store import ImageStore
from ingest import pipeline
from ingest.importers import ImportContext, get_importer
from training.loop import LoopConfig, fit
from training.model import build_model
from training.taxonomy import Taxonomy
from training.trainer import CHECKPOINT_FILE, TrainSpec, _loaders, build_trainer, ensure_ray


def crops(settings: Settings, store: ImageStore, n: int) -> list[tuple[str, str]]:
    found = get_importer("deeppcb")(settings.datasets_dir / "DeepPCB", ImportContext(settings.ingest, LabelMap.load()))
    loaded, _ = pipeline.read_and_hash(found.candidates[: n * 2])
    items: dict[str, tuple[str, str]] = {}
    for item in loaded:
        if item.candidate.label is None:  # every DeepPCB crop has one
            continue
        items.setdefault(item.sha256, (store.put(item.data), item.candidate.label))
    return list(items.values())[:n]


def direct(spec: TrainSpec, folder: Path) -> dict:
    torch.set_num_threads(spec.cpus_per_worker)
    train, valid, classes = _loaders(spec, 0, 1)

    def report(epoch, metrics, state):  # the same work as a Ray worker's report: save a checkpoint
        torch.save(state, folder / CHECKPOINT_FILE)

    history = fit(
        build_model(spec.arch, classes, spec.prep.channels),
        train,
        valid,
        spec.loop,
        torch.device("cpu"),
        classes,
        report,
    )
    return {
        "samples": sum(h["train_samples"] for h in history),
        "train_s": sum(h["train_s"] for h in history),
        "epoch_s": [round(h["train_s"], 2) for h in history],
    }


def under_ray(spec: TrainSpec, folder: Path) -> dict:
    start = time.perf_counter()
    ensure_ray()
    init_s = time.perf_counter() - start
    start = time.perf_counter()
    result = build_trainer(spec, f"bench-{int(time.time())}", folder).fit()
    fit_s = time.perf_counter() - start
    history = result.return_value["history"]
    train_s = sum(h["train_s"] for h in history)
    return {
        "samples": sum(h["train_samples"] for h in history),
        "train_s": train_s,
        "ray_init_s": init_s,
        "fit_wall_s": fit_s,
        "epoch_s": [round(h["train_s"], 2) for h in history],
        "mixed_precision": history[0]["mixed_precision"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads, both sides")
    args = parser.parse_args()
    settings = Settings()
    if not (settings.datasets_dir / "DeepPCB").is_dir():
        sys.exit(f"DeepPCB not found under AOI_DATASETS_DIR={settings.datasets_dir}")
    with tempfile.TemporaryDirectory(prefix="aoi-bench-train-") as tmp:
        store = ImageStore(Path(tmp) / "store", fsync=False)
        items = crops(settings, store, args.images)
        split = int(len(items) * 0.85)
        taxonomy = Taxonomy.load("gray")
        items = [i for i in items if i[1] in taxonomy.fine]
        spec = TrainSpec(
            store_dir=str(store.root),
            taxonomy=taxonomy.as_dict(),
            splits={"train": items[:split], "valid": items[split:]},
            prep=Preprocessing(),
            loop=LoopConfig(epochs=args.epochs, per_class=args.per_class),
            workers=1,
            cpus_per_worker=args.threads,
        )
        plain = direct(spec, Path(tmp))
        ray_run = under_ray(spec, Path(tmp) / "ray")
    d_rate = plain["samples"] / plain["train_s"]
    r_rate = ray_run["samples"] / ray_run["train_s"]
    overhead = ray_run["fit_wall_s"] - ray_run["train_s"]
    print(f"epoch seconds: direct {plain['epoch_s']}, Ray {ray_run['epoch_s']}", file=sys.stderr)
    print(
        f"direct {d_rate:.1f} samples/s, Ray 1 worker {r_rate:.1f} samples/s, ratio {r_rate / d_rate:.2f}; "
        f"Ray fixed costs: init {ray_run['ray_init_s']:.1f} s, fit wall {ray_run['fit_wall_s']:.1f} s of which "
        f"{overhead:.1f} s outside the epochs",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "bench": "train",
                "images": len(items),
                "epochs": args.epochs,
                "threads": args.threads,
                "mixed_precision": ray_run["mixed_precision"],
                "epoch_s": {"direct": plain["epoch_s"], "ray": ray_run["epoch_s"]},
                "direct_samples_per_s": round(d_rate, 1),
                "ray_samples_per_s": round(r_rate, 1),
                "ratio": round(r_rate / d_rate, 3),
                "goal_ratio": 0.9,
                "goal_met": r_rate / d_rate >= 0.9,
                "ray_init_s": round(ray_run["ray_init_s"], 2),
                "ray_fit_wall_s": round(ray_run["fit_wall_s"], 2),
                "ray_outside_epochs_s": round(overhead, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
