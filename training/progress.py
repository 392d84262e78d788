"""Training progress where the user waits: a bar on stderr with the epoch (k/N), the training loss and the valid
accuracy, drawn by the driver (``aoi train``, the demo) while Ray trains.

Ray Train V2 calls a ``UserCallback``'s ``after_report`` on its controller, not in the driver, once every worker
has reported an epoch; the callback forwards rank 0's metrics through a Ray queue, and a thread here draws them.
"""

from __future__ import annotations

import sys
import threading
from typing import IO, Any

from tqdm import tqdm

# What the bar shows of an epoch's metrics (the rest, e.g. the confusion matrix, stays in the run record).
SHOWN = ("epoch", "train_loss", "valid_accuracy", "mean_detection_rate")


class EpochBar:
    """The bar itself: ``update`` with an epoch's metrics (epochs count from 0, as the loop reports them)."""

    def __init__(self, epochs: int, label: str = "training", file: IO[str] | None = None) -> None:
        self.bar = tqdm(
            total=epochs,
            desc=label,
            unit="epoch",
            file=file or sys.stderr,
            bar_format="{desc}: epoch {n_fmt}/{total_fmt} |{bar:20}| {postfix} [{elapsed}<{remaining}]",
            dynamic_ncols=True,
        )
        self.bar.set_postfix_str("waiting for the first epoch", refresh=True)
        self.epochs_seen: list[int] = []

    def update(self, metrics: dict[str, Any]) -> None:
        epoch = int(metrics["epoch"])
        self.epochs_seen.append(epoch)
        self.bar.n = min(epoch + 1, self.bar.total)  # a restarted worker group goes on from its checkpoint
        self.bar.set_postfix_str(
            f"loss {metrics['train_loss']:.3f}, valid accuracy {metrics['valid_accuracy']:.3f}", refresh=True
        )

    def close(self) -> None:
        self.bar.close()


def forward_reports(queue: Any) -> Any:
    """A Ray Train ``UserCallback`` that puts rank 0's metrics of every epoch on ``queue`` (a ``ray.util.queue``).
    Built here so that Ray is imported only when training runs."""
    from ray.train import UserCallback

    class ForwardReports(UserCallback):
        def __init__(self, queue: Any) -> None:
            self.queue = queue

        def after_report(self, run_context: Any, metrics: list[dict], checkpoint: Any) -> None:
            if not metrics or "epoch" not in metrics[0]:
                return
            try:
                self.queue.put_nowait({k: metrics[0][k] for k in SHOWN if k in metrics[0]})
            except Exception:  # progress is a courtesy: it never fails a training run
                return

    return ForwardReports(queue)


class TrainingProgress:
    """``with TrainingProgress(epochs) as progress:`` give ``progress.callback`` to the trainer's RunConfig; the
    bar follows the run until the block ends."""

    def __init__(self, epochs: int, label: str = "training", file: IO[str] | None = None) -> None:
        from ray.util.queue import Queue

        self.bar = EpochBar(epochs, label, file)
        self.queue = Queue(actor_options={"num_cpus": 0})  # takes no CPU from the training workers
        self.callback = forward_reports(self.queue)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._draw, name="training-progress", daemon=True)

    def _draw(self) -> None:
        from ray.util.queue import Empty

        while not self._stop.is_set():
            try:
                self.bar.update(self.queue.get(timeout=0.5))
            except Empty:
                continue
            except Exception:  # the queue's actor is gone: nothing more to draw
                return

    def __enter__(self) -> TrainingProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            while not self.queue.empty():  # reports that came after the thread's last look
                self.bar.update(self.queue.get_nowait())
        except Exception:
            pass
        finally:
            self.bar.close()
            self.queue.shutdown()
