"""Grad-CAM heat maps: where in the image the classifier found the evidence for a class.

Why: the team's heat maps showed the model looking at the background circle pattern of the board instead of at
the defect. A reviewer therefore sees, for every wrongly classified image, the image and this map side by side.

Grad-CAM (Selvaraju et al., 2017): a block's activations A (K maps) are weighted by the spatial mean of
d score / d A per map, summed, passed through ReLU, upsampled to the input size and scaled per image to 0..1.
Layer-CAM (Jiang et al., 2021) weights each position by its own positive gradient instead of the map's mean;
Grad-CAM++ (Chattopadhay et al., 2018) weights the positive gradients by the usual closed-form alphas.

Which block and method: the last block (stride 32) gives a 2x2 map at 64 px input, which points at nothing. The
default is Grad-CAM++ on the block at stride 8 (``DEFAULT_LAYERS``: an 8x8 map at 64 px), chosen by measurement on
real DeepPCB crops whose defect box is known, placed at random in the window: see docs/measurements.md#grad-cam
(how often the map's peak falls inside the box, per layer and method, against a map that always peaks at the
centre and a random one).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

METHODS = ("gradcam", "gradcam++", "layercam")
DEFAULT_METHOD = "gradcam++"  # measured: docs/measurements.md#grad-cam

# Blocks by their stride (input pixels per map cell), as dotted module names of ``training.model.build_model``.
LAYERS: dict[str, dict[int, str]] = {
    "resnet18": {4: "layer1", 8: "layer2", 16: "layer3", 32: "layer4"},
    "mobilenet_v3_small": {4: "features.1", 8: "features.3", 16: "features.8", 32: "features.12"},
    "efficientnet_b0": {4: "features.2", 8: "features.3", 16: "features.5", 32: "features.8"},
}
DEFAULT_STRIDE = 8  # measured: docs/measurements.md#grad-cam
DEFAULT_LAYERS = {arch: strides[DEFAULT_STRIDE] for arch, strides in LAYERS.items()}


def layer_names(arch: str, layer: str | Sequence[str] | None = None) -> list[str]:
    """The dotted module names one map is taken from: ``layer`` (a name, or several to combine; any network),
    else the architecture's default."""
    if layer is None:
        if arch not in DEFAULT_LAYERS:
            raise ValueError(f"no Grad-CAM target layer known for architecture {arch!r}")
        return [DEFAULT_LAYERS[arch]]
    names = [layer] if isinstance(layer, str) else list(layer)
    if not names:
        raise ValueError("no layer given")
    return names


def target_layer(model: nn.Module, arch: str, layer: str | None = None) -> nn.Module:
    """The block of a ``training.model.build_model`` network that Grad-CAM reads: ``layer`` (a dotted module
    name such as ``layer2`` or ``features.3``) or the architecture's default (``DEFAULT_LAYERS``)."""
    (name,) = layer_names(arch, layer)
    try:
        return model.get_submodule(name)
    except AttributeError as err:
        raise ValueError(f"{arch} has no layer {name!r}") from err


