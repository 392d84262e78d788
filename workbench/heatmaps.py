"""Grad-CAM heat maps for the error pages: where a model version looked when it answered an image.

Computed on demand with ``evaluation.gradcam`` (its public ``grad_cam`` and ``overlay``), on the image as the
model saw it (the training preprocessing with the machine's calibration), for the class the model answered; each
map is kept as a PNG under ``AOI_HOME/cache/gradcam/<version>/<sha256>.png``, so a page shows it again for free.
Model versions are immutable, so a cached map never goes stale.
"""

from __future__ import annotations

import hashlib
import io
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aoi.settings import Settings

if TYPE_CHECKING:
    from training.registry import LoadedModel

_LOCK = threading.Lock()  # one computation at a time: a page of 50 maps must not load the model 50 times at once


def cache_path(
    settings: Settings, version: str, sha256: str, machine_id: str | None = None, at: datetime | None = None
) -> Path:
    # The version is a catalog name: hashed into the folder name so no character of it can leave the cache.
    folder = hashlib.sha256(version.encode()).hexdigest()[:16]
    # The same bytes answered on two machines may be calibrated differently: one map per machine and time.
    seen = "" if machine_id is None else f"-{hashlib.sha256(f'{machine_id}|{at}'.encode()).hexdigest()[:12]}"
    return settings.home / "cache" / "gradcam" / folder / f"{sha256}{seen}.png"


_MODELS: dict[tuple[str, str], LoadedModel] = {}  # (catalog, version) -> loaded model; the latest two


def _loaded(settings: Settings, version: str) -> LoadedModel:
    from training.registry import load_model_version

    key = (settings.catalog_url, version)
    if key not in _MODELS:
        while len(_MODELS) >= 2:
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[key] = load_model_version(settings, version)
    return _MODELS[key]


def heatmap_png(
    settings: Settings, version: str, sha256: str, machine_id: str | None = None, at: datetime | None = None
) -> bytes:
    """The image with its Grad-CAM map for ``version``'s answer drawn on top, as PNG bytes (cached).

    ``machine_id`` and ``at``: for bytes the catalog may not hold (an answer the service kept), the machine and
    time whose calibration the service applied; a catalogued image's own machine and capture time come first."""
    path = cache_path(settings, version, sha256, machine_id, at)
    if path.exists():
        return path.read_bytes()
    with _LOCK:
        if path.exists():
            return path.read_bytes()
        data = _compute(settings, version, sha256, machine_id, at)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return data


def _compute(
    settings: Settings, version: str, sha256: str, machine_id: str | None = None, at: datetime | None = None
) -> bytes:
    from aoi.preprocess import decode, to_tensor
    from aoi.store import ImageStore
    from evaluation.gradcam import grad_cam, overlay
    from features.calibration import for_images, in_force

    loaded = _loaded(settings, version)
    image = decode(ImageStore(settings.store_dir).get(sha256), loaded.prep.channels)
    calibration = for_images(settings, [sha256]).get(sha256)
    if calibration is None and machine_id is not None:
        calibration = in_force(settings, [machine_id], [at])[0]
    x = to_tensor(image, loaded.prep, calibration)[None]
    cam = grad_cam(loaded.model, loaded.row.arch, x)[0]  # the class the model answered
    picture = overlay(image, cam)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()
