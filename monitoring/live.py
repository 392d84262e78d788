"""Live accuracy: the production model's answers that the line confirmed (``LineFeedback``), per kind, machine,
part number and machine/part, against the model's blind accuracy.

What counts, so that the live figure means what the blind one does (``Evaluation.accepted_accuracy``: accuracy on
the answers the Unknown filter kept):

- an answer is **right** when it was not Unknown and the model's top fine class (``model_label``, before the
  line's rules) is the confirmed fine class; **wrong** when it was not Unknown and another class was confirmed;
- an **Unknown** answer abstained: it is neither right nor wrong (counted as ``unknown``; a rising Unknown rate is
  the input check's business);
- a **NOT_DEFECT** confirmation (the AOI's false call on a colour crop) is left out (counted as ``not_defect``): the
  colour model has no such class and its blind sets hold no such image, so it would lower the live figure for a
  reason the blind one can never show. On gray, "not a defect" is the class ``PASS`` (``/feedback``, the import and
  the review queue all record it so), which the model has and is judged on.

The decision is made on a bound, not the point estimate: the one-sided upper Wilson score bound of the live
accuracy at ``accuracy_confidence`` (95%). Drift when that bound is below ``blind - max_accuracy_drop``: even the
most the model could plausibly be getting right is a drop beyond the allowance. Wilson rather than
Clopper-Pearson: its coverage is close to nominal at accuracies near 1 (where a Wald interval breaks down), while
Clopper-Pearson's guaranteed coverage makes it wider, which costs detections for no fewer false alarms in the
study (``aoi live-accuracy-study``). Scopes with fewer than ``min_confirmed`` accepted confirmed answers get no
verdict (``drift: null``).
"""

from __future__ import annotations

import math
from datetime import datetime
from statistics import NormalDist

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlmodel import col
from sqlmodel import select as select_rows

from aoi.catalog import db
from aoi.catalog.models import Evaluation, LineFeedback, ModelVersion, Prediction, table_of
from aoi.settings import MonitoringSettings, Settings

NOT_DEFECT = "NOT_DEFECT"


def upper_bound(correct: int, n: int, confidence: float) -> float:
    """The one-sided upper Wilson score bound of a proportion ``correct / n`` at ``confidence``."""
    if n <= 0:
        return 1.0
    z = NormalDist().inv_cdf(confidence)
    p = correct / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (centre + spread) / (1 + z * z / n))


def verdict(correct: int, n: int, blind: float | None, config: MonitoringSettings) -> tuple[bool | None, float, str]:
    """(drift, upper bound, why) of one scope: None when there are too few answers or no blind accuracy."""
    bound = upper_bound(correct, n, config.accuracy_confidence)
    if blind is None:
        return None, bound, "no blind accuracy of the model to compare with (aoi evaluate on a blind set)"
    if n < config.min_confirmed:
        return None, bound, f"too few confirmed answers to say: {n} < {config.min_confirmed}"
    limit = blind - config.max_accuracy_drop
    accuracy = correct / n
    if bound < limit:
        return True, bound, f"{accuracy:.2f} (bound {bound:.2f}) < blind {blind:.2f} - {config.max_accuracy_drop:g}"
    return False, bound, f"{accuracy:.2f} (bound {bound:.2f}) >= blind {blind:.2f} - {config.max_accuracy_drop:g}"


def blind_accuracy(settings: Settings, version: str) -> dict | None:
    """The model's blind accepted accuracy: the newest evaluation of each blind set, at the model's own threshold
    where there is one, pooled by the answers each accepted. None when the model has no blind evaluation."""
    with db.session(settings.catalog_url) as s:
        model = s.exec(select_rows(ModelVersion).where(ModelVersion.version == version)).first()
        rows = s.exec(
            select_rows(Evaluation)
            .where(Evaluation.model_version == version, Evaluation.split == "blind")
            .order_by(col(Evaluation.created_at).desc(), col(Evaluation.id).desc())
        ).all()
    threshold = model.threshold if model is not None else None
    chosen: dict[str, Evaluation] = {}
    for row in rows:
        if row.accepted_accuracy is None:
            continue
        held = chosen.get(row.dataset)
        if held is None or (threshold is not None and held.threshold != threshold and row.threshold == threshold):
            chosen[row.dataset] = row
    if not chosen:
        return None
    accepted = {name: row.images * (1 - row.unknown_rate) for name, row in chosen.items()}
    total = sum(accepted.values())
    if total <= 0:
        return None
    accuracy = sum(float(row.accepted_accuracy or 0.0) * accepted[name] for name, row in chosen.items()) / total
    return {
        "accuracy": round(accuracy, 4),
        "accepted_answers": round(total),
        "blind_sets": sorted(chosen),
        "evaluation_ids": sorted(int(row.id or 0) for row in chosen.values()),
    }


