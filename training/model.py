"""The classifier: a torchvision backbone with its first layer fitted to the input channels and its last to
the fine classes. Pretrained weights come only from a local file, never from a download at run time."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

ARCHITECTURES = ("resnet18", "mobilenet_v3_small", "efficientnet_b0")


class ModelError(ValueError):
    pass


def _first_conv(model: nn.Module, arch: str) -> tuple[nn.Module, str]:
    if arch == "resnet18":
        return model, "conv1"
    return model.features[0], "0"  # mobilenet_v3_small, efficientnet_b0: Conv2dNormActivation(conv, bn, act)


def build_model(arch: str, num_classes: int, channels: int = 1, pretrained: Path | None = None) -> nn.Module:
    """A ``arch`` classifier for ``channels``-channel input and ``num_classes`` outputs."""
    import torchvision

    if arch not in ARCHITECTURES:
        raise ModelError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    if num_classes < 2:
        raise ModelError(f"a classifier needs at least 2 classes, not {num_classes}")
    model = getattr(torchvision.models, arch)(weights=None)
    if pretrained is not None:
        from training.checkpoint import load_state

        state = load_state(pretrained)
        model.load_state_dict(state)
    if channels != 3:
        parent, name = _first_conv(model, arch)
        old = getattr(parent, name) if name != "0" else parent[0]
        new = nn.Conv2d(channels, old.out_channels, old.kernel_size, old.stride, old.padding, bias=old.bias is not None)
        with torch.no_grad():  # keep what pretrained RGB filters learned: their mean over the colour channels
            new.weight.copy_(old.weight.mean(dim=1, keepdim=True).repeat(1, channels, 1, 1))
        if name == "0":
            parent[0] = new
        else:
            setattr(parent, name, new)
    if arch == "resnet18":
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    else:
        last = model.classifier[-1]
        model.classifier[-1] = nn.Linear(last.in_features, num_classes)
    return model
