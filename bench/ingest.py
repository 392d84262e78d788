"""Ingest pipeline throughput vs the least any ingest must do, on the real data sets, in one run.

Baseline: read every file, hash it and write it to a fresh folder (copy + SHA-256). Pipeline: the ingest
steps the flow runs (hash and de-duplicate, decode and measure, store, catalog), without Prefect's task
overhead, into a fresh AOI_HOME. Figures are medians over rounds; the ratio is pipeline / baseline speed.

    .venv/bin/python bench/ingest.py [--rounds 3] [--set pku|deeppcb]

Ends with one line of JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from aoi.catalog import db
from aoi.settings import Settings
from ingest import steps
from ingest.pipeline import chunks

SETS = {"pku": ("pku-pcb-roi", "folder"), "deeppcb": ("DeepPCB", "deeppcb")}


def baseline(files: list[Path], into: Path) -> float:
    into.mkdir(parents=True)
    start = time.perf_counter()
    for path in files:
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        (into / digest).write_bytes(data)
    return len(files) / (time.perf_counter() - start)


def pipeline(path: Path, fmt: str, home: Path) -> tuple[float, int]:
    settings = Settings(home=home)
    db.get_engine(settings.catalog_url)  # migrations are set-up, not ingest
    start = time.perf_counter()
    batch = steps.open_batch(settings, str(path), fmt, {}, None)
    found = steps.discover(settings, str(path), fmt)
    tally = steps.Tally(discovered=len(found.candidates))
    for chunk in chunks(found.candidates, settings.ingest.chunk_size, settings.ingest.chunk_max_bytes):
        hashed = steps.hash_and_dedupe(settings, chunk)
        checked = steps.store(settings, steps.decode_and_measure(settings, hashed))
        tally.add(steps.catalog(settings, batch, checked, hashed, found.default_source))
    steps.finish(settings, batch, tally, found)
    elapsed = time.perf_counter() - start
    db.reset_engines()
    return tally.discovered / elapsed, tally.added


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--set", choices=sorted(SETS), default="pku")
    args = parser.parse_args()
    folder, fmt = SETS[args.set]
    root = Settings().datasets_dir / folder
    if not root.is_dir():
        sys.exit(f"{root} not found (AOI_DATASETS_DIR)")
    files = sorted(p for p in root.rglob("*.jpg") if p.is_file())
    base_rates, pipe_rates, added = [], [], 0
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="aoi-bench-") as tmp:
            base_rates.append(baseline(files, Path(tmp) / "copy"))
            rate, added = pipeline(root, fmt, Path(tmp) / "home")
            pipe_rates.append(rate)
        print(
            f"round {r + 1}: copy+hash {base_rates[-1]:8.1f} files/s, ingest {pipe_rates[-1]:8.1f} candidates/s",
            file=sys.stderr,
        )
    b, p = statistics.median(base_rates), statistics.median(pipe_rates)
    print(
        json.dumps(
            {
                "bench": "ingest",
                "set": args.set,
                "rounds": args.rounds,
                "files": len(files),
                "added": added,
                "copy_hash_files_per_s": round(b, 1),
                "ingest_per_s": round(p, 1),
                "ratio": round(p / b, 3),
                "cpu_count": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
