"""The production models the service answers with, one per kind, and their hot swap.

``Deployed`` is everything an answer needs from one model version: network, taxonomy, preprocessing, Unknown
threshold and the tone spec its images are judged against. Its forward pass runs on PyTorch or on an accepted
export of the version (``AOI_SERVING__RUNTIME``); nothing else in the service knows which. ``ProductionModels``
holds the current one per kind; ``refresh`` loads a new production version beside the old one and swaps a
reference, so a request in flight finishes on the version it started with. The retired version stays loaded
until the next swap.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sqlmodel import select

from aoi.preprocess import Preprocessing
from aoi.settings import Settings
from training.taxonomy import Taxonomy
from validation.specs import Spec

KINDS = ("gray", "color")
log = logging.getLogger("aoi.serving")


class NoProductionModel(LookupError):
    """No production model for the kind: the service answers 503 until one is promoted."""


@dataclass(frozen=True)
class Runtime:
    """What runs the forward pass when it is not PyTorch: an accepted export opened in its engine."""

    name: str  # e.g. "onnx int8 (openvino)"
    run: Callable[[np.ndarray], np.ndarray]  # (N, C, H, W) float32 -> logits
    export: dict  # the export's catalog figures: file hash, parity, latency on its device
    why: str


@dataclass(frozen=True)
class Deployed:
    version: str
    kind: str
    model: torch.nn.Module  # always loaded: Grad-CAM comes from PyTorch whatever runs the answers
    taxonomy: Taxonomy
    prep: Preprocessing
    threshold: float
    tone_spec: Spec | None
    runtime: Runtime | None = None  # None: PyTorch answers
    runtime_note: str = "AOI_SERVING__RUNTIME=torch"

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.prep.channels, self.prep.input_size, self.prep.input_size)

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Softmax over the fine classes for a (N, C, H, W) float32 batch."""
        if self.runtime is not None:
            logits = np.asarray(self.runtime.run(batch), dtype=np.float32)
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            return shifted / shifted.sum(axis=1, keepdims=True)
        with torch.inference_mode():
            return torch.softmax(self.model(torch.from_numpy(batch)), dim=1).numpy()

    def describe(self) -> dict:
        return {
            "version": self.version,
            "kind": self.kind,
            "threshold": self.threshold,
            "input_size": self.prep.input_size,
            "channels": self.prep.channels,
            "taxonomy": self.taxonomy.as_dict(),
            "tone_spec": self.tone_spec.key if self.tone_spec else None,
            "runtime": self.runtime.name if self.runtime else "torch",
            "runtime_reason": self.runtime.why if self.runtime else self.runtime_note,
            "export": self.runtime.export if self.runtime else None,
        }


def production_versions(settings: Settings) -> dict[str, str]:
    """kind -> version of every production model in the catalog."""

    from aoi.catalog import db
    from aoi.catalog.models import ModelVersion

    with db.session(settings.catalog_url) as s:
        rows = s.exec(select(ModelVersion.kind, ModelVersion.version).where(ModelVersion.stage == "production")).all()
    return {kind: version for kind, version in rows}


def load_deployed(settings: Settings, version: str) -> Deployed:
    """A model version as evaluation loads it, with its Unknown threshold and the tone spec of its dataset."""

    from aoi.catalog import db
    from aoi.catalog.models import DatasetVersion
    from training.registry import load_model_version, threshold_of

    loaded = load_model_version(settings, version)
    with db.session(settings.catalog_url) as s:
        dataset = s.exec(select(DatasetVersion).where(DatasetVersion.name == loaded.row.dataset)).first()
    spec_ref = settings.serving.tone_specs.get(loaded.row.kind) or (dataset.spec_key if dataset else None)
    runtime, note = choose_runtime(settings, loaded.row.version)
    return Deployed(
        version=loaded.row.version,
        kind=loaded.row.kind,
        model=loaded.model,
        taxonomy=loaded.taxonomy,
        prep=loaded.prep,
        threshold=float(threshold_of(settings, loaded.row, None)),
        tone_spec=_tone_spec(settings, spec_ref),
        runtime=runtime,
        runtime_note=note,
    )


