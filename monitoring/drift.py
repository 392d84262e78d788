"""One Evidently comparison: a current frame against the reference, over the monitored columns.

Evidently's DataDriftPreset tests every column with the method it picks for the sample size (K-S for numbers,
chi-square or Z for categories under 1,000 rows; Wasserstein and Jensen-Shannon above) unless the settings
name one. What this module returns is the figures; ``monitoring.policy`` decides what they mean.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from aoi.settings import MonitoringSettings
from monitoring.frames import CATEGORICAL, NUMERIC, QUALITY


@dataclass(frozen=True)
class Comparison:
    """Figures of one scope (all answers of a kind, or one machine's)."""

    samples: int
    drifted_columns: list[str]
    drift_share: float
    unknown_rate: float
    reference_unknown_rate: float
    scores: dict[str, dict] = field(default_factory=dict)  # column -> {method, score, threshold, drifted}
    reference_answers: int = 0  # distinct answers in the reference (unseen images): what its Unknown rate rests on
    snapshot: object = field(default=None, repr=False, compare=False)  # the Evidently run, for its HTML

    def save_html(self, path: Path) -> Path:
        """The Evidently report as a self-contained page (about 4 MB)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.snapshot.save_html(str(path))
        return path

    @property
    def unknown_rise(self) -> float:
        return self.unknown_rate - self.reference_unknown_rate

    @property
    def unknown_rise_floor(self) -> float:
        """The rise this window shows with 95% confidence (one-sided): the observed rise less 1.645 standard
        errors of a difference of two proportions. A hundred answers put about ±5 points of chance on a rate;
        judging the raw rise cried wolf on half the undrifted windows of a model with a 23% Unknown rate."""
        p, q = self.unknown_rate, self.reference_unknown_rate
        variance = p * (1 - p) / max(self.samples, 1) + q * (1 - q) / max(self.reference_answers, 1)
        return self.unknown_rise - 1.645 * math.sqrt(variance)

    def as_dict(self) -> dict:
        return {
            "samples": self.samples,
            "drifted_columns": self.drifted_columns,
            "drift_share": round(self.drift_share, 4),
            "unknown_rate": round(self.unknown_rate, 4),
            "reference_unknown_rate": round(self.reference_unknown_rate, 4),
            "unknown_rise": round(self.unknown_rise, 4),
            "unknown_rise_floor": round(self.unknown_rise_floor, 4),
            "scores": self.scores,
        }


def _evidently():
    os.environ.setdefault("DO_NOT_TRACK", "1")  # no usage telemetry from a factory network
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    return DataDefinition, Dataset, Report, DataDriftPreset


def compared_numeric(reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """The numeric columns with a value on both sides. A column one side never measured (sharpness and smear
    of images logged before they existed) is unknown there: left out, neither drift nor clean."""
    return [
        c
        for c in NUMERIC
        if c in reference and c in current and reference[c].notna().any() and current[c].notna().any()
    ]


def _prepared(frame: pd.DataFrame, numeric: list[str]) -> pd.DataFrame:
    out = frame[[*numeric, *CATEGORICAL]].copy()
    for column in CATEGORICAL:  # categories as strings: Evidently's tests and HTML treat them as labels
        # a reference image outside the valid split has no answer: it stays missing, not the label "nan"
        out[column] = out[column].astype(str).where(out[column].notna())
    return out


def rate(flags: pd.Series) -> float:
    """Share of True among the rows that have an answer."""
    answered = flags.dropna()
    return float(answered.astype(bool).mean()) if len(answered) else 0.0


def run_report(reference: pd.DataFrame, current: pd.DataFrame, config: MonitoringSettings):
    """The Evidently snapshot of ``current`` against ``reference`` (tests included)."""
    DataDefinition, Dataset, Report, DataDriftPreset = _evidently()
    numeric = compared_numeric(reference, current)
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=list(CATEGORICAL))
    options = {"drift_share": config.drift_share}
    if config.num_method:
        options["num_method"] = config.num_method
    if config.num_threshold is not None:
        options["num_threshold"] = config.num_threshold
    if config.cat_method:
        options["cat_method"] = config.cat_method
    if config.cat_threshold is not None:
        options["cat_threshold"] = config.cat_threshold
    report = Report([DataDriftPreset(**options)], include_tests=True)
    with warnings.catch_warnings():  # a constant column (one JPEG quality everywhere) has no correlation: not news
        warnings.simplefilter("ignore", RuntimeWarning)
        current_data = Dataset.from_pandas(_prepared(current, numeric), data_definition=definition)
        reference_data = Dataset.from_pandas(_prepared(reference, numeric), data_definition=definition)
        return report.run(current_data=current_data, reference_data=reference_data)


def figures(snapshot, reference: pd.DataFrame, current: pd.DataFrame) -> Comparison:
    """Per-column scores and verdicts read from the snapshot's ValueDrift metrics and tests."""
    data = snapshot.dict()
    scores: dict[str, dict] = {}
    by_metric = {}
    for metric in data["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            by_metric[metric["id"]] = config["column"]
            scores[config["column"]] = {
                "method": config.get("method"),
                "threshold": config.get("threshold"),
                "score": _number(metric.get("value")),
                "drifted": False,
            }
    for test in data["tests"]:
        column = by_metric.get(test.get("metric_config", {}).get("metric_id"))
        if column is not None and test.get("status") == "FAIL":
            scores[column]["drifted"] = True
    drifted = [c for c in (*NUMERIC, *CATEGORICAL) if scores.get(c, {}).get("drifted")]
    # The share is over the columns other than image quality, which policy judges on their own: two more columns
    # would have diluted the share (a gray lamp at 80% light moves 4 of 13 columns, which is not 0.3 of 15).
    shared = [c for c in scores if c not in QUALITY]
    share = sum(c in drifted for c in shared) / max(len(shared), 1)
    return Comparison(
        samples=len(current),
        drifted_columns=drifted,
        drift_share=share,
        unknown_rate=rate(current["unknown"]),
        reference_unknown_rate=rate(reference["unknown"]),
        scores=scores,
        reference_answers=distinct_answers(reference),
        snapshot=snapshot,
    )


def distinct_answers(reference: pd.DataFrame) -> int:
    """Answers the reference holds: rows lent another image's answer (``answer_of``) count once."""
    if "answer_of" in reference:
        return int(reference["answer_of"].nunique())
    return int(reference["unknown"].notna().sum())


def _number(value) -> float | None:
    try:
        return round(float(value), 6)
    except (TypeError, ValueError):
        return None


def compare(reference: pd.DataFrame, current: pd.DataFrame, config: MonitoringSettings) -> Comparison:
    """Run the report and read its figures."""
    return figures(run_report(reference, current, config), reference, current)
