"""Evaluation steps as the CLI and the ``promote`` flow call them: evaluate a model version on a dataset split or
blind set (stored in the catalog, with an HTML report), calibrate its Unknown threshold on the valid split, and
measure its tone and compression robustness."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlmodel import col, func, select
from tqdm.auto import tqdm

from aoi.catalog import db
from aoi.catalog.models import (
    DatasetMember,
    DatasetVersion,
    Evaluation,
    EvaluationImage,
    ModelVersion,
    RobustnessRun,
    table_of,
    utcnow,
)
from aoi.settings import Settings
from datasets.versions import DatasetError, describe, manifest
from evaluation import scores
from evaluation.predict import Predictions, load_images, probabilities
from evaluation.robustness import COMPRESSIONS, TONE_FACTORS, channels_of, reencode, scale_channel
from training.registry import LoadedModel, load_model_version, threshold_of
from training.taxonomy import Taxonomy


class EvaluationError(ValueError):
    """An evaluation request that cannot be honoured; the message says why."""


def members(settings: Settings, dataset: str, split: str | None, kind: str) -> tuple[str, list[tuple[str, str]]]:
    """(split, [(sha256, label)]) of a dataset version: a blind set whole, a training version's ``split``
    (default ``test``). Refuses a set of the other kind and an empty selection."""
    try:
        version = describe(settings.catalog_url, dataset)
    except DatasetError as err:
        raise EvaluationError(f"{err} (aoi dataset list)") from None
    if version["source"] != kind:
        raise EvaluationError(f"{dataset} holds {version['source']} images; this model is a {kind} model")
    if version["role"] == "blind" and split not in (None, "blind"):
        raise EvaluationError(f"{dataset} is a blind set: it has no {split} split")
    split = "blind" if version["role"] == "blind" else (split or "test")
    rows = [
        (r["sha256"], r["label"]) for r in manifest(settings.catalog_url, dataset) if r["split"] == split and r["label"]
    ]
    if not rows:
        raise EvaluationError(f"{dataset} has no labelled {split} images")
    return split, rows


@dataclass(frozen=True)
class Selection:
    """Images a model is scored on: split, [(sha256, label)], each decoded once, and each one's machine
    calibration (None for images of no calibrated machine), applied as serving applies it."""

    split: str
    rows: list[tuple[str, str]]
    images: list
    calibrations: list


def images_of(settings: Settings, loaded: LoadedModel, dataset: str, split: str | None) -> Selection:
    """The selection of a dataset the model can be scored on: labels outside its taxonomy are refused."""
    from aoi.store import ImageStore
    from features.calibration import for_images

    split, rows = members(settings, dataset, split, loaded.row.kind)
    unknown = sorted({label for _, label in rows if label not in loaded.taxonomy.fine})
    if unknown:
        raise EvaluationError(
            f"labels {', '.join(unknown)} are not classes of {loaded.row.version} ({', '.join(loaded.taxonomy.fine)})"
        )
    shas = [sha for sha, _ in rows]
    calibrated = for_images(settings, shas)
    return Selection(
        split,
        rows,
        load_images(ImageStore(settings.store_dir), shas, loaded.prep.channels),
        [calibrated.get(sha) for sha in shas],
    )


def predict(settings: Settings, loaded: LoadedModel, selected: Selection, change=None) -> Predictions:
    probs = probabilities(
        loaded.model, loaded.prep, selected.images, change, settings.evaluation.batch_size, selected.calibrations
    )
    true = np.array([loaded.taxonomy.index(label) for _, label in selected.rows], dtype=np.int64)
    return Predictions([sha for sha, _ in selected.rows], true, probs)


def catalog_rows(settings: Settings, shas: list[str]) -> dict[str, tuple[int, str | None, str | None]]:
    """Each image's catalog id, machine and part number (None where it has none: the public sets), by hash."""
    from aoi.catalog.models import Image

    found = {}
    with db.session(settings.catalog_url) as s:
        for start in range(0, len(shas), 5000):  # bounded IN lists
            chunk = shas[start : start + 5000]
            rows = s.exec(
                select(Image.id, Image.sha256, Image.machine_id, Image.part_no).where(col(Image.sha256).in_(chunk))
            )
            found.update((sha, (int(image_id), machine, part)) for image_id, sha, machine, part in rows)
    return found


def origins(
    settings: Settings, shas: list[str], found: dict | None = None
) -> tuple[list[str | None], list[str | None]]:
    """Each image's machine and part number as the catalog has them (None where it has none: the public sets)."""
    found = catalog_rows(settings, shas) if found is None else found
    pairs = [found[sha][1:] if sha in found else (None, None) for sha in shas]
    return [m for m, _ in pairs], [part for _, part in pairs]


TOP_K = 3


