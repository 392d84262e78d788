"""How often live accuracy cries wolf on unchanged machines, and how often it finds a 10-point drop
(``aoi live-accuracy-study``).

The answers are real per-image answers of a model on images it never trained on: the ``EvaluationImage`` rows of
its newest blind evaluations (each answer right or wrong at that evaluation's threshold; Unknown answers do not
count, as in the monitor), else the model's answers computed now on the kind's held-out (blind) images. Their
accuracy is the blind accuracy the monitor compares with. Each trial draws one window of ``per_machine``
confirmed answers from each of 4 simulated machines (with replacement):

- unchanged: every machine's answers as drawn; a live-accuracy verdict of drift on any scope (a machine or the
  whole kind) is a false alarm;
- dropped: the same draw, but on one machine each right answer turns wrong with probability ``drop / blind``, so
  that its expected accuracy is ``drop`` lower (a SIMULATION of a model gone stale on one machine; its images, and
  so its tone, are unchanged: only the answers the line confirms differ); found when that machine is flagged.

The verdict is the monitor's own (``monitoring.live.verdict``, with the settings' bound, allowance and minimum).
"""

from __future__ import annotations

import numpy as np
from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import Evaluation, EvaluationImage
from aoi.settings import MonitoringSettings, Settings
from monitoring import live
from monitoring.study import GOAL, MACHINES, smallest_meeting_goals, study_row

DROPPED = "VRS-03"


def evaluated_answers(settings: Settings, version: str) -> tuple[np.ndarray, dict] | None:
    """Right (True) or wrong of every accepted answer in the newest evaluation of each blind set of ``version``
    that kept its per-image answers; None when there is none."""
    with db.session(settings.catalog_url) as s:
        evaluations = s.exec(
            select(Evaluation)
            .where(Evaluation.model_version == version, Evaluation.split == "blind")
            .order_by(col(Evaluation.created_at).desc(), col(Evaluation.id).desc())
        ).all()
        newest: dict[str, Evaluation] = {}
        for row in evaluations:
            newest.setdefault(row.dataset, row)
        outcomes: list[bool] = []
        used = []
        for row in newest.values():
            images = s.exec(select(EvaluationImage).where(EvaluationImage.evaluation_id == row.id)).all()
            accepted = [i for i in images if i.confidence >= row.threshold]
            if not images:
                continue
            used.append({"evaluation_id": row.id, "blind_set": row.dataset, "images": len(images)})
            outcomes += [i.predicted == i.true_label for i in accepted]
    if not outcomes:
        return None
    return np.asarray(outcomes, dtype=bool), {"source": "evaluation", "evaluations": used}


def computed_answers(settings: Settings, version: str) -> tuple[np.ndarray, dict]:
    """Right or wrong of the model's accepted answers on the kind's held-out (blind) images, computed now."""
    from monitoring import frames, study
    from training.registry import load_model_version

    loaded = load_model_version(settings, version)
    shas = study.held_out(settings, loaded.row.kind)
    if not shas:
        raise ValueError(f"no blind evaluation of {version} and no held-out {loaded.row.kind} images to answer")
    answers = frames.answers_for(settings, loaded, shas).merge(study._stored(settings, shas), on="sha256")
    accepted = answers[~answers["unknown"].astype(bool)]
    return (accepted["model_label"] == accepted["label"]).to_numpy(dtype=bool), {
        "source": "computed",
        "images": len(answers),
    }


def answers(settings: Settings, version: str) -> tuple[np.ndarray, dict]:
    return evaluated_answers(settings, version) or computed_answers(settings, version)


def _flagged(outcomes: np.ndarray, blind: float, config: MonitoringSettings) -> bool:
    return bool(live.verdict(int(outcomes.sum()), len(outcomes), blind, config)[0])


def simulate(
    outcomes: np.ndarray,
    config: MonitoringSettings,
    sizes=(100, 200, 400, 600, 800),
    windows: int = 200,
    drop: float = 0.10,
    seed: int = 0,
) -> list[dict]:
    """The false-alarm and detection rates per window size (confirmed answers per machine) on ``outcomes`` (one
    bool per accepted answer: right or wrong), their accuracy taken as the blind accuracy."""
    if len(outcomes) == 0:
        raise ValueError("no accepted answers to draw from")
    blind = float(np.mean(outcomes))
    if drop >= blind:
        raise ValueError(f"a drop of {drop} is more than the blind accuracy {blind:.2f}")
    flip = drop / blind  # share of right answers turned wrong: expected accuracy blind - drop
    rng = np.random.default_rng(seed)
    rows = []
    for size in sizes:
        alarms = found = 0
        for _ in range(windows):
            draws = {m: outcomes[rng.integers(0, len(outcomes), size)] for m in MACHINES}
            unchanged = [*draws.values(), np.concatenate(list(draws.values()))]
            alarms += any(_flagged(o, blind, config) for o in unchanged)
            stale = draws[DROPPED] & (rng.random(size) >= flip)
            found += _flagged(stale, blind, config)
        rows.append(study_row(size, windows, alarms, found))
    return rows


def run(
    settings: Settings,
    version: str,
    kind: str,
    windows: int = 200,
    sizes=(100, 200, 400, 600, 800),
    drop: float = 0.10,
    seed: int = 0,
) -> dict:
    outcomes, source = answers(settings, version)
    config = settings.monitoring
    rows = simulate(outcomes, config, sizes, windows, drop, seed)
    return {
        "model_version": version,
        "kind": kind,
        "answers": source,
        "pool": len(outcomes),
        "blind_accuracy": round(float(np.mean(outcomes)), 4),
        "drop": drop,
        "dropped_machine": DROPPED,
        "machines": len(MACHINES),
        "max_accuracy_drop": config.max_accuracy_drop,
        "accuracy_confidence": config.accuracy_confidence,
        "min_confirmed": config.min_confirmed,
        "rows": rows,
        "smallest_window_meeting_goals": smallest_meeting_goals(rows),
        "goal": GOAL,
    }
