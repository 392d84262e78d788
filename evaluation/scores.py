"""The arithmetic of an evaluation, on plain arrays: confusion matrices, per-class precision and recall, the
coarse collapse, and the Unknown filter with its threshold calibration (docs/domain.md#blind-tests).

The Unknown filter: an answer whose top-class confidence is below the threshold becomes ``UNKNOWN`` and goes
to a person (or the VRS); accuracy is then measured on the accepted answers only, beside the Unknown rate.
The team's gray model: 94.0% plain, 98.7% on accepted answers at a 21.5% Unknown rate (threshold 99.45%).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aoi.settings import GateSettings

UNKNOWN = "UNKNOWN"


def confusion(true: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """n x n counts, rows true class, columns predicted class."""
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true, dtype=np.int64), np.asarray(pred, dtype=np.int64)), 1)
    return matrix


def per_class(matrix: np.ndarray, labels: list[str]) -> dict[str, dict]:
    """Precision, recall and support per class; None where undefined (nothing predicted, or no support)."""
    out = {}
    for i, label in enumerate(labels):
        predicted, support = int(matrix[:, i].sum()), int(matrix[i, :].sum())
        out[label] = {
            "precision": float(matrix[i, i] / predicted) if predicted else None,
            "recall": float(matrix[i, i] / support) if support else None,
            "support": support,
        }
    return out


def accuracy(matrix: np.ndarray) -> float | None:
    total = int(matrix.sum())
    return float(np.trace(matrix) / total) if total else None


def mean_detection_rate(table: dict[str, dict]) -> float | None:
    """Mean per-class recall over the classes present (the platform's "mean detection rate")."""
    recalls = [c["recall"] for c in table.values() if c["recall"] is not None]
    return float(np.mean(recalls)) if recalls else None


def coarse_index(fine: list[str], coarse_of: dict[str, str]) -> tuple[np.ndarray, list[str]]:
    """For each fine class index, its coarse class index; and the coarse labels in first-seen order."""
    coarse = list(dict.fromkeys(coarse_of[f] for f in fine))
    return np.array([coarse.index(coarse_of[f]) for f in fine], dtype=np.int64), coarse


@dataclass(frozen=True)
class UnknownFilter:
    """What the Unknown filter does at one threshold."""

    threshold: float
    accepted: int
    unknown_rate: float
    accepted_accuracy: float | None  # None when nothing was accepted


def unknown_filter(true: np.ndarray, pred: np.ndarray, confidence: np.ndarray, threshold: float) -> UnknownFilter:
    accepted = np.asarray(confidence) >= threshold
    n, kept = len(accepted), int(accepted.sum())
    right = int((np.asarray(true)[accepted] == np.asarray(pred)[accepted]).sum())
    return UnknownFilter(
        threshold=float(threshold),
        accepted=kept,
        unknown_rate=float(1 - kept / n) if n else 0.0,
        accepted_accuracy=right / kept if kept else None,
    )


def filter_curve(true: np.ndarray, pred: np.ndarray, confidence: np.ndarray) -> list[UnknownFilter]:
    """The filter at every distinct confidence (each a threshold that accepts exactly the answers at or
    above it), from the most permissive to the strictest."""
    order = np.argsort(-np.asarray(confidence), kind="stable")
    conf = np.asarray(confidence)[order]
    right = (np.asarray(true) == np.asarray(pred))[order].astype(np.int64)
    n = len(conf)
    cum_right = np.cumsum(right)
    curve = []
    for k in range(n, 0, -1):  # accept the top k answers
        if k < n and conf[k - 1] == conf[k]:
            continue  # ties: a threshold cannot split equal confidences
        curve.append(
            UnknownFilter(
                threshold=float(conf[k - 1]),
                accepted=k,
                unknown_rate=1 - k / n,
                accepted_accuracy=float(cum_right[k - 1] / k),
            )
        )
    return curve


class CalibrationError(ValueError):
    pass


def calibrate(
    true: np.ndarray,
    pred: np.ndarray,
    confidence: np.ndarray,
    *,
    target_accuracy: float | None = None,
    max_unknown_rate: float | None = None,
) -> UnknownFilter:
    """The threshold that reaches ``target_accuracy`` on accepted answers with the least Unknown rate, or (the
    reverse) the best accepted accuracy whose Unknown rate stays within ``max_unknown_rate``.

    Measured on the valid split, never on a blind set: a threshold fitted to the judge would flatter it."""
    if (target_accuracy is None) == (max_unknown_rate is None):
        raise CalibrationError("give exactly one of target_accuracy and max_unknown_rate")
    curve = filter_curve(true, pred, confidence)
    if not curve:
        raise CalibrationError("no answers to calibrate on")
    if target_accuracy is not None:
        for point in curve:  # most permissive first: the first that reaches the target has the least Unknown
            if point.accepted_accuracy is not None and point.accepted_accuracy >= target_accuracy:
                return point
        raise CalibrationError(f"no threshold reaches {target_accuracy:.2%} accepted accuracy on these answers")
    within = [p for p in curve if p.unknown_rate <= max_unknown_rate + 1e-12]
    best = max(within, key=lambda p: (p.accepted_accuracy or 0.0, -p.unknown_rate))
    return best


RECALL_WITH_UNKNOWN = (
    "images of the class the model answered right at or above the threshold, divided by all images "
    "of the class: an image sent to Unknown counts as not found (a person had to look)"
)


def confusion_with_unknown(
    true: np.ndarray, pred: np.ndarray, confidence: np.ndarray, threshold: float, labels: list[str]
) -> dict:
    """The blind-test table of the team's report: rows true class, columns the accepted answers per predicted
    class and an ``UNKNOWN`` column for the answers the filter sent to a person; each row sums to the class's
    images. Per row: recall (right and accepted / images of the class, ``RECALL_WITH_UNKNOWN``), accepted recall
    (right / accepted) and Unknown rate; per column: precision (right / accepted answers of that class)."""
    n = len(labels)
    true, pred = np.asarray(true, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    accepted = np.asarray(confidence) >= threshold
    matrix = np.zeros((n, n + 1), dtype=np.int64)
    np.add.at(matrix, (true[accepted], pred[accepted]), 1)
    matrix[:, n] = np.bincount(true[~accepted], minlength=n)[:n]
    rows, unknown, columns = matrix.sum(axis=1), matrix[:, n], matrix[:, :n].sum(axis=0)
    right = np.diag(matrix[:, :n])

    def share(a, b):
        return {label: float(a[i] / b[i]) if b[i] else None for i, label in enumerate(labels)}

    return {
        "labels": list(labels),
        "columns": [*labels, UNKNOWN],
        "matrix": matrix.tolist(),
        "threshold": float(threshold),
        "images": {label: int(rows[i]) for i, label in enumerate(labels)},
        "recall": share(right, rows),
        "accepted_recall": share(right, rows - unknown),
        "unknown_rate": share(unknown, rows),
        "precision": share(right, columns),
        "recall_definition": RECALL_WITH_UNKNOWN,
    }


def breakdown(
    true: np.ndarray,
    pred: np.ndarray,
    confidence: np.ndarray,
    threshold: float,
    keys: list,
    name: str,
    labels: list[str],
) -> list[dict]:
    """The evaluation's figures per group of images (``keys[i]`` is image i's machine or part number; None where
    the catalog has none): images, accuracy, accuracy on accepted answers, Unknown rate (the same definitions as
    the whole set's) and each present class's recall, so a machine or part that does worse is not averaged away.
    Groups sorted by key, the images with no key last."""
    true, pred, confidence = np.asarray(true), np.asarray(pred), np.asarray(confidence)
    keys = np.asarray(list(keys), dtype=object)
    out = []
    for key in sorted(set(keys.tolist()), key=lambda k: (k is None, str(k))):
        mask = np.array([k == key if key is not None else k is None for k in keys], dtype=bool)
        t, p = true[mask], pred[mask]
        kept = unknown_filter(t, p, confidence[mask], threshold)
        recall = {labels[c]: float((p[t == c] == c).mean()) for c in sorted(set(t.tolist()))}
        out.append(
            {
                name: key,
                "images": int(mask.sum()),
                "accuracy": float((t == p).mean()),
                "accepted_accuracy": kept.accepted_accuracy,
                "unknown_rate": kept.unknown_rate,
                "recall": recall,
            }
        )
    return out


def label_warnings(gate: GateSettings, per_class: dict[str, dict], images_of: str = "blind images") -> list[dict]:
    """Labels a reviewer should look at before trusting the figures, one entry each (warnings never fail the
    gate): plain recall below ``warn_recall_below`` (the model's detection rate for the label, as the
    ``lowest class recall`` rule measures it), and fewer than ``warn_min_blind_images`` images of the label (a
    recall measured on a handful of images says little: one image of 20 is 5 points)."""
    out = []
    for label, row in per_class.items():
        support, recall = int(row.get("support") or 0), row.get("recall")
        if support < gate.warn_min_blind_images:
            out.append(
                {
                    "label": label,
                    "warning": "few images",
                    "figure": support,
                    "limit": gate.warn_min_blind_images,
                    "message": f"{label}: only {support} {images_of} (fewer than {gate.warn_min_blind_images}); "
                    f"its recall is not reliable",
                }
            )
        if recall is not None and recall < gate.warn_recall_below:
            out.append(
                {
                    "label": label,
                    "warning": "low recall",
                    "figure": recall,
                    "limit": gate.warn_recall_below,
                    "message": f"{label}: recall {recall:.2%} is below {gate.warn_recall_below:.2%} "
                    f"({round(recall * support)} of {support} found)",
                }
            )
    return out
