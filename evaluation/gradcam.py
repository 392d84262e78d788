"""Grad-CAM heat maps: where in the image the classifier found the evidence for a class.

Why: the team's heat maps showed the model looking at the background circle pattern of the board instead of at
the defect. A reviewer therefore sees, for every wrongly classified image, the image and this map side by side.

Classic Grad-CAM (Selvaraju et al., 2017) on the last convolutional block: the block's activations A (K maps)
are weighted by the spatial mean of d score / d A per map, summed, passed through ReLU, upsampled to the input
size and scaled per image to 0..1. These backbones downsample 32 times, so a 64 px input gives a 2x2 map: the
map says which part of the image, not which pixel.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn


def target_layer(model: nn.Module, arch: str) -> nn.Module:
    """The last convolutional block of a ``training.model.build_model`` network."""
    if arch == "resnet18":
        return cast(nn.Module, model.layer4)
    if arch in ("mobilenet_v3_small", "efficientnet_b0"):
        return cast(nn.Sequential, model.features)[-1]
    raise ValueError(f"no Grad-CAM target layer known for architecture {arch!r}")


def grad_cam(model: nn.Module, arch: str, x: torch.Tensor, classes: torch.Tensor | None = None) -> np.ndarray:
    """Heat maps [N, H, W] float32 in 0..1 for a preprocessed batch ``x`` [N, C, H, W].

    ``classes`` [N] picks the class whose score is explained per image; None explains the predicted class.
    The model is evaluated in eval mode (BatchNorm on running statistics, so images do not affect each other)
    and left as it was found: training flags restored, no hooks left, parameters' ``requires_grad`` and
    ``.grad`` untouched (gradients are taken with ``torch.autograd.grad`` with respect to the activations only).
    """
    if x.ndim != 4:
        raise ValueError(f"expected a batch [N, C, H, W], got shape {tuple(x.shape)}")
    layer = target_layer(model, arch)
    captured: list[torch.Tensor] = []

    def keep_output(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        captured.append(output)

    modes = {module: module.training for module in model.modules()}  # submodules may differ: restore each
    handle = layer.register_forward_hook(keep_output)
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
            if not captured:
                raise RuntimeError("the target layer did not run in the forward pass")
            activations = captured[-1]
            # Summing the chosen scores is safe: in eval mode each image's score depends on its own activations.
            score = logits.gather(1, chosen[:, None]).sum()
            (gradients,) = torch.autograd.grad(score, activations)
        with torch.no_grad():
            weights = gradients.mean(dim=(2, 3), keepdim=True)  # [N, K, 1, 1]
            cam = F.relu((weights * activations).sum(dim=1, keepdim=True))  # [N, 1, h, w]
            cam = F.interpolate(cam, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)[:, 0]
            # Scale by the maximum, not min-max: 0 keeps meaning "no positive evidence", and a map with no
            # evidence at all stays zero instead of dividing by zero.
            peak = cam.amax(dim=(1, 2), keepdim=True)
            cam = torch.where(peak > 0, cam / peak.clamp_min(torch.finfo(cam.dtype).tiny), torch.zeros_like(cam))
        return np.nan_to_num(cam.detach().float().cpu().numpy(), nan=0.0).clip(0.0, 1.0).astype(np.float32)
    finally:
        handle.remove()
        for module, training in modes.items():
            module.training = training


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
