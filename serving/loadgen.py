"""Concurrent /classify requests against a running service: the load test and ``bench/serving.py`` use it."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import numpy as np


@dataclass
class LoadResult:
    requests: int
    concurrency: int
    seconds: float
    statuses: Counter = field(default_factory=Counter)
    versions: Counter = field(default_factory=Counter)
    request_ids: list[str] = field(default_factory=list)
    answers: dict[int, dict] = field(default_factory=dict)  # request number -> the answer (200s only)
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def figures(self) -> dict:
        return {
            "requests": self.requests,
            "concurrency": self.concurrency,
            "req_per_s": round(self.throughput, 1),
            "p50_ms": round(self.percentile(50), 1),
            "p99_ms": round(self.percentile(99), 1),
            "errors": sum(n for code, n in self.statuses.items() if code != 200),
        }


async def _drive(
    url: str,
    images: list[bytes],
    n: int,
    concurrency: int,
    kind: str,
    token: str | None,
    during=None,
    machine_ids: list[str] | None = None,
) -> LoadResult:
    # aiohttp rather than httpx: the client shares the machine with the server, and aiohttp spends about half
    # the CPU per request, which leaves more to the service being measured.
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    result = LoadResult(n, concurrency, 0.0)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout, headers=headers) as client:

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                form = aiohttp.FormData()
                form.add_field("image", images[i % len(images)], filename=f"{i}.png", content_type="image/png")
                form.add_field("kind", kind)
                form.add_field("machine_id", machine_ids[i % len(machine_ids)] if machine_ids else f"m{i % 4}")
                started = time.perf_counter()
                try:
                    async with client.post("/classify", data=form) as r:
                        body = await r.read()
                except (TimeoutError, aiohttp.ClientError) as err:
                    result.statuses["transport"] += 1
                    result.errors.append(f"{type(err).__name__}: {err}")
                    continue
                result.latencies_ms.append((time.perf_counter() - started) * 1e3)
                result.statuses[r.status] += 1
                if r.status == 200:
                    answer = json.loads(body)
                    result.answers[i] = answer
                    result.versions[answer["model_version"]] += 1
                    result.request_ids.append(answer["request_id"])
                elif len(result.errors) < 20:
                    result.errors.append(f"{r.status}: {body[:300].decode(errors='replace')}")

        started = time.perf_counter()
        tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
        if during is not None:
            await during(result)
        await asyncio.gather(*tasks)
        result.seconds = time.perf_counter() - started
    return result


def run_load(
    url: str,
    images: list[bytes],
    n: int,
    concurrency: int,
    kind: str = "gray",
    token: str | None = None,
    during=None,
    machine_ids: list[str] | None = None,
) -> LoadResult:
    """``n`` requests over ``concurrency`` connections, request i from machine ``machine_ids[i]`` (default m0..m3);
    ``during(result)`` (async) runs while they are in flight."""
    return asyncio.run(_drive(url, images, n, concurrency, kind, token, during, machine_ids))
