"""Ingest flow: discover -> hash and de-duplicate -> decode and measure -> store -> catalog, chunk by chunk.

Each chunk commits on its own, so a run killed half-way and run again resumes the same batch and finishes
with no duplicate rows (unique content hash) and no orphan files (stored bytes get their row on the re-run).
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from tqdm import tqdm

from aoi.settings import get_settings
from ingest import steps
from ingest.candidate import ArchiveRefused

# Inputs are bytes and closures: never cached or persisted. Catalog and store writes are idempotent, so
# retrying them after a transient failure (a locked database, a network file system hiccup) is safe.
open_batch = task(name="open-batch", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5])(steps.open_batch)
discover = task(name="discover", cache_policy=NO_CACHE)(steps.discover)
hash_and_dedupe = task(name="hash-and-dedupe", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5])(
    steps.hash_and_dedupe
)
decode_and_measure = task(name="decode-and-measure", cache_policy=NO_CACHE)(steps.decode_and_measure)
store = task(name="store", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5])(steps.store)
catalog = task(name="catalog", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[1, 5, 15])(steps.catalog)
refuse = task(name="refuse-input", cache_policy=NO_CACHE)(steps.refuse)
fail = task(name="fail-batch", cache_policy=NO_CACHE)(steps.fail)
finish = task(name="finish-batch", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[1, 5])(steps.finish)


@flow(name="ingest", log_prints=True)
def ingest(
    path: str,
    format: str = "folder",
    source: str | None = None,
    machine_id: str | None = None,
    part_no: str | None = None,
    progress: bool = True,
    reference: bool = False,
) -> dict:
    settings = get_settings()
    options = {
        "source": source,
        "machine_id": machine_id,
        "part_no": part_no,
        **({"reference": True} if reference else {}),
    }
    batch_id = open_batch(settings, path, format, options, str(flow_run.id) if flow_run.id else None)
    tally, found, bar = steps.Tally(), None, None
    try:
        found = discover(settings, path, format)
        tally = steps.Tally(discovered=len(found.candidates), skipped=len(found.skipped))
        bar = tqdm(total=len(found.candidates), desc=f"ingest {format}", unit="img", disable=not progress)
        for chunk in steps.chunks(found.candidates, settings.ingest.chunk_size, settings.ingest.chunk_max_bytes):
            hashed = hash_and_dedupe(settings, chunk)
            checked = decode_and_measure(settings, hashed)
            checked = store(settings, checked)
            tally.add(catalog(settings, batch_id, checked, hashed, found.default_source))
            bar.update(len(chunk))
    except ArchiveRefused as err:
        get_run_logger().error("refused %s: %s", path, err)
        return refuse(settings, batch_id, path, str(err))
    except BaseException as err:
        fail(settings, batch_id, tally, found, repr(err))  # re-running the same command resumes the batch
        raise
    finally:
        if bar is not None:
            bar.close()
    result = finish(settings, batch_id, tally, found)
    get_run_logger().info(
        "batch %s: %s added, %s duplicates, %s quarantined",
        batch_id,
        result["added"],
        result["duplicates"],
        result["quarantined"],
    )
    return result