def answers(p: Predictions, labels: list[str], ids: dict[str, tuple], evaluation_id: int) -> list[dict]:
    """One ``evaluation_image`` row per image: true label, top-1 answer before the Unknown filter, its
    confidence, and the top 3 labels with their probabilities (what the threshold explorer and the confusion
    cells' image lists read)."""
    k = min(TOP_K, p.probs.shape[1]) if p.probs.ndim == 2 else 0
    order = np.argsort(-p.probs, axis=1, kind="stable")[:, :k] if k else np.zeros((len(p.shas), 0), dtype=np.int64)
    rows = []
    for i, sha in enumerate(p.shas):
        top = [[labels[j], float(p.probs[i, j])] for j in order[i]]
        rows.append(
            {
                "evaluation_id": evaluation_id,
                "image_id": ids[sha][0],
                "true_label": labels[int(p.true[i])],
                "predicted": top[0][0],
                "confidence": top[0][1],
                "top": top,
            }
        )
    return rows


def summarise(
    p: Predictions, taxonomy: Taxonomy, threshold: float, machines: list | None = None, parts: list | None = None
) -> dict:
    """Every figure of one evaluation: fine and coarse confusion, per-class tables, the Unknown filter, the
    confusion with an Unknown column, and the figures per machine and per part number (one ``None`` group
    where the images' machines or parts are not known)."""
    labels = list(taxonomy.fine)
    fine = scores.confusion(p.true, p.pred, len(labels))
    to_coarse, coarse_labels = scores.coarse_index(labels, taxonomy.coarse)
    coarse = scores.confusion(to_coarse[p.true], to_coarse[p.pred], len(coarse_labels))
    table = scores.per_class(fine, labels)
    kept = scores.unknown_filter(p.true, p.pred, p.confidence, threshold)
    return {
        "images": len(p.shas),
        "threshold": threshold,
        "accuracy": scores.accuracy(fine),
        "coarse_accuracy": scores.accuracy(coarse),
        "accepted_accuracy": kept.accepted_accuracy,
        "unknown_rate": kept.unknown_rate,
        "mean_detection_rate": scores.mean_detection_rate(table),
        "labels": labels,
        "coarse_labels": coarse_labels,
        "per_class": table,
        "per_class_coarse": scores.per_class(coarse, coarse_labels),
        "confusion": fine.tolist(),
        "confusion_coarse": coarse.tolist(),
        "confusion_unknown": scores.confusion_with_unknown(p.true, p.pred, p.confidence, threshold, labels),
        "per_machine": scores.breakdown(
            p.true, p.pred, p.confidence, threshold, machines or [None] * len(p.shas), "machine_id", labels
        ),
        "per_part": scores.breakdown(
            p.true, p.pred, p.confidence, threshold, parts or [None] * len(p.shas), "part_no", labels
        ),
    }


def evaluate(
    settings: Settings,
    version: str,
    dataset: str,
    split: str | None = None,
    threshold: float | None = None,
    report: bool = True,
) -> dict:
    """Evaluate ``version`` on ``dataset`` (its ``split``, or the whole blind set), store the result, write the
    HTML report (numbers, confusion pictures, error gallery with Grad-CAM heat maps); returns the summary."""
    loaded = load_model_version(settings, version)
    threshold = threshold_of(settings, loaded.row, threshold)
    selected = images_of(settings, loaded, dataset, split)
    split = selected.split
    p = predict(settings, loaded, selected)
    found = catalog_rows(settings, p.shas)
    figures = summarise(p, loaded.taxonomy, threshold, *origins(settings, p.shas, found))
    figures["warnings"] = scores.label_warnings(settings.gate, figures["per_class"], f"images in this {split} set")
    with db.session(settings.catalog_url) as s:
        row = Evaluation(model_version=version, dataset=dataset, split=split, **figures)
        s.add(row)
        s.flush()  # the id, for the per-image rows stored in the same transaction
        per_image = answers(p, figures["labels"], found, db.saved_id(row))
        for start in range(0, len(per_image), 5000):  # one multi-row INSERT per chunk
            s.connection().execute(table_of(EvaluationImage).insert(), per_image[start : start + 5000])
        s.commit()
        s.refresh(row)
        summary = {
            "evaluation_id": row.id,
            "model_version": version,
            "kind": loaded.row.kind,
            "dataset": dataset,
            "split": split,
            **figures,
            "created_at": row.created_at.isoformat(),
            "report": None,
        }
        if report:
            row.report_path = summary["report"] = str(_write_report(settings, loaded, p, selected, summary))
            s.add(row)
            s.commit()
    return summary


def _write_report(settings: Settings, loaded: LoadedModel, p: Predictions, selected: Selection, summary: dict):
    import torch

    from aoi.preprocess import to_tensor
    from evaluation.gradcam import grad_cam
    from evaluation.report import write_report

    wrong = np.flatnonzero(p.pred != p.true)
    # Most confident mistakes first: when the gallery is capped, the dangerous ones are the ones shown.
    wrong = wrong[np.argsort(-p.confidence[wrong], kind="stable")][: settings.evaluation.report_max_errors]
    cams = np.zeros((0,))
    if len(wrong):
        x = torch.stack([to_tensor(selected.images[i], loaded.prep, selected.calibrations[i]) for i in wrong])
        # Where the model looked for the class it chose: the heat map explains the wrong answer.
        cams = grad_cam(loaded.model, loaded.row.arch, x, torch.as_tensor(p.pred[wrong]))
    labels = summary["labels"]
    errors = [
        {
            "sha256": p.shas[i],
            "true": labels[p.true[i]],
            "pred": labels[p.pred[i]],
            "confidence": float(p.confidence[i]),
            "image": selected.images[i],
            "cam": cams[k],
        }
        for k, i in enumerate(wrong)
    ]
    folder = settings.reports_dir / "evaluations" / f"eval-{summary['evaluation_id']}"
    total_wrong = int((p.pred != p.true).sum())
    return write_report(
        folder, summary, errors, max_errors=settings.evaluation.report_max_errors, total_errors=total_wrong
    )


