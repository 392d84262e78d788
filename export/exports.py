"""``aoi export``: write a model version's ONNX file (fp32, or static INT8 calibrated on its valid split), judge it
against PyTorch on every blind set of its kind (the parity gate), measure its latency on this device, and record
all of it in the catalog (``model_export``). Only an accepted export may serve; Grad-CAM stays with PyTorch.

The file lives beside the version's weights in the model store, named by its content hash: the same weights give
the same file, so exporting again changes nothing but the measured figures.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import DatasetVersion, ModelExport, utcnow
from aoi.preprocess import to_tensor
from aoi.settings import ExportSettings, Settings
from evaluation.evaluate import EvaluationError, Selection, images_of
from export import engines, onnx
from training.registry import LoadedModel, bentoml_env, load_model_version, model_store

FORMATS = ("onnx",)


class ExportError(ValueError):
    """An export that cannot be made (unknown format, no engine, no images to judge it on); the message says why."""


@dataclass(frozen=True)
class Parity:
    """The export against PyTorch on the same preprocessed blind images."""

    top1_agreement: float | None
    blind_accuracy_torch: float | None
    blind_accuracy_export: float | None
    images: int
    accepted: bool
    reason: str

    def as_dict(self) -> dict:
        return {
            "top1_agreement": self.top1_agreement,
            "blind_accuracy_torch": self.blind_accuracy_torch,
            "blind_accuracy_export": self.blind_accuracy_export,
            "images": self.images,
        }


def judge(limits: ExportSettings, true: np.ndarray, torch_pred: np.ndarray, export_pred: np.ndarray) -> Parity:
    """The parity gate: top-1 agreement at least ``min_top1_agreement`` and blind accuracy within
    ``max_accuracy_delta`` of PyTorch's, both on the same images; the reason carries the figures either way."""
    n = len(true)
    if n == 0:
        return Parity(None, None, None, 0, False, "no labelled blind image of this kind: parity cannot be judged")
    agreement = float(np.mean(torch_pred == export_pred))
    acc_torch, acc_export = float(np.mean(torch_pred == true)), float(np.mean(export_pred == true))
    delta = abs(acc_export - acc_torch)
    failed = []
    if agreement < limits.min_top1_agreement:
        failed.append(f"top-1 agreement {agreement:.4f} < {limits.min_top1_agreement:.4f}")
    if delta > limits.max_accuracy_delta + 1e-12:
        failed.append(
            f"blind accuracy {acc_export:.4f} vs PyTorch {acc_torch:.4f}: off by {delta:.4f} > "
            f"{limits.max_accuracy_delta:.4f}"
        )
    figures = (
        f"on {n} blind images: top-1 agreement {agreement:.4f}, accuracy {acc_export:.4f} vs PyTorch {acc_torch:.4f}"
    )
    reason = ("refused: " + "; ".join(failed) + f" ({figures})") if failed else f"accepted {figures}"
    return Parity(agreement, acc_torch, acc_export, n, not failed, reason)


def blind_sets(settings: Settings, kind: str) -> list[str]:
    """Every registered blind set of ``kind``, oldest first (the sets the promotion gate judges on)."""
    with db.session(settings.catalog_url) as s:
        rows = s.exec(
            select(DatasetVersion.name)
            .where(DatasetVersion.role == "blind", DatasetVersion.source == kind)
            .order_by(col(DatasetVersion.id))
        ).all()
    return list(rows)


def batches(loaded: LoadedModel, selected: Selection, size: int, limit: int | None = None) -> Iterator[np.ndarray]:
    """The selection's images preprocessed as serving preprocesses them (machine calibration included), in
    float32 batches of ``size``; the first ``limit`` images only when given."""
    import torch

    count = len(selected.images) if limit is None else min(limit, len(selected.images))
    for start in range(0, count, size):
        chunk = range(start, min(start + size, count))
        yield torch.stack([to_tensor(selected.images[i], loaded.prep, selected.calibrations[i]) for i in chunk]).numpy()


def model_folder(settings: Settings, loaded: LoadedModel) -> Path:
    """The version's folder in the model store (where its weights are)."""
    bentoml_env(settings)
    import bentoml

    return Path(bentoml.models.get(loaded.row.bento_tag, _model_store=model_store(settings)).path)


