"""The one preprocessing function: training calls it per sample, serving per request (same tensors).

bytes -> decoded image -> channel mode -> optional per-machine tone calibration -> resize -> float tensor,
normalised. Everything that changes a tensor is a parameter recorded with the model version, or (the
calibration) a feature of the image's machine read from Feast: point in time for training, online for serving.
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


@dataclass(frozen=True)
class ToneCalibration:
    """Per-channel ``value * gain + offset`` that maps a machine's tone to the reference tone
    (docs/domain.md#tone-per-machine).

    Colour models use the R, G, B pair; gray models the gray one. Fitted from the machine's reference samples
    (``features/calibration.py``)."""

    gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    offsets: tuple[float, float, float] = (0.0, 0.0, 0.0)
    gray_gain: float = 1.0
    gray_offset: float = 0.0

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """(H, W, C) float pixels, C = 1 (gray) or 3 (RGB), mapped to the reference tone and clipped to 0..255
        like a camera."""
        if pixels.shape[-1] == 1:
            gains = np.asarray([self.gray_gain], dtype=np.float32)
            offsets = np.asarray([self.gray_offset], dtype=np.float32)
        else:
            gains, offsets = np.asarray(self.gains, dtype=np.float32), np.asarray(self.offsets, dtype=np.float32)
        return np.clip(pixels * gains + offsets, 0, 255)


def decode(data: bytes, channels: int) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.convert("L" if channels == 1 else "RGB")


def to_tensor(image: Image.Image, prep: Preprocessing, calibration: ToneCalibration | None = None) -> torch.Tensor:
    """A (channels, size, size) float tensor. ``calibration`` maps the machine's tone to the reference tone (after
    the resize: the map is linear, and fewer pixels cost less)."""
    image = image.convert("L" if prep.channels == 1 else "RGB")
    if image.size != (prep.input_size, prep.input_size):
        image = image.resize((prep.input_size, prep.input_size), Image.Resampling.BILINEAR)
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if calibration is not None:
        arr = calibration.apply(arr)
    tensor = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))) / 255.0
    return (tensor - prep.mean) / prep.std


def preprocess(data: bytes, prep: Preprocessing, calibration: ToneCalibration | None = None) -> torch.Tensor:
    """The tensor of encoded image bytes. An image already decoded whole (``aoi.image_metrics.measure_decoded``)
    goes to ``to_tensor`` directly and gives the same tensor."""
    return to_tensor(decode(data, prep.channels), prep, calibration)
