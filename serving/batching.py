"""Adaptive batching of the model call inside ``/classify``, in the service's own process.

BentoML runs a batchable method behind a ``CorkDispatcher``: requests queue up, and a batch is released
when waiting longer would cost more than it saves (latency model fitted online), at ``max_batch_size``, or
before ``max_latency_ms`` runs out. ``forward_gray`` / ``forward_color`` are such methods. Called from
another method of the same service (``self.to_async.forward_gray``), BentoML 1.4 sends every image back
through its own HTTP stack: a JSON body of floats, the middlewares, a second request log line, and an
in-process connector that drops finished calls under load. Measured with ``bench/serving.py``, that path
spent more time on the self-call than on the model. ``Batcher`` puts the same dispatcher, with the same
settings, directly in front of the same batch function instead: one queue per kind, no serialisation.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import anyio
import numpy as np
from bentoml.exceptions import ServiceUnavailable

# The dispatcher is the one behind @bentoml.api(batchable=True); it is not exported under a public name.
from training.bentoml_private import CorkDispatcher


class Overloaded(ServiceUnavailable):
    """The batcher dropped the request: it could not be answered within ``max_latency_ms``."""


def _overloaded():
    raise Overloaded("the model is overloaded: no batch could take this image within max_latency_ms")


class Batcher:
    """``await batcher(image_batch)`` -> that batch's outputs, run together with whatever else is queued.

    ``forward(batch)`` takes a (N, ...) array and returns a list of N outputs; it runs in a worker thread,
    one batch at a time, so the event loop keeps accepting requests while the model works.
    """

    def __init__(self, forward: Callable[[np.ndarray], list], max_batch_size: int, max_latency_ms: int) -> None:
        self._forward = forward
        self._limits = {"max_latency_in_ms": max_latency_ms, "max_batch_size": max_batch_size}
        self._dispatcher: CorkDispatcher | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = self.images = 0

    async def _run(self, parts: tuple[np.ndarray, ...]) -> list[list]:
        """One forward pass over the queued parts; each part gets its own slice of the outputs back."""
        batch = np.concatenate(parts) if len(parts) > 1 else parts[0]
        outputs = await anyio.to_thread.run_sync(self._forward, batch)
        self.batches += 1
        self.images += len(batch)
        bounds = np.cumsum([0, *(len(p) for p in parts)])
        return [outputs[a:b] for a, b in itertools.pairwise(bounds)]

    async def __call__(self, batch: np.ndarray) -> list:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # the dispatcher's queue and timer live on one event loop (tests run several)
            self.close()
            self._loop = loop
            self._dispatcher = CorkDispatcher(
                **self._limits, fallback=_overloaded, get_batch_size=len, batch_dim=(0, 0)
            )
            self._call = self._dispatcher(self._run)
        return await self._call(batch)

    @property
    def mean_batch_size(self) -> float | None:
        return round(self.images / self.batches, 2) if self.batches else None

    def close(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.shutdown()
