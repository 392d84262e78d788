"""Running a stored model version over images: decode once, optionally change the images (tone, compression),
preprocess with the one training/serving function, and collect class probabilities.

Inference runs on the CPU in the calling process: evaluation sets are thousands of small crops, and the
model is the one serving will load.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from aoi.preprocess import Preprocessing, ToneCalibration, decode, to_tensor
from aoi.store import ImageStore

ImageChange = Callable[[Image.Image], Image.Image]


@dataclass(frozen=True)
class Predictions:
    """Per image: its content hash, true fine-class index and the class probabilities."""

    shas: list[str]
    true: np.ndarray  # (N,) int
    probs: np.ndarray  # (N, classes) float

    @property
    def pred(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        return self.probs.max(axis=1)


def load_images(store: ImageStore, shas: Sequence[str], channels: int) -> list[Image.Image]:
    """Each stored image decoded once, in the model's channel mode; reused for every variant of a robustness run."""
    return [decode(store.get(sha), channels) for sha in shas]


@torch.no_grad()
def probabilities(
    model: torch.nn.Module,
    prep: Preprocessing,
    images: Sequence[Image.Image],
    change: ImageChange | None = None,
    batch_size: int = 256,
    calibrations: Sequence[ToneCalibration | None] | None = None,
) -> np.ndarray:
    """Softmax probabilities for each image, after ``change`` (if any) and the training preprocessing with the
    image's machine calibration (if any): what serving would answer for it."""
    model.eval()
    out = []
    calibrations = calibrations or [None] * len(images)
    for start in range(0, len(images), batch_size):
        chunk = range(start, min(start + batch_size, len(images)))
        x = torch.stack([to_tensor(change(images[i]) if change else images[i], prep, calibrations[i]) for i in chunk])
        out.append(torch.softmax(model(x), dim=1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)