def calibrate(
    settings: Settings, version: str, *, target_accuracy: float | None = None, max_unknown_rate: float | None = None
) -> dict:
    """Fit the Unknown threshold on the valid split of the model's own training dataset and keep it on the
    model version (serving and evaluation use it from then on)."""
    loaded = load_model_version(settings, version)
    selected = images_of(settings, loaded, loaded.row.dataset, "valid")
    p = predict(settings, loaded, selected)
    try:
        point = scores.calibrate(
            p.true, p.pred, p.confidence, target_accuracy=target_accuracy, max_unknown_rate=max_unknown_rate
        )
    except scores.CalibrationError as err:
        raise EvaluationError(f"{version}: {err}") from None
    basis = {
        "dataset": loaded.row.dataset,
        "split": "valid",
        "images": len(selected.rows),
        "target_accuracy": target_accuracy,
        "max_unknown_rate": max_unknown_rate,
        "accepted_accuracy": point.accepted_accuracy,
        "unknown_rate": point.unknown_rate,
        "calibrated_at": utcnow().isoformat(),
    }
    with db.session(settings.catalog_url) as s:
        row = db.get_row(s, ModelVersion, loaded.row.id)
        row.threshold, row.threshold_basis = point.threshold, basis
        s.add(row)
        s.commit()
    return {"model_version": version, "threshold": point.threshold, **basis}


def robustness(
    settings: Settings,
    version: str,
    dataset: str,
    split: str | None = None,
    factors: tuple[float, ...] = TONE_FACTORS,
    compression: bool = True,
) -> dict:
    """Accuracy with each channel scaled by each of ``factors``, and after re-encoding (PNG, JPEG 95/75/50)."""

    loaded = load_model_version(settings, version)
    selected = images_of(settings, loaded, dataset, split)
    split, rows = selected.split, selected.rows

    def accuracy(change) -> float:
        p = predict(settings, loaded, selected, change)
        return float((p.pred == p.true).mean())

    channels = channels_of(loaded.row.kind)
    factors = tuple(sorted({*factors, 1.0}))
    variants = [(c, f) for c in channels for f in factors if f != 1.0]
    codecs = COMPRESSIONS if compression else ()
    with tqdm(total=1 + len(variants) + len(codecs), desc=f"robustness {version}", unit="variant") as bar:
        unchanged = accuracy(None)
        bar.update()
        tone = {c: {"1.0": unchanged} for c in channels}
        for channel, factor in variants:
            tone[channel][str(factor)] = accuracy(scale_channel(channel, factor))
            bar.update()
        tone = {c: {str(f): tone[c][str(f)] for f in factors} for c in channels}
        table = {"as stored": unchanged}
        for codec in codecs:
            table[codec] = accuracy(reencode(codec))
            bar.update()
    with db.session(settings.catalog_url) as s:
        row = RobustnessRun(
            model_version=version, dataset=dataset, split=split, images=len(rows), tone=tone, compression=table
        )
        s.add(row)
        s.commit()
        s.refresh(row)
    return {
        "robustness_id": row.id,
        "model_version": version,
        "dataset": dataset,
        "split": split,
        "images": len(rows),
        "factors": list(factors),
        "tone": tone,
        "compression": table,
        "training_compression": training_compression(settings, loaded.row.dataset),
    }


def training_compression(settings: Settings, dataset: str) -> str:
    """How the training images of ``dataset`` are stored: e.g. ``PNG (lossless)`` or ``JPEG q75-95``."""

    from aoi.catalog.models import Image

    with db.session(settings.catalog_url) as s:
        rows = s.exec(
            select(Image.format, func.min(Image.jpeg_quality), func.max(Image.jpeg_quality), func.count())
            .join(DatasetMember, DatasetMember.image_id == Image.id)
            .join(DatasetVersion, DatasetVersion.id == DatasetMember.dataset_id)
            .where(DatasetVersion.name == dataset, DatasetMember.split == "train")
            .group_by(Image.format)
        ).all()
    parts = []
    for fmt, low, high, count in sorted(rows, key=lambda r: -r[3]):
        quality = f" q{low}" if low == high else f" q{low}-{high}"
        parts.append(f"{fmt}{quality if low is not None else ' (lossless)' if fmt == 'PNG' else ''} ×{count}")
    return ", ".join(parts) or "unknown"
