"""Grad-CAM on real networks: the map lies on the evidence after real training, has the right shape and range
for every architecture, and leaves the model exactly as it found it (mode, hooks, requires_grad, grads)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation.gradcam import (
    DEFAULT_LAYERS,
    LAYERS,
    METHODS,
    grad_cam,
    layer_names,
    overlay,
    peak,
    peak_in_box,
    target_layer,
)
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
    resnet = build_model("resnet18", 2, 1)
    assert target_layer(resnet, "resnet18") is resnet.layer2  # the default: stride 8
    assert target_layer(resnet, "resnet18", "layer4") is resnet.layer4
    mobile = build_model("mobilenet_v3_small", 2, 1)
    assert target_layer(mobile, "mobilenet_v3_small") is mobile.features[3]
    assert target_layer(mobile, "mobilenet_v3_small", "features.12") is mobile.features[-1]
    with pytest.raises(ValueError):
        target_layer(mobile, "vgg16")
    with pytest.raises(ValueError, match="no layer"):
        target_layer(mobile, "mobilenet_v3_small", "layer3")


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_layer_has_the_stride_it_is_listed_under(arch):
    model = build_model(arch, 3, 1).eval()
    shapes: dict[str, tuple[int, ...]] = {}

    def keep(name: str):
        return lambda _module, _inputs, out: shapes.__setitem__(name, tuple(out.shape))

    handles = [model.get_submodule(name).register_forward_hook(keep(name)) for name in LAYERS[arch].values()]
    with torch.no_grad():
        model(torch.zeros(1, 1, 64, 96))
    for handle in handles:
        handle.remove()
    for stride, name in LAYERS[arch].items():
        assert shapes[name][-2:] == (64 // stride, 96 // stride), (name, stride)
    assert DEFAULT_LAYERS[arch] == LAYERS[arch][8]
    assert layer_names(arch) == [DEFAULT_LAYERS[arch]]


class _Blurs(torch.nn.Module):
    """A network whose answer is known: two stride-4 box blurs ("fine", then "coarse" at stride 32), global
    mean, and class 1 = +mean of the coarse map, class 0 = -mean. Class 1's evidence is where the image is
    bright; class 0 has no positive evidence anywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.fine = torch.nn.Conv2d(1, 1, 4, stride=4, bias=False)
        self.coarse = torch.nn.Conv2d(1, 1, 8, stride=8, bias=False)
        self.head = torch.nn.Linear(1, 2, bias=False)
        with torch.no_grad():
            self.fine.weight.fill_(1 / 16)
            self.coarse.weight.fill_(1 / 64)
            self.head.weight.copy_(torch.tensor([[-1.0], [1.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coarse = self.coarse(torch.relu(self.fine(x)))
        return self.head(coarse.mean(dim=(2, 3)))


def _spots(n: int, seed: int) -> tuple[torch.Tensor, list[tuple[int, int, int, int]]]:
    """Dark 64 px images, each with one 8 px bright spot at a random position: images and the spots' boxes."""
    rng = np.random.default_rng(seed)
    x = torch.zeros(n, 1, 64, 64)
    boxes = []
    for i in range(n):
        left, top = (int(v) for v in rng.integers(0, 64 - 8, size=2))
        x[i, 0, top : top + 8, left : left + 8] = 1.0
        boxes.append((left, top, left + 8, top + 8))
    return x, boxes


@pytest.mark.parametrize("method", METHODS)
def test_a_fine_layer_finds_the_spot_where_the_last_block_cannot(method):
    model = _Blurs()
    x, boxes = _spots(24, seed=3)
    classes = torch.ones(len(x), dtype=torch.long)
    fine = grad_cam(model, "blurs", x, classes, layer="fine", method=method)
    coarse = grad_cam(model, "blurs", x, classes, layer="coarse", method=method)
    assert fine.shape == coarse.shape == (24, 64, 64)
    fine_hits = sum(peak_in_box(cam, box) for cam, box in zip(fine, boxes, strict=True))
    coarse_hits = sum(peak_in_box(cam, box) for cam, box in zip(coarse, boxes, strict=True))
    # The stride-4 map has the spot's own cells at its peak; the 2x2 map peaks at the middle of a 32 px quadrant,
    # inside an 8 px spot only by chance.
    assert fine_hits == len(x), f"{fine_hits} of {len(x)}"
    assert coarse_hits <= len(x) // 4, f"{coarse_hits} of {len(x)}"
    # Combined layers: still on the spot.
    both = grad_cam(model, "blurs", x, classes, layer=["fine", "coarse"], method=method)
    assert sum(peak_in_box(cam, box) for cam, box in zip(both, boxes, strict=True)) == len(x)
    assert np.allclose(both.max(axis=(1, 2)), 1.0)
    # Class 0 is "no spot": nothing in the image speaks for it, so its map is zero and has no peak.
    against = grad_cam(model, "blurs", x, torch.zeros(len(x), dtype=torch.long), layer="fine", method=method)
    assert (against == 0).all() and peak(against[0]) is None and not peak_in_box(against[0], (0, 0, 64, 64))


def test_unknown_method_or_missing_layer_is_refused():
    model = _Blurs()
    x, _ = _spots(1, seed=0)
    with pytest.raises(ValueError, match="method"):
        grad_cam(model, "blurs", x, layer="fine", method="saliency")
    with pytest.raises(ValueError, match="architecture"):
        grad_cam(model, "blurs", x)  # no default layer for a network it does not know
    with pytest.raises(ValueError):
        grad_cam(model, "blurs", x, layer=[])


def test_peak_and_box():
    cam = np.zeros((10, 20), dtype=np.float32)
    assert peak(cam) is None
    cam[2, 15] = 0.5
    assert peak(cam) == (2, 15)
    assert peak_in_box(cam, (15, 2, 16, 3)) and not peak_in_box(cam, (0, 0, 15, 10))  # x2, y2 exclusive
    cam[4:7, 3:6] = 1.0  # a plateau: its middle
    assert peak(cam) == (5, 4)
    with pytest.raises(ValueError):
        peak(np.zeros((2, 2, 2)))


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