def export_file(settings: Settings, row: ModelExport) -> Path:
    """The absolute path of an export's file."""
    loaded_tag = _bento_tag(settings, row.model_version)
    bentoml_env(settings)
    import bentoml

    return Path(bentoml.models.get(loaded_tag, _model_store=model_store(settings)).path) / row.path


def _bento_tag(settings: Settings, version: str) -> str:
    from training.registry import model_row

    return model_row(settings, version).bento_tag


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_file(settings: Settings, loaded: LoadedModel, folder: Path, int8: bool) -> tuple[str, str]:
    """Write the export into ``folder/exports`` under its content hash; (path relative to ``folder``, sha256)."""
    shape = (loaded.prep.channels, loaded.prep.input_size, loaded.prep.input_size)
    target = folder / "exports"
    target.mkdir(parents=True, exist_ok=True)
    fp32 = target / f".fp32-{os.getpid()}.onnx"
    made = fp32
    try:
        onnx.to_onnx(loaded.model, shape, fp32)
        if int8:
            made = target / f".int8-{os.getpid()}.onnx"
            valid = images_of(settings, loaded, loaded.row.dataset, "valid")
            if not valid.images:
                raise ExportError(f"{loaded.row.dataset} has no valid images to calibrate INT8 on")
            onnx.quantize(fp32, made, batches(loaded, valid, 32, settings.export.calibration_images))
        sha = _sha256(made)
        name = f"onnx-{'int8' if int8 else 'fp32'}-{sha[:16]}.onnx"
        os.replace(made, target / name)  # the same content has the same name: a re-export replaces it by itself
    finally:
        for leftover in (fp32, made):
            leftover.unlink(missing_ok=True)
    return f"exports/{name}", sha


