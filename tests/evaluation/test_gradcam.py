"""Grad-CAM on real networks: the map lies on the evidence after real training, has the right shape and range
for every architecture, and leaves the model exactly as it found it (mode, hooks, requires_grad, grads)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation.gradcam import grad_cam, overlay, target_layer
from training.model import ARCHITECTURES, build_model

SIZE, SQUARE, HALF = 64, 12, 32  # 64 px in, stride 32: a 2x2 map, one cell per quadrant


def _squares(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class 0: dark noise. Class 1: the same with a bright square somewhere inside one random quadrant.
    Returns images [n, 1, 64, 64], labels [n] and the squares' top-left corners [n, 2]."""
    x = torch.randn(n, 1, SIZE, SIZE, generator=generator) * 0.1 - 1.0
    y = torch.randint(0, 2, (n,), generator=generator)
    quadrant = torch.randint(0, 4, (n,), generator=generator)
    offset = torch.randint(0, HALF - SQUARE + 1, (n, 2), generator=generator)
    corner = torch.stack([(quadrant // 2) * HALF + offset[:, 0], (quadrant % 2) * HALF + offset[:, 1]], dim=1)
    for i in torch.nonzero(y).flatten().tolist():
        r, c = corner[i].tolist()
        x[i, 0, r : r + SQUARE, c : c + SQUARE] += 3.0
    return x, y, corner


@pytest.fixture(scope="module")
def trained() -> tuple[torch.nn.Module, torch.Generator]:
    """A resnet18 trained 60 steps to tell the squares from the noise (about 10 s on 2 CPU cores)."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = build_model("resnet18", 2, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(60):
        x, y, _ = _squares(16, generator)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    model.eval()
    return model, generator


@pytest.mark.slow  # shares the trained model (about 10 s of training)
def test_heat_map_lies_on_the_square(trained):
    model, generator = trained
    x, y, corner = _squares(64, generator)
    with torch.no_grad():
        assert (model(x).argmax(dim=1) == y).float().mean() >= 0.9  # the model learned the task
    squares, corners = x[y == 1], corner[y == 1]
    cams = grad_cam(model, "resnet18", squares)  # the predicted class
    same_quadrant, brighter_inside = 0, 0
    for cam, (r, c) in zip(cams, corners.tolist(), strict=True):
        peak_r, peak_c = np.unravel_index(cam.argmax(), cam.shape)
        same_quadrant += (peak_r // HALF, peak_c // HALF) == (r // HALF, c // HALF)
        inside = np.zeros(cam.shape, dtype=bool)
        inside[r : r + SQUARE, c : c + SQUARE] = True
        brighter_inside += cam[inside].mean() > cam[~inside].mean()
    n = len(cams)
    assert n >= 20
    assert same_quadrant >= 0.75 * n, f"peak in the square's quadrant for {same_quadrant} of {n} (chance: 25%)"
    assert brighter_inside >= 0.8 * n, f"map brighter on the square than off it for {brighter_inside} of {n}"


@pytest.mark.slow  # shares the trained model (about 10 s of training)
def test_batch_and_class_choice(trained):
    model, generator = trained
    x, _, _ = _squares(6, generator)
    with torch.no_grad():
        predicted = model(x).argmax(dim=1)
    together = grad_cam(model, "resnet18", x)
    np.testing.assert_allclose(together, grad_cam(model, "resnet18", x, predicted), atol=1e-6)
    alone = np.stack([grad_cam(model, "resnet18", x[i : i + 1])[0] for i in range(len(x))])
    np.testing.assert_allclose(together, alone, atol=1e-4)  # eval mode: images do not affect each other
    other = grad_cam(model, "resnet18", x, 1 - predicted)
    assert not np.allclose(together, other)  # explaining the other class gives another map


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("channels", [1, 3])
def test_shape_and_range_for_every_architecture(arch, channels):
    torch.manual_seed(1)
    model = build_model(arch, 4, channels)
    x = torch.randn(3, channels, 64, 96)
    cams = grad_cam(model, arch, x, torch.tensor([0, 1, 3]))
    assert cams.shape == (3, 64, 96) and cams.dtype == np.float32
    assert np.isfinite(cams).all() and cams.min() >= 0.0 and cams.max() <= 1.0
    for cam in cams:  # per image: scaled to a peak of 1, or all zero where there is no positive evidence
        assert cam.max() == pytest.approx(1.0) or cam.max() == 0.0


@pytest.mark.slow  # shares the trained model (about 10 s of training)
def test_model_left_as_found(trained):
    model, generator = trained
    x, _, _ = _squares(4, generator)
    model.train()
    model.layer1.eval()  # a mixed state must come back exactly
    model.conv1.weight.requires_grad_(False)  # a frozen layer stays frozen
    state = {name: t.detach().clone() for name, t in model.state_dict().items()}  # weights and BatchNorm stats
    modes = {name: m.training for name, m in model.named_modules()}
    try:
        cams = grad_cam(model, "resnet18", x)
        assert {name: m.training for name, m in model.named_modules()} == modes
        assert not model.conv1.weight.requires_grad
        assert all(p.requires_grad for name, p in model.named_parameters() if name != "conv1.weight")
        assert all(p.grad is None for p in model.parameters())  # gradients taken w.r.t. activations only
        assert all(torch.equal(t, state[name]) for name, t in model.state_dict().items())
        for module in model.modules():
            assert not module._forward_hooks and not module._forward_pre_hooks
            assert not module._backward_hooks and not module._backward_pre_hooks
        # Eval mode inside: BatchNorm used running statistics, so the map matches one taken in eval mode.
        model.eval()
        np.testing.assert_allclose(cams, grad_cam(model, "resnet18", x), atol=1e-6)
        # A failure inside still removes the hook and restores the mode.
        model.train()
        with pytest.raises(ValueError):
            grad_cam(model, "resnet18", x, torch.tensor([0]))
        assert model.training and not target_layer(model, "resnet18")._forward_hooks
    finally:
        model.conv1.weight.requires_grad_(True)
        model.eval()


@pytest.mark.slow  # shares the trained model (about 10 s of training)
def test_works_under_no_grad(trained):
    model, generator = trained
    x, _, _ = _squares(2, generator)
    with torch.no_grad():
        cams = grad_cam(model, "resnet18", x)
    np.testing.assert_allclose(cams, grad_cam(model, "resnet18", x), atol=1e-6)


def test_no_evidence_gives_a_zero_map():
    torch.manual_seed(2)
    model = build_model("resnet18", 2, 1)
    with torch.no_grad():  # constant scores: zero gradient, no evidence anywhere
        model.fc.weight.zero_()
        model.fc.bias.zero_()
    cams = grad_cam(model, "resnet18", torch.randn(2, 1, 64, 64))
    assert cams.shape == (2, 64, 64) and not np.isnan(cams).any() and (cams == 0).all()


def test_target_layer():
    assert target_layer(build_model("resnet18", 2, 1), "resnet18").__class__.__name__ == "Sequential"
    mobile = build_model("mobilenet_v3_small", 2, 1)
    assert target_layer(mobile, "mobilenet_v3_small") is mobile.features[-1]
    with pytest.raises(ValueError):
        target_layer(mobile, "vgg16")


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_overlay_colours_the_hot_part(mode):
    image = Image.new(mode, (50, 30), 128 if mode == "L" else (128, 128, 128))
    cam = np.zeros((2, 2), dtype=np.float32)
    cam[0, 0] = 1.0  # top-left hot, the rest cold
    out = overlay(image, cam)
    assert out.mode == "RGB" and out.size == (50, 30)
    pixels = np.asarray(out, dtype=np.int32)
    hot, cold = pixels[0, 0], pixels[-1, -1]
    assert hot[0] > hot[2] + 50 and cold[2] > cold[0] + 50  # jet: red where hot, blue where cold
    unchanged = overlay(image, np.full((7, 7), np.nan, dtype=np.float32), alpha=0.0)
    assert np.array_equal(np.asarray(unchanged), np.asarray(image.convert("RGB")))
