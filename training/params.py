"""The training parameters, declared once: `aoi train` builds its options from them, the train flow takes them
as its one parameter (Prefect validates it), a retraining copies them from the production model's run, and the
demo states its own. Bounds refuse a request before any worker starts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TrainParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = Field(min_length=1, description="A training dataset version (aoi dataset list).")
    arch: str = Field("resnet18", description="resnet18, mobilenet_v3_small or efficientnet_b0.")
    epochs: int = Field(3, ge=1, description="Passes over the balanced draw of the train split.")
    workers: int = Field(1, ge=1, description="Ray Train workers.")
    gpu: bool = Field(False, description="One GPU per worker, channels-last.")
    per_class: int = Field(500, ge=1, description="Images drawn per class per epoch (balanced).")
    batch_size: int = Field(64, ge=1, description="Images per step on each worker.")
    lr: float = Field(1e-3, gt=0, le=1, description="Learning rate.")
    input_size: int = Field(64, ge=16, le=1024, description="Side of the square the images are resized to.")
    seed: int = Field(0, ge=0, description="Seed of the draws, the split order and the initial weights.")
    augment: bool = Field(True, description="Flips and quarter turns while training.")
    tone_jitter: float = Field(
        0.0, ge=0.0, le=0.5, description="Augment: each channel's gain drawn from 1 ± this, 0 to 0.5 (tone robustness)."
    )
    amp: bool | None = Field(
        None, description="Mixed precision: fp16 on a GPU, bfloat16 on a CPU with bfloat16 instructions."
    )


# What a retraining copies from the production model's run (augment is not an option of `aoi train`: always on).
RETRAINED = tuple(name for name in TrainParams.model_fields if name not in ("dataset", "augment"))


class TrainResult(BaseModel):
    """What the train flow returns: the run record and its candidate model version (``aoi train --json``)."""

    model_config = ConfigDict(frozen=True)

    run_id: int
    model_version: str | None
    status: str
    kind: str
    dataset: str
    arch: str
    mean_detection_rate: float | None
    valid_accuracy: float | None
    labelled_images: int | None
    total_images: int | None
    label_kinds: int | None
    started_at: str
    finished_at: str | None
    duration_s: float | None
    curves: str | None
    error: str | None
    ray_cluster: dict | None
    # On the dataset version's test split, where it has one (absent otherwise, as in `aoi train --json`).
    test_accuracy: float | None = None
    test_mean_detection_rate: float | None = None
    test_images: int | None = None

    def as_dict(self) -> dict:
        """The JSON of `aoi train --json`: the test-split keys only where the version has a test split."""
        return self.model_dump(exclude_unset=True)