def predictions(run, loaded: LoadedModel, selections: list[Selection], size: int) -> np.ndarray:
    out = [np.asarray(run(b)).argmax(axis=1) for sel in selections for b in batches(loaded, sel, size)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def export_model(settings: Settings, version: str, fmt: str = "onnx", int8: bool = False) -> dict:
    """Export, judge, measure and record one model version; the JSON ``aoi export --json`` prints."""
    import torch

    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    available = engines.installed()
    if not available:
        raise ExportError("no engine to run an export is installed (onnxruntime or openvino)")
    loaded = load_model_version(settings, version)
    folder = model_folder(settings, loaded)
    relative, sha = write_file(settings, loaded, folder, int8)
    path = folder / relative
    threads = settings.export.threads

    shape = (loaded.prep.channels, loaded.prep.input_size, loaded.prep.input_size)

    def torch_run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return loaded.model(torch.from_numpy(batch)).numpy()

    # Every installed engine measured on this file; the faster at batch 32 (what batching serves) runs it.
    measured = {}
    opened = {}
    for name in available:
        try:
            opened[name] = engines.open_engine(name, path, threads)
        except engines.EngineError:
            continue
        measured[name] = engines.latency(opened[name], shape, settings.export.latency_s)
    if not opened:
        raise ExportError(f"no installed engine could load {relative}")
    engine_name = max(measured, key=lambda n: measured[n]["batch32_images_per_s"])
    engine = opened[engine_name]
    torch_latency = engines.latency(torch_run, shape, settings.export.latency_s)

    sets = blind_sets(settings, loaded.row.kind)
    try:
        selections = [images_of(settings, loaded, name, None) for name in sets]
    except EvaluationError as err:
        raise ExportError(str(err)) from None
    true = np.array([loaded.taxonomy.index(label) for sel in selections for _, label in sel.rows], dtype=np.int64)
    size = settings.evaluation.batch_size
    parity = judge(
        settings.export,
        true,
        predictions(torch_run, loaded, selections, size),
        predictions(engine, loaded, selections, size),
    )
    record = dict(
        model_version=version,
        format=fmt,
        int8=int8,
        engine=engine_name,
        path=relative,
        sha256=sha,
        accepted=parity.accepted,
        reason=parity.reason,
        top1_agreement=parity.top1_agreement,
        blind_accuracy_torch=parity.blind_accuracy_torch,
        blind_accuracy_export=parity.blind_accuracy_export,
        blind_images=parity.images,
        blind_sets=sets,
        device=engine.device,
        batch1_ms=measured[engine_name]["batch1_ms"],
        batch32_images_per_s=measured[engine_name]["batch32_images_per_s"],
        torch_batch1_ms=torch_latency["batch1_ms"],
        torch_batch32_images_per_s=torch_latency["batch32_images_per_s"],
        created_at=utcnow(),
    )
    row = _upsert(settings, record)
    _forget_replaced(folder, relative, settings, row)
    return {**as_dict(row, folder), "engines": measured}


def _upsert(settings: Settings, record: dict) -> ModelExport:
    with db.session(settings.catalog_url) as s:
        row = s.exec(
            select(ModelExport).where(
                ModelExport.model_version == record["model_version"],
                ModelExport.format == record["format"],
                ModelExport.int8 == record["int8"],
            )
        ).first()
        if row is None:
            row = ModelExport(**record)
        else:
            for key, value in record.items():
                setattr(row, key, value)
        s.add(row)
        s.commit()
        s.refresh(row)
        return row


def _forget_replaced(folder: Path, kept: str, settings: Settings, row: ModelExport) -> None:
    """Remove files of this version's exports that no catalog row names any more (an earlier export of changed
    weights never happens: weights are immutable; but a changed exporter writes different bytes)."""
    with db.session(settings.catalog_url) as s:
        named = set(s.exec(select(ModelExport.path).where(ModelExport.model_version == row.model_version)).all())
    prefix = f"onnx-{'int8' if row.int8 else 'fp32'}-"
    for file in (folder / "exports").glob(f"{prefix}*.onnx"):
        if f"exports/{file.name}" not in named | {kept}:
            file.unlink(missing_ok=True)


def as_dict(row: ModelExport, folder: Path | None = None) -> dict:
    """The export as ``aoi export --json`` and ``aoi models --json`` show it."""
    return {
        "model_version": row.model_version,
        "format": row.format,
        "int8": row.int8,
        "engine": row.engine,
        "path": str(folder / row.path) if folder is not None else row.path,
        "sha256": row.sha256,
        "accepted": row.accepted,
        "reason": row.reason,
        "parity": {
            "top1_agreement": row.top1_agreement,
            "blind_accuracy_torch": row.blind_accuracy_torch,
            "blind_accuracy_export": row.blind_accuracy_export,
            "images": row.blind_images,
            "blind_sets": row.blind_sets,
        },
        "latency": {
            "device": row.device,
            "batch1_ms": row.batch1_ms,
            "batch32_images_per_s": row.batch32_images_per_s,
            "torch_batch1_ms": row.torch_batch1_ms,
            "torch_batch32_images_per_s": row.torch_batch32_images_per_s,
        },
        "created_at": row.created_at.isoformat(),
    }


def exports_of(settings: Settings, versions: list[str] | None = None) -> dict[str, list[ModelExport]]:
    """version -> its exports (fp32 first), for every version asked (every exported one when None)."""
    with db.session(settings.catalog_url) as s:
        query = select(ModelExport).order_by(col(ModelExport.model_version), col(ModelExport.int8))
        if versions is not None:
            query = query.where(col(ModelExport.model_version).in_(versions))
        rows = s.exec(query).all()
    out: dict[str, list[ModelExport]] = {}
    for row in rows:
        out.setdefault(row.model_version, []).append(row)
    return out


def fastest_accepted(settings: Settings, version: str, faster_than_torch: bool = False) -> ModelExport | None:
    """The version's accepted export with the highest batch-32 throughput; with ``faster_than_torch``, only one
    that beat PyTorch measured beside it on the same device."""
    rows = [r for r in exports_of(settings, [version]).get(version, []) if r.accepted]
    if faster_than_torch:
        rows = [r for r in rows if (r.batch32_images_per_s or 0) > (r.torch_batch32_images_per_s or 0)]
    return max(rows, key=lambda r: r.batch32_images_per_s or 0, default=None)


def summary(row: ModelExport) -> str:
    """One line for tables: precision, engine, verdict and latency on its device."""
    precision = "INT8" if row.int8 else "fp32"
    verdict = "accepted" if row.accepted else "refused"
    agree = "n/a" if row.top1_agreement is None else f"{row.top1_agreement:.2%}"
    return (
        f"{row.format} {precision} ({row.engine}): {verdict}, top-1 agreement {agree}; "
        f"{row.batch1_ms:.1f} ms/image, {row.batch32_images_per_s:.0f} images/s at 32 on {row.device}"
    )
