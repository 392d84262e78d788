"""Loading saved weights and checkpoints: tensors and plain data only.

Every ``torch.load`` in the project goes through ``load_state`` (``weights_only=True``): a file that holds any
other pickled object is refused before that object is built, so a checkpoint or model file put in AOI_HOME by
someone else cannot run code in the trainer or the service. What is saved is made loadable that way: model,
optimizer and scheduler state_dicts, epoch numbers, plain dicts and lists.
"""

from __future__ import annotations

import pickle
from pathlib import Path


class CheckpointRefused(RuntimeError):
    """The file holds more than tensors and plain data; the message says which file."""


def load_state(path: str | Path):
    """The tensors and plain data saved at ``path`` (on the CPU); CheckpointRefused for anything else."""

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()
        detail = next(
            (line.strip() for line in first if "GLOBAL" in line or "Unsupported" in line), first[0] if first else ""
        )
        raise CheckpointRefused(
            f"{Path(path).name} holds more than tensors and plain data (a pickled object); "
            f"refused, not loaded: {detail[:200]}"
        ) from None
