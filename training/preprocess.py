"""The one preprocessing function: training calls it per sample, serving per request (same tensors).

bytes -> decoded image -> channel mode -> optional per-channel calibration gains -> resize -> float tensor,
normalised. Everything that changes a tensor is a parameter recorded with the model version.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import numpy as np
import torch
from PIL import Image


@dataclass(frozen=True)
class Preprocessing:
    input_size: int = 64
    channels: int = 1  # 1: gray (AOI), 3: RGB (VRS)
    mean: float = 0.5
    std: float = 0.25

    def as_dict(self) -> dict:
        return asdict(self)


def decode(data: bytes, channels: int) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.convert("L" if channels == 1 else "RGB")


def to_tensor(image: Image.Image, prep: Preprocessing, gains: tuple[float, ...] | None = None) -> torch.Tensor:
    """A (channels, size, size) float tensor. ``gains`` (one per channel) map a machine's tone to the reference
    tone before anything else (per-machine colour calibration)."""
    image = image.convert("L" if prep.channels == 1 else "RGB")
    if image.size != (prep.input_size, prep.input_size):
        image = image.resize((prep.input_size, prep.input_size), Image.Resampling.BILINEAR)
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if gains is not None:
        if len(gains) != prep.channels:
            raise ValueError(f"{len(gains)} calibration gains for {prep.channels} channels")
        arr = np.clip(arr * np.asarray(gains, dtype=np.float32), 0, 255)
    tensor = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))) / 255.0
    return (tensor - prep.mean) / prep.std


def preprocess(data: bytes, prep: Preprocessing, gains: tuple[float, ...] | None = None) -> torch.Tensor:
    return to_tensor(decode(data, prep.channels), prep, gains)
