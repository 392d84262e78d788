"""The training progress bar: what it shows of each epoch, and the Ray Train callback that feeds it (the real
run through Ray is in test_ray_trainer)."""

from __future__ import annotations

import io
import queue

from training.progress import EpochBar, forward_reports


def _metrics(epoch: int) -> dict:
    return {
        "epoch": epoch,
        "train_loss": 1.0 / (epoch + 1),
        "valid_accuracy": 0.5 + 0.1 * epoch,
        "mean_detection_rate": 0.4,
        "confusion": [[1, 0], [0, 1]],
    }


def test_the_bar_shows_epoch_k_of_n_loss_and_valid_accuracy():
    out = io.StringIO()
    bar = EpochBar(3, label="training run 7", file=out)
    bar.update(_metrics(0))
    first = out.getvalue()
    bar.update(_metrics(1))
    bar.close()
    text = out.getvalue()
    assert "training run 7: epoch 1/3" in first and "loss 1.000, valid accuracy 0.500" in first
    assert "epoch 2/3" in text and "loss 0.500, valid accuracy 0.600" in text
    assert "epoch 3/3" not in text  # the bar counts what was reported, not what was planned
    assert bar.epochs_seen == [0, 1]


def test_a_resumed_run_goes_on_from_its_checkpoint_epoch():
    bar = EpochBar(5, file=io.StringIO())
    bar.update(_metrics(3))  # a restarted worker group's first report after resuming
    assert bar.bar.n == 4
    bar.close()


def test_the_callback_forwards_rank_zeros_epoch_metrics_and_nothing_else():
    sent: queue.Queue = queue.Queue()
    callback = forward_reports(sent)
    callback.after_report(None, [_metrics(2), _metrics(9)], None)
    callback.after_report(None, [{"other": 1}], None)  # a report without an epoch is not a training epoch
    forwarded = sent.get_nowait()
    assert forwarded == {"epoch": 2, "train_loss": 1 / 3, "valid_accuracy": 0.7, "mean_detection_rate": 0.4}
    assert sent.empty()
