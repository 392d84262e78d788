"""A drift check on 10k and on 100k logged predictions, measured in one run on this machine.

One check is what the monitor flow does for one kind: read the window from the prediction log (catalog), map
calibrated machines' tone, and compare it with the reference in Evidently overall and for each of 4 machines,
with the HTML report and the run saved in the Evidently workspace; and the live accuracy of the answers the line
confirmed (every 10th answer, per machine, part and machine/part). The reference is 2,000 answers, the size of a
valid split. Goal: <= 12x the time for 10x the rows.

    .venv/bin/python bench/monitor.py [--repeats 3]

Ends with one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sqlalchemy import literal, select

from aoi.catalog import db
from aoi.catalog.models import LineFeedback, Prediction, table_of
from aoi.settings import Settings
from bench.traffic import T0, log_answers, synthetic
from monitoring import check, steps

MACHINES = ("VRS-01", "VRS-02", "VRS-03", "VRS-04")


def timed_check(settings: Settings, reference, window: check.Window) -> tuple[float, dict]:
    started = time.perf_counter()
    current, _ = steps.load_window(settings, "color", "bench-model", window)
    scopes = steps.compare_scopes(settings, "color", reference, current)
    scopes["live_accuracy"] = steps.live_accuracy(settings, "color", "bench-model", window)
    return time.perf_counter() - started, scopes


def confirm_every_tenth(settings: Settings) -> None:
    """The line's confirmation of every 10th logged answer (its own label: the figures are not the point here)."""
    p, f = table_of(Prediction).c, table_of(LineFeedback).c
    chosen = select(p.request_id, p.model_label, literal("bench"), literal("import"), p.at).where(p.id % 10 == 0)
    with db.get_engine(settings.catalog_url).begin() as connection:
        connection.execute(
            table_of(LineFeedback).insert().from_select([f.request_id, f.label, f.by, f.source, f.at], chosen)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="aoi-bench-monitor-"))
    os.environ["AOI_HOME"] = str(home)
    settings = Settings()
    db.upgrade(settings.catalog_url)
    reference = synthetic(2000, seed=0)
    # 10k answers in the first hour, 100k in the next ten; machine VRS-02's lamp at 90% throughout.
    small = check.Window(T0, T0 + timedelta(hours=1))
    large = check.Window(T0 + timedelta(hours=1), T0 + timedelta(hours=11))
    print("logging 110,000 answers into the prediction log ...", file=sys.stderr)
    log_answers(
        settings,
        "bench-model",
        "color",
        reference,
        10_000 // len(MACHINES),
        small.start,
        MACHINES,
        {"VRS-02": 0.9},
        seed=1,
    )
    for hour in range(10):
        log_answers(
            settings,
            "bench-model",
            "color",
            reference,
            10_000 // len(MACHINES),
            large.start + timedelta(hours=hour),
            MACHINES,
            {"VRS-02": 0.9},
            seed=2 + hour,
        )
    confirm_every_tenth(settings)
    timed_check(settings, reference, small)  # warm-up: imports (Evidently about 4 s), first queries
    figures = {}
    for name, window in (("10k", small), ("100k", large)):
        times: list[float] = []
        scopes: dict = {}
        for _ in range(args.repeats):
            seconds, scopes = timed_check(settings, reference, window)
            times.append(seconds)
        best = min(times)
        flagged = sorted(m for m, v in scopes["machines"].items() if v["drift"])
        figures[name] = {
            "rows": scopes["overall"]["samples"],
            "best_s": round(best, 3),
            "median_s": round(sorted(times)[len(times) // 2], 3),
            "flagged_machines": flagged,
            "confirmed": scopes["live_accuracy"]["scopes"][0]["confirmed"],
        }
        print(f"{name}: {figures[name]}", file=sys.stderr)
    ratio = figures["100k"]["best_s"] / figures["10k"]["best_s"]
    print(
        json.dumps(
            {
                "check_10k": figures["10k"],
                "check_100k": figures["100k"],
                "ratio_100k_over_10k": round(ratio, 2),
                "goal": {"ratio_max": 12.0},
                "goal_met": ratio <= 12.0,
                "reference_rows": len(reference),
                "machines": len(MACHINES),
            }
        )
    )


if __name__ == "__main__":
    main()