def confirmed(
    settings: Settings, kind: str | None, version: str | None, start: datetime | None, end: datetime | None
) -> pd.DataFrame:
    """Answers of the prediction log in [start, end) that the line confirmed: machine, part, the model's label,
    Unknown, latency and the confirmed ``truth``."""
    p, f = table_of(Prediction).c, table_of(LineFeedback).c
    query = select(
        p.kind, p.model_version, p.machine_id, p.part_no, p.model_label, p.unknown, f.label.label("truth")
    ).join(table_of(LineFeedback), f.request_id == p.request_id)
    if kind is not None:
        query = query.where(p.kind == kind)
    if version is not None:
        query = query.where(p.model_version == version)
    if start is not None and end is not None:
        query = query.where(p.at >= start, p.at < end)
    with db.get_engine(settings.catalog_url).connect() as connection:
        frame = pd.read_sql(query, connection)
    return with_outcomes(frame)


def with_outcomes(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns ``counted`` (an accepted answer with a fine-class truth) and ``right`` (counted and the class)."""
    frame = frame.copy()
    frame["unknown"] = frame["unknown"].astype(bool)
    not_defect = frame["truth"] == NOT_DEFECT
    frame["counted"] = ~frame["unknown"] & ~not_defect
    frame["right"] = frame["counted"] & (frame["model_label"] == frame["truth"])
    return frame


def _figures(rows: pd.DataFrame, blind: float | None, config: MonitoringSettings) -> dict:
    n, correct = int(rows["counted"].sum()), int(rows["right"].sum())
    drift, bound, why = verdict(correct, n, blind, config)
    return {
        "confirmed": len(rows),
        "unknown": int(rows["unknown"].sum()),
        "not_defect": int((rows["truth"] == NOT_DEFECT).sum()),
        "n": n,
        "correct": correct,
        "accuracy": round(correct / n, 4) if n else None,
        "bound": round(bound, 4),
        "blind_accuracy": blind,
        "drift": drift,
        "reason": why,
    }


def scopes(frame: pd.DataFrame, kind: str, blind: float | None, config: MonitoringSettings) -> list[dict]:
    """Live accuracy of the whole kind, each machine, each part number and each machine/part pair."""
    out = [{"scope": "all", "kind": kind, "machine": None, "part": None, **_figures(frame, blind, config)}]
    machines = frame["machine_id"].where(frame["machine_id"].notna(), None)
    part_nos = frame["part_no"].where(frame["part_no"].notna(), None)
    for machine in sorted(m for m in set(machines) if m is not None):
        rows = frame[machines == machine]
        out.append({"scope": machine, "kind": kind, "machine": machine, "part": None, **_figures(rows, blind, config)})
    for part in sorted(p for p in set(part_nos) if p is not None):
        rows = frame[part_nos == part]
        out.append(
            {"scope": f"part {part}", "kind": kind, "machine": None, "part": part, **_figures(rows, blind, config)}
        )
    pairs = sorted({(m, p) for m, p in zip(machines, part_nos) if m is not None and p is not None})
    for machine, part in pairs:
        rows = frame[(machines == machine) & (part_nos == part)]
        out.append(
            {
                "scope": f"{machine}/{part}",
                "kind": kind,
                "machine": machine,
                "part": part,
                **_figures(rows, blind, config),
            }
        )
    return out


def drift_reasons(live: dict) -> list[str]:
    """The verdict's reasons from live accuracy: one per scope that dropped."""
    return [
        f"live accuracy on {row['kind'] if row['scope'] == 'all' else row['scope']} {row['reason']}"
        for row in live.get("scopes", [])
        if row["drift"]
    ]


def by_model(settings: Settings, kind: str | None = None) -> dict[tuple[str, str], dict]:
    """Per (kind, model version) over the whole prediction log: confirmed answers and live accuracy, latency p50
    and p99, and errors (confirmed wrong answers: accepted, a fine class confirmed, not the model's)."""
    p = table_of(Prediction).c
    query = select(p.kind, p.model_version, p.latency_ms)
    if kind is not None:
        query = query.where(p.kind == kind)
    with db.get_engine(settings.catalog_url).connect() as connection:
        latency = pd.read_sql(query, connection)
    answers = confirmed(settings, kind, None, None, None)
    out: dict[tuple[str, str], dict] = {}
    for (k, version), rows in latency.groupby(["kind", "model_version"]):
        ms = rows["latency_ms"].to_numpy(dtype=float)
        mine = answers[(answers["kind"] == k) & (answers["model_version"] == version)]
        n, correct = int(mine["counted"].sum()), int(mine["right"].sum())
        out[(str(k), str(version))] = {
            "latency_p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
            "latency_p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None,
            "confirmed": len(mine),
            "confirmed_accepted": n,
            "live_accuracy": round(correct / n, 4) if n else None,
            "errors": n - correct,
        }
    return out
