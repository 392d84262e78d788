"""The service decodes an upload once: the metrics' decode feeds the model's input, with the very same tensor."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from aoi.image_metrics import measure, measure_decoded
from aoi.preprocess import Preprocessing, ToneCalibration
from serving.models import Deployed
from training.taxonomy import Taxonomy


def encoded(fmt: str, mode: str, size: int, seed: int = 0, **options) -> bytes:
    rng = np.random.default_rng(seed)
    shape = (size, size) if mode == "L" else (size, size, 3)
    # Smooth structure plus noise: what a crop looks like to the decoder, and JPEG's reduced decode differs from it.
    ramp = np.linspace(40, 200, size)[None, :] + np.linspace(0, 30, size)[:, None]
    pixels = np.clip(rng.normal(0, 25, shape) + (ramp if mode == "L" else ramp[..., None]), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, mode).save(buf, fmt, **options)
    return buf.getvalue()


CASES = [
    ("PNG", "L", 64, {}),
    ("PNG", "RGB", 96, {}),
    ("BMP", "L", 50, {}),
    ("BMP", "RGB", 33, {}),
    ("JPEG", "L", 64, {"quality": 90}),
    ("JPEG", "RGB", 128, {"quality": 95}),
    ("PNG", "L", 640, {}),  # reduced by box averaging for the quality metrics, never in place
]


@pytest.mark.parametrize(("fmt", "mode", "size", "options"), CASES)
@pytest.mark.parametrize("calibrated", [False, True])
def test_the_shared_decode_gives_the_same_metrics_and_tensor(fmt, mode, size, options, calibrated):
    from serving.service import model_input

    data = encoded(fmt, mode, size, **options)
    metrics, decoded = measure_decoded(data, allowed_modes=(mode,), min_side=32)
    assert metrics == measure(data, allowed_modes=(mode,), min_side=32)
    assert decoded is not None and decoded.size == (size, size) and decoded.mode == mode
    channels = 1 if mode == "L" else 3
    deployed = Deployed(
        version="v1",
        kind="gray" if mode == "L" else "color",
        model=torch.nn.Identity(),
        taxonomy=Taxonomy.load("gray" if mode == "L" else "color"),
        prep=Preprocessing(input_size=48, channels=channels, mean=0.4, std=0.3),
        threshold=0.5,
        tone_spec=None,
    )
    calibration = ToneCalibration((1.1, 0.9, 1.05), (3.0, -2.0, 1.0), 1.2, -4.0) if calibrated else None
    shared = model_input(data, deployed, calibration, decoded)
    alone = model_input(data, deployed, calibration)
    assert shared.shape == (1, channels, 48, 48) and shared.dtype == np.float32
    np.testing.assert_array_equal(shared, alone)
    # The image is still whole after the tensor was made from it: nothing modified it in place.
    np.testing.assert_array_equal(np.asarray(decoded), np.asarray(Image.open(io.BytesIO(data))))


def test_a_jpeg_decoded_at_reduced_size_is_not_shared():
    """libjpeg's reduced decode serves the metrics only: the model's input is decoded at full size."""
    data = encoded("JPEG", "RGB", 640, quality=92)
    metrics, decoded = measure_decoded(data, allowed_modes=("RGB",), min_side=32)
    assert decoded is None
    assert metrics == measure(data, allowed_modes=("RGB",), min_side=32)
    assert (metrics.width, metrics.height) == (640, 640)
