"""Ingest flow: discover -> hash and de-duplicate -> decode and measure -> store -> catalog, chunk by chunk.

Each chunk commits on its own, so a run killed half-way and run again resumes the same batch and finishes
with no duplicate rows (unique content hash) and no orphan files (stored bytes get their row on the re-run).
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from tqdm import tqdm

from aoi.settings import get_settings
from flows.tasks import step
from ingest import pipeline, steps
from ingest.candidate import ArchiveRefused

# Inputs are bytes and closures: never cached or persisted. Catalog and store writes are idempotent, so
# retrying them after a transient failure (a locked database, a network file system hiccup) is safe.
open_batch = step(steps.open_batch, "open-batch", retries=2)
discover = step(steps.discover, "discover")
hash_and_dedupe = step(steps.hash_and_dedupe, "hash-and-dedupe", retries=2)
decode_and_measure = step(steps.decode_and_measure, "decode-and-measure")
store = step(steps.store, "store", retries=2)
catalog = step(steps.catalog, "catalog", retries=3)
refuse = step(steps.refuse, "refuse-input")
fail = step(steps.fail, "fail-batch")
finish = step(steps.finish, "finish-batch", retries=2)


@flow(name="ingest", log_prints=True)
def ingest(
    path: str,
    format: str = "folder",
    source: str | None = None,
    machine_id: str | None = None,
    part_no: str | None = None,
    progress: bool = True,
    reference: bool = False,
) -> steps.BatchResult:
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
        for chunk in pipeline.chunks(found.candidates, settings.ingest.chunk_size, settings.ingest.chunk_max_bytes):
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
        result.added,
        result.duplicates,
        result.quarantined,
    )
    return result
