"""Checkpoints and model files load as tensors and plain data only (torch.load weights_only=True)."""

import pytest
import torch

from training.checkpoint import CheckpointRefused, load_state
from training.loop import LoopConfig


class Payload:
    """What a planted checkpoint could carry: unpickling it would run code (here: create a file)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_training_checkpoint_loads_with_weights_only(tmp_path):
    """The state training.loop.fit reports (model, AdamW, cosine schedule, epoch) after a real step.
    (tests/training/test_ray_trainer.py loads the checkpoint a Ray run wrote the same way.)"""
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.LazyLinear(2)
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=3)
    model(torch.rand(2, 1, 8, 8)).sum().backward()
    optimizer.step()
    schedule.step()
    torch.save(
        {
            "model": model.state_dict(),
            "epoch": 0,
            "optimizer": {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict()},
        },
        tmp_path / "checkpoint.pt",
    )
    state = load_state(tmp_path / "checkpoint.pt")
    assert state["epoch"] == 0 and set(state["optimizer"]) == {"optimizer", "schedule"}
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"]["optimizer"])
    schedule.load_state_dict(state["optimizer"]["schedule"])


@pytest.mark.parametrize("planted", ["reduce", "nested", "dataclass"])
def test_a_checkpoint_carrying_a_pickled_object_is_refused_unbuilt(tmp_path, planted):
    marker = tmp_path / "payload-ran"
    obj = {
        "reduce": Payload(str(marker)),
        "nested": {"model": {}, "note": Payload(str(marker))},
        "dataclass": {"model": {}, "loop": LoopConfig()},
    }[planted]
    torch.save(obj, tmp_path / "checkpoint.pt")
    assert not marker.exists()  # saving pickles the object; it does not call what __reduce__ returns
    with pytest.raises(CheckpointRefused, match=r"checkpoint\.pt holds more than tensors and plain data"):
        load_state(tmp_path / "checkpoint.pt")
    assert not marker.exists()
    torch.load(tmp_path / "checkpoint.pt", weights_only=False) if planted == "reduce" else None
    assert marker.exists() == (planted == "reduce")  # the test's own proof that the payload would have run
