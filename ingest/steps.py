"""The ingest steps as the flow calls them: one call each, settings in, plain results out."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from aoi.labels import LabelMap, small_labels
from aoi.settings import Settings
from aoi.store import ImageStore
from ingest import pipeline, records
from ingest.candidate import Candidate
from ingest.importers import Discovery, ImportContext, get_importer
from ingest.pipeline import Measured, Rejected


@dataclass
class Tally:
    """What one run did, summed over its chunks (the batch row holds the totals over every attempt)."""

    discovered: int = 0
    skipped: int = 0
    added: int = 0
    duplicates: int = 0
    quarantined: int = 0
    by_label: Counter = field(default_factory=Counter)

    def add(self, chunk: dict) -> None:
        self.added += chunk["added"]
        self.duplicates += chunk["duplicates"]
        self.quarantined += chunk["quarantined"]
        self.by_label.update(chunk["by_label"])


@dataclass
class Hashed:
    fresh: list[pipeline.Loaded]
    duplicates: int
    rejected: list[Rejected]
    repair: list[pipeline.Loaded] = field(default_factory=list)  # catalogued, but the file is gone


@dataclass
class Checked:
    measured: list[Measured]
    rejected: list[Rejected]
    repair: list[pipeline.Loaded] = field(default_factory=list)


def open_batch(settings: Settings, path: str, fmt: str, options: dict, flow_run_id: str | None) -> int:
    for folder in (settings.store_dir, settings.quarantine_dir):
        ImageStore(folder).sweep_temp()
    return records.open_batch(settings.catalog_url, fmt, str(Path(path).absolute()), options, flow_run_id)


def discover(settings: Settings, path: str, fmt: str) -> Discovery:
    ctx = ImportContext(limits=settings.ingest, labels=LabelMap.load(settings.ingest.label_map))
    return get_importer(fmt)(Path(path), ctx)


def hash_and_dedupe(settings: Settings, chunk: list[Candidate]) -> Hashed:
    loaded, rejected = pipeline.read_and_hash(chunk)
    known = records.known_labels(settings.catalog_url, [item.sha256 for item in loaded])
    fresh, duplicates, conflicts = pipeline.drop_known(loaded, known)
    # Re-ingesting heals the store: a catalogued image whose file was lost gets its bytes back.
    store = ImageStore(settings.store_dir)
    repair = [item for item in duplicates if not store.has(item.sha256)]
    return Hashed(fresh, len(duplicates), rejected + conflicts, repair)


def decode_and_measure(settings: Settings, hashed: Hashed) -> Checked:
    measured, bad = pipeline.decode_and_measure(hashed.fresh, settings)
    return Checked(measured, hashed.rejected + bad, hashed.repair)


def store(settings: Settings, checked: Checked) -> Checked:
    images = ImageStore(settings.store_dir, fsync=settings.store_fsync)
    pipeline.store_images(checked.measured, images)
    images.put_many((item.data, item.sha256) for item in checked.repair)
    pipeline.keep_rejected(checked.rejected, ImageStore(settings.quarantine_dir, fsync=settings.store_fsync))
    return checked


def catalog(settings: Settings, batch_id: int, checked: Checked, hashed: Hashed, layout_source: str | None) -> dict:
    written = records.record_chunk(settings.catalog_url, batch_id, checked.measured, checked.rejected, layout_source)
    # Content that lost a race to another writer between the hash check and the insert is a duplicate too.
    raced = len(checked.measured) - written["added"]
    return {
        "added": written["added"],
        "by_label": written["by_label"],
        "duplicates": hashed.duplicates + raced,
        "quarantined": len(checked.rejected),
    }


class BatchResult(BaseModel):
    """What the ingest flow returns (``aoi ingest --json``): this run's counts and the batch's totals so far."""

    model_config = ConfigDict(frozen=True)

    batch_id: int
    status: str
    format: str
    input: str
    discovered: int
    skipped: int
    added: int
    duplicates: int
    quarantined: int
    by_label: dict[str, int]
    batch_totals: dict
    refused: str | None = None
    warnings: list[str] = []

    def as_dict(self) -> dict:
        return self.model_dump()


def refuse(settings: Settings, batch_id: int, path: str, reason: str) -> BatchResult:
    records.refuse_input(settings.catalog_url, batch_id, Path(path).name, str(Path(path).absolute()), reason)
    batch = records.close_batch(settings.catalog_url, batch_id, {}, error=reason)
    return _summary(batch, Tally(quarantined=1), refused=reason)


def finish(settings: Settings, batch_id: int, tally: Tally, found: Discovery) -> BatchResult:
    found.close()
    batch = records.close_batch(
        settings.catalog_url, batch_id, {"discovered": tally.discovered, "duplicates": tally.duplicates}
    )
    warnings = small_labels(records.label_totals(settings.catalog_url, batch_id), settings.ingest.min_label_images)
    return _summary(batch, tally, warnings=warnings)


def fail(settings: Settings, batch_id: int, tally: Tally, found: Discovery | None, error: str) -> None:
    if found is not None:
        found.close()
    records.close_batch(
        settings.catalog_url, batch_id, {"discovered": tally.discovered, "duplicates": tally.duplicates}, error=error
    )


def _summary(batch, tally: Tally, refused: str | None = None, warnings: list[str] | None = None) -> BatchResult:
    return BatchResult(
        batch_id=batch.id,
        status=batch.status,
        format=batch.format,
        input=batch.input_path,
        discovered=tally.discovered,
        skipped=tally.skipped,
        added=tally.added,
        duplicates=tally.duplicates,
        quarantined=tally.quarantined,
        by_label=dict(sorted(tally.by_label.items())),
        batch_totals={"added": batch.added, "quarantined": batch.quarantined, "by_label": batch.by_label},
        refused=refused,
        warnings=warnings or [],
    )


def confirmed_answers(settings: Settings, kind: str) -> BatchResult | None:
    """The retrain flow's batch of answers confirmed in the review queue since the last one (``ingest/line.py``);
    None when there are none."""
    from ingest.line import confirmed_batch

    return confirmed_batch(settings, kind)
