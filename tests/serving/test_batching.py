"""The adaptive batcher in front of the model call: concurrent requests share forward passes, and each caller
gets back exactly its own outputs (or the error of the batch it was in)."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from serving.batching import Batcher


class Recorder:
    """A forward function that notes each batch it ran and answers every row with its own first value."""

    def __init__(self, seconds: float = 0.02, fail_on: float | None = None) -> None:
        self.sizes: list[int] = []
        self.seconds, self.fail_on = seconds, fail_on
        self.threads: set[str] = set()

    def __call__(self, batch: np.ndarray) -> list[float]:
        self.sizes.append(len(batch))
        self.threads.add(threading.current_thread().name)
        if self.fail_on is not None and self.fail_on in batch[:, 0]:
            raise ValueError(f"bad row {self.fail_on}")
        threading.Event().wait(self.seconds)  # a forward pass takes time: requests pile up behind it
        return [float(row[0]) for row in batch]


async def _many(batcher: Batcher, parts: list[np.ndarray]) -> list:
    return await asyncio.gather(*(batcher(p) for p in parts), return_exceptions=True)


def test_concurrent_requests_share_forward_passes_and_each_gets_its_own_rows():
    forward = Recorder()
    batcher = Batcher(forward, max_batch_size=8, max_latency_ms=10_000)
    parts = [np.full((1 + i % 2, 3), i, dtype=np.float32) for i in range(40)]  # some callers send two rows
    outputs = asyncio.run(_many(batcher, parts))
    assert outputs == [[float(i)] * (1 + i % 2) for i in range(40)]
    assert sum(forward.sizes) == sum(len(p) for p in parts) == 60
    assert len(forward.sizes) < 40 and max(forward.sizes) > 1, forward.sizes  # batched, not one by one
    assert max(forward.sizes) <= 8 + 1  # the cork releases at max_batch_size (a two-row part may top it up by one)
    assert batcher.batches == len(forward.sizes) and batcher.mean_batch_size == round(60 / len(forward.sizes), 2)
    assert threading.current_thread().name not in forward.threads  # the model runs off the event loop


def test_an_error_reaches_the_callers_of_that_batch_only():
    forward = Recorder(fail_on=3.0)
    batcher = Batcher(forward, max_batch_size=4, max_latency_ms=10_000)
    outputs = asyncio.run(_many(batcher, [np.full((1, 2), i, dtype=np.float32) for i in range(12)]))
    failed = [i for i, out in enumerate(outputs) if isinstance(out, ValueError)]
    assert 3 in failed and "bad row 3.0" in str(outputs[3])
    assert all(outputs[i] == [float(i)] for i in range(12) if i not in failed) and len(failed) < 12


def test_a_batcher_serves_one_event_loop_after_another():
    """The service object outlives event loops in tests and scripts: each loop gets a fresh queue."""
    batcher = Batcher(Recorder(seconds=0), max_batch_size=4, max_latency_ms=10_000)
    for run in range(2):
        assert asyncio.run(batcher(np.full((1, 1), run, dtype=np.float32))) == [float(run)]
    batcher.close()


def test_mean_batch_size_is_none_before_any_batch():
    assert Batcher(Recorder(), 4, 100).mean_batch_size is None
