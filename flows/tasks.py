"""One way to make a flow step a Prefect task: no result cache (the catalog is the state; a cached result would
skip a step whose inputs changed in the database), and retries that wait 1 s, 5 s, 15 s between tries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

RETRY_DELAYS_S = (1, 5, 15)


def step(
    fn: Callable[..., Any], name: str, retries: int = 0, retry_condition_fn: Callable[..., bool] | None = None
) -> Any:
    """``fn`` as the task ``name``; ``retries`` for the steps a database or file-system hiccup may fail."""
    if retries > len(RETRY_DELAYS_S):
        raise ValueError(f"at most {len(RETRY_DELAYS_S)} retries")
    return task(
        name=name,
        cache_policy=NO_CACHE,
        retries=retries,
        retry_delay_seconds=list(RETRY_DELAYS_S[:retries]) if retries else None,
        retry_condition_fn=retry_condition_fn,
    )(fn)
