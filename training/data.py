"""Data over a dataset version: the manifest's images from the store, preprocessed by the one preprocessing
function, and a balanced sampler that draws (or, with augmentation, re-draws) each class to N per epoch."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset, Sampler

from aoi.preprocess import Preprocessing, ToneCalibration, preprocess
from aoi.store import ImageStore
from training.taxonomy import Taxonomy


@dataclass(frozen=True)
class Augment:
    """Label-preserving changes for AOI crops: a defect seen flipped or turned 90° is the same defect."""

    flips: bool = True
    rot90: bool = True
    # Tone jitter (docs/domain.md#joint-tone: one channel off by 10% cost up to 30 points): each channel's light scaled
    # by a
    # gain drawn from [1 - tone_jitter, 1 + tone_jitter]. Applied to the normalised tensor, hence mean and std.
    tone_jitter: float = 0.0
    mean: float = 0.5
    std: float = 0.25

    def __call__(self, x: torch.Tensor, rng: random.Random) -> torch.Tensor:
        if self.tone_jitter:
            gains = torch.tensor([1 + rng.uniform(-self.tone_jitter, self.tone_jitter) for _ in range(x.shape[0])])
            # (g·v - mean) / std = g·x + (g - 1)·mean / std, for x = (v - mean) / std
            x = x * gains[:, None, None] + ((gains - 1) * self.mean / self.std)[:, None, None]
        if self.flips and rng.random() < 0.5:
            x = torch.flip(x, dims=[2])
        if self.flips and rng.random() < 0.5:
            x = torch.flip(x, dims=[1])
        if self.rot90:
            x = torch.rot90(x, rng.randrange(4), dims=[1, 2])
        return x


class ManifestDataset(Dataset):
    """(tensor, class index) for each (sha256, label) of a manifest split; each sample decoded once per access,
    with its machine's colour calibration (``calibration``: sha256 -> the one in force when it was captured)."""

    def __init__(
        self,
        items: Sequence[tuple[str, str]],
        store: ImageStore,
        taxonomy: Taxonomy,
        prep: Preprocessing,
        augment: Augment | None = None,
        seed: int = 0,
        calibration: Mapping[str, ToneCalibration] | None = None,
    ) -> None:
        self.items = list(items)
        self.targets = [taxonomy.index(label) for _, label in self.items]  # refuses labels outside the taxonomy
        self.store, self.prep, self.augment = store, prep, augment
        self.calibration = calibration or {}
        self._rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sha256, _ = self.items[index]
        x = preprocess(self.store.get(sha256), self.prep, self.calibration.get(sha256))
        if self.augment is not None:
            x = self.augment(x, self._rng)
        return x, self.targets[index]


class BalancedSampler(Sampler[int]):
    """Each epoch, ``per_class`` indices of every class (drawn without replacement while the class has enough,
    with replacement beyond: the augmentation makes the repeats differ), shuffled; ``set_epoch`` reseeds.

    Sharded by ``rank`` of ``world_size`` so every distributed worker sees its own part of the same draw.
    """

    def __init__(self, targets: Sequence[int], per_class: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.by_class: dict[int, list[int]] = defaultdict(list)
        for index, target in enumerate(targets):
            self.by_class[target].append(index)
        self.per_class, self.seed, self.rank, self.world_size = per_class, seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _draw(self) -> list[int]:
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        drawn: list[int] = []
        for target in sorted(self.by_class):
            members = self.by_class[target]
            if len(members) >= self.per_class:
                drawn += rng.sample(members, self.per_class)
            else:
                drawn += members + [rng.choice(members) for _ in range(self.per_class - len(members))]
        rng.shuffle(drawn)
        usable = len(drawn) - len(drawn) % self.world_size  # equal shards: DDP needs the same step count
        return drawn[self.rank : usable : self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self._draw())

    def __len__(self) -> int:
        total = self.per_class * len(self.by_class)
        return (total - total % self.world_size) // self.world_size