def choose_runtime(settings: Settings, version: str) -> tuple[Runtime | None, str]:
    """(the export that answers for ``version``, or None for PyTorch; why). ``torch``: PyTorch. ``onnx``: the
    fastest accepted export. ``auto``: that export where it measured faster than PyTorch at export time."""
    from export import engines, exports

    wanted = settings.serving.runtime
    if wanted == "torch":
        return None, "AOI_SERVING__RUNTIME=torch"
    row = exports.fastest_accepted(settings, version, faster_than_torch=wanted == "auto")
    if row is None:
        what = "no export that passed the parity gate" + (" and beat PyTorch" if wanted == "auto" else "")
        return None, f"AOI_SERVING__RUNTIME={wanted}: {version} has {what} (aoi export {version})"
    try:
        engine = engines.open_engine(row.engine, exports.export_file(settings, row), settings.export.threads)
    except engines.EngineError as err:  # a missing engine or file must not stop serving: PyTorch answers
        log.warning("export of %s not loaded, PyTorch answers: %s", version, err)
        return None, f"AOI_SERVING__RUNTIME={wanted}: the export could not be loaded ({err})"
    precision = "int8" if row.int8 else "fp32"
    figures = exports.as_dict(row)
    why = (
        f"AOI_SERVING__RUNTIME={wanted}: the fastest accepted export, {row.batch32_images_per_s:.0f} images/s at "
        f"batch 32 against PyTorch's {row.torch_batch32_images_per_s:.0f} on {row.device}"
    )
    runtime = Runtime(f"{row.format} {precision} ({row.engine})", engine, figures, why)
    return runtime, why


def _tone_spec(settings: Settings, ref: str | None) -> Spec | None:
    if not ref:
        return None
    from validation.steps import load_spec

    return load_spec(settings, ref)[1]


class ProductionModels:
    """The current production model per kind, swapped in place when the catalog's production changes."""

    def __init__(self, settings: Settings, loader=load_deployed) -> None:
        self._settings = settings
        self._loader = loader
        self._current: dict[str, Deployed] = {}
        self._retired: dict[str, Deployed] = {}
        self._lock = threading.Lock()  # one refresh at a time; readers never wait on it
        self.swaps = 0

    def get(self, kind: str) -> Deployed:
        deployed = self._current.get(kind)
        if deployed is None:
            raise NoProductionModel(f"no production model for kind {kind!r}: promote one (aoi promote)")
        return deployed

    def for_batch(self, kind: str, shape: tuple[int, ...]) -> Deployed:
        """The model that runs a batch of this shape: the current one, or during a swap that changed the input
        size, the retired one the batch's requests were preprocessed for."""
        current = self.get(kind)
        if current.input_shape == tuple(shape[1:]):
            return current
        retired = self._retired.get(kind)
        if retired is not None and retired.input_shape == tuple(shape[1:]):
            return retired
        raise ValueError(f"no {kind} model takes input {tuple(shape[1:])}; production takes {current.input_shape}")

    def by_version(self, version: str) -> Deployed | None:
        for deployed in (*self._current.values(), *self._retired.values()):
            if deployed.version == version:
                return deployed
        return None

    @property
    def ready(self) -> dict[str, str]:
        return {kind: d.version for kind, d in self._current.items()}

    def refresh(self) -> list[str]:
        """Load what changed since the last call; returns 'kind: old -> new' lines for the swaps made."""
        with self._lock:
            wanted = production_versions(self._settings)
            changes = []
            for kind in KINDS:
                old = self._current.get(kind)
                version = wanted.get(kind)
                if version is None:
                    if old is not None:  # rolled back to nothing: a withdrawn model must stop answering (503)
                        self._retired[kind] = old
                        self._current = {k: d for k, d in self._current.items() if k != kind}
                        changes.append(f"{kind}: {old.version} -> -")
                    continue
                if old is not None and old.version == version:
                    continue
                deployed = self._loader(self._settings, version)  # slow part, outside any request
                if old is not None:
                    self._retired[kind] = old
                self._current = {**self._current, kind: deployed}
                self.swaps += 1
                changes.append(f"{kind}: {old.version if old else '-'} -> {version}")
                log.info("production %s model now %s", kind, version)
            return changes


class Reloader(threading.Thread):
    """Polls the catalog and swaps models (hot reload); a failed poll is logged and retried, never fatal."""

    def __init__(self, models: ProductionModels, interval_s: float) -> None:
        super().__init__(name="aoi-model-reloader", daemon=True)
        self.models, self.interval_s = models, interval_s
        self.stopped = threading.Event()
        self.last_error: str | None = None

    def run(self) -> None:
        while not self.stopped.wait(self.interval_s):
            try:
                self.models.refresh()
                self.last_error = None
            except Exception as err:  # a catalog hiccup must not stop serving
                self.last_error = f"{type(err).__name__}: {err}"
                log.warning("model reload failed: %s", self.last_error)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)
