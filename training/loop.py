"""The training loop as pure steps: one epoch of training, one evaluation, and ``fit`` that runs epochs and
hands every epoch's metrics and state to a ``report`` callback (Ray Train's report in a worker, a plain
function in tests and the direct benchmark). Nothing here starts Ray or knows about Prefect."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn
from torch.utils.data import DataLoader


@dataclass(frozen=True)
class LoopConfig:
    epochs: int = 3
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    per_class: int = 500  # images drawn per class per epoch (balanced sampling)
    seed: int = 0
    # Mixed precision: fp16 on CUDA, bfloat16 on a CPU; None = wherever the device has native support
    # (every CUDA device; a CPU with bfloat16 instructions, where it measured 1.5x the fp32 samples/s).
    amp: bool | None = None
    channels_last: bool = False  # memory format (GPU)

    def as_dict(self) -> dict:
        return asdict(self)


# fp16 needs a GradScaler but is what older GPUs accelerate; a CPU has bfloat16 only.
_HALF = {"cuda": torch.float16, "cpu": torch.bfloat16}


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    cfg: LoopConfig,
    scaler: torch.amp.GradScaler | None = None,
) -> dict:
    model.train()
    loss_fn = nn.CrossEntropyLoss()
    total_loss, correct, seen = 0.0, 0, 0
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=_HALF.get(device.type), enabled=bool(cfg.amp)):
            logits = model(x)
            loss = loss_fn(logits, y)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        total_loss += float(loss.detach()) * len(y)
        correct += int((logits.argmax(dim=1) == y).sum())
        seen += len(y)
    return {"train_loss": total_loss / max(seen, 1), "train_accuracy": correct / max(seen, 1), "train_samples": seen}


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device, num_classes: int) -> dict:
    """Loss, accuracy, per-class recall, mean detection rate (mean per-class recall) and the confusion matrix."""
    model.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.long)
    total_loss, seen = 0.0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        total_loss += float(loss_fn(logits, y))
        seen += len(y)
        for true, pred in zip(y.cpu().tolist(), logits.argmax(dim=1).cpu().tolist(), strict=True):
            confusion[true, pred] += 1
    support = confusion.sum(dim=1)
    recall = [float(confusion[i, i] / support[i]) if support[i] else None for i in range(num_classes)]
    present = [r for r in recall if r is not None]
    return {
        "valid_loss": total_loss / max(seen, 1),
        "valid_accuracy": float(confusion.diag().sum() / max(seen, 1)),
        "per_class_recall": recall,
        "mean_detection_rate": sum(present) / len(present) if present else 0.0,
        "confusion": confusion.tolist(),
    }


Report = Callable[[int, dict, dict], None]  # (epoch, metrics, state to checkpoint) -> None


def native_mixed_precision(device: torch.device) -> bool:
    """Whether ``device`` computes in half precision natively: any CUDA device, or a CPU with bfloat16
    instructions (AVX512-BF16, AMX). Elsewhere a CPU emulates bfloat16, slower than fp32."""
    if device.type == "cuda":
        return True
    try:
        return device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    valid_loader: DataLoader,
    cfg: LoopConfig,
    device: torch.device,
    num_classes: int,
    report: Report,
    start_epoch: int = 0,
    optimizer_state: dict | None = None,
) -> list[dict]:
    """Train from ``start_epoch`` to ``cfg.epochs``; ``report`` gets every epoch's metrics and state.

    The model is always evaluated (and served) in fp32; mixed precision is for training steps only."""
    if cfg.amp is None:
        cfg = replace(cfg, amp=native_mixed_precision(device))
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # Cosine decay over the planned epochs: a few CPU epochs converge further than at a constant rate.
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state["optimizer"])
        schedule.load_state_dict(optimizer_state["schedule"])
    scaler = torch.amp.GradScaler(device.type) if cfg.amp and device.type == "cuda" else None
    history = []
    for epoch in range(start_epoch, cfg.epochs):
        sampler = getattr(train_loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        started = time.perf_counter()
        trained = train_epoch(model, train_loader, optimizer, device, cfg, scaler)
        trained["train_s"] = time.perf_counter() - started
        metrics = {"epoch": epoch, **trained, **evaluate(model, valid_loader, device, num_classes)}
        schedule.step()
        metrics["lr"] = schedule.get_last_lr()[0]
        metrics["mixed_precision"] = cfg.amp  # the run record says how each epoch was computed
        history.append(metrics)
        report(
            epoch,
            metrics,
            {
                "model": _unwrapped(model).state_dict(),
                "epoch": epoch,
                "optimizer": {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict()},
            },
        )
    return history


def _unwrapped(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model  # DDP wraps the model