def grad_cam(
    model: nn.Module,
    arch: str,
    x: torch.Tensor,
    classes: torch.Tensor | None = None,
    *,
    layer: str | Sequence[str] | None = None,
    method: str = DEFAULT_METHOD,
) -> np.ndarray:
    """Heat maps [N, H, W] float32 in 0..1 for a preprocessed batch ``x`` [N, C, H, W].

    ``classes`` [N] picks the class whose score is explained per image; None explains the predicted class.
    ``layer``: the block (dotted module name) or blocks to read, several giving the mean of their maps each scaled
    to 0..1; None: the architecture's default. ``method``: one of ``METHODS``.
    The model is evaluated in eval mode (BatchNorm on running statistics, so images do not affect each other)
    and left as it was found: training flags restored, no hooks left, parameters' ``requires_grad`` and
    ``.grad`` untouched (gradients are taken with ``torch.autograd.grad`` with respect to the activations only).
    """
    if x.ndim != 4:
        raise ValueError(f"expected a batch [N, C, H, W], got shape {tuple(x.shape)}")
    if method not in METHODS:
        raise ValueError(f"unknown heat map method {method!r}; choose one of {', '.join(METHODS)}")
    layers = [target_layer(model, arch, name) for name in layer_names(arch, layer)]
    captured: dict[int, torch.Tensor] = {}

    def keeper(index: int):
        def keep_output(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
            captured[index] = output

        return keep_output

    modes = {module: module.training for module in model.modules()}  # submodules may differ: restore each
    handles = [module.register_forward_hook(keeper(i)) for i, module in enumerate(layers)]
    try:
        model.eval()
        device = next(model.parameters()).device
        # The input carries the graph, so frozen parameters (requires_grad False) still give activation gradients.
        inputs = x.detach().clone().to(device).requires_grad_(True)
        with torch.enable_grad():
            logits = model(inputs)
            if classes is None:
                chosen = logits.argmax(dim=1)
            else:
                chosen = torch.as_tensor(classes, device=logits.device).long().reshape(-1)
                if len(chosen) != len(logits):
                    raise ValueError(f"{len(chosen)} classes for {len(logits)} images")
            if len(captured) != len(layers):
                raise RuntimeError("a target layer did not run in the forward pass")
            activations = [captured[i] for i in range(len(layers))]
            # Summing the chosen scores is safe: in eval mode each image's score depends on its own activations.
            score = logits.gather(1, chosen[:, None]).sum()
            gradients = torch.autograd.grad(score, activations)
        with torch.no_grad():
            size = tuple(x.shape[-2:])
            maps = [_scaled(_upsampled(_cam(a, g, method), size)) for a, g in zip(activations, gradients, strict=True)]
            cam = _scaled(torch.stack(maps).mean(dim=0)) if len(maps) > 1 else maps[0]
        return np.nan_to_num(cam.detach().float().cpu().numpy(), nan=0.0).clip(0.0, 1.0).astype(np.float32)
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training


def _cam(activations: torch.Tensor, gradients: torch.Tensor, method: str) -> torch.Tensor:
    """[N, h, w] non-negative evidence from one block's activations and the score's gradients [N, K, h, w]."""
    a, g = activations.float(), gradients.float()
    if method == "layercam":
        return F.relu((F.relu(g) * a).sum(dim=1))
    if method == "gradcam++":
        # Closed-form alphas for an exponential of the score: its higher derivatives are powers of the gradient.
        g2, g3 = g.pow(2), g.pow(3)
        denominator = 2 * g2 + (a * g3).sum(dim=(2, 3), keepdim=True)
        alpha = g2 / torch.where(denominator != 0, denominator, torch.ones_like(denominator))
        weights = (alpha * F.relu(g)).sum(dim=(2, 3), keepdim=True)
    else:
        weights = g.mean(dim=(2, 3), keepdim=True)  # [N, K, 1, 1]
    return F.relu((weights * a).sum(dim=1))


def _upsampled(cam: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    return F.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def _scaled(cam: torch.Tensor) -> torch.Tensor:
    """Each map divided by its maximum, not min-max: 0 keeps meaning "no positive evidence", and a map with no
    evidence at all stays zero instead of dividing by zero."""
    peak = cam.amax(dim=(1, 2), keepdim=True)
    return torch.where(peak > 0, cam / peak.clamp_min(torch.finfo(cam.dtype).tiny), torch.zeros_like(cam))


def peak(cam: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of a heat map's maximum, on a plateau the middle of the pixels that share it; None for a map
    with no evidence anywhere (all zero), which points at nothing."""
    heat = np.nan_to_num(np.asarray(cam, dtype=np.float32), nan=0.0)
    if heat.ndim != 2:
        raise ValueError(f"expected a 2-D heat map, got shape {heat.shape}")
    top = heat.max()
    if top <= 0:
        return None
    rows, cols = np.nonzero(heat >= top)
    return int(np.rint(rows.mean())), int(np.rint(cols.mean()))


def peak_in_box(cam: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """Whether the map's peak lies in ``box`` (x1, y1, x2, y2; x2 and y2 exclusive) in the map's own pixels; never
    for a map without a peak."""
    found = peak(cam)
    if found is None:
        return False
    row, col = found
    x1, y1, x2, y2 = box
    return x1 <= col < x2 and y1 <= row < y2


def overlay(image: Image.Image, cam: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """``image`` (gray or colour, any size) with ``cam`` (0..1, any size) drawn on top in the 'jet' colour map:
    red where the model found the most evidence, blue where none. Returns an RGB image of the image's size."""
    import matplotlib

    base = image.convert("RGB")
    heat = np.nan_to_num(np.asarray(cam, dtype=np.float32), nan=0.0).clip(0.0, 1.0)
    if heat.ndim != 2:
        raise ValueError(f"expected a 2-D heat map, got shape {heat.shape}")
    if heat.shape != (base.height, base.width):
        heat = np.asarray(Image.fromarray(heat).resize(base.size, Image.Resampling.BILINEAR))
    colours = matplotlib.colormaps["jet"](heat.clip(0.0, 1.0))[..., :3] * 255.0  # [H, W, 3]
    blended = (1.0 - alpha) * np.asarray(base, dtype=np.float32) + alpha * colours
    return Image.fromarray(blended.round().clip(0, 255).astype(np.uint8))
