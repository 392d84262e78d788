"""The one ingest path, as pure steps over a chunk of candidates.

discover (importers) -> read and hash -> drop known content -> decode and measure -> store -> catalog.
Each step returns what passed and what was rejected, with a reason; nothing here knows about Prefect.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from aoi.image_metrics import BadImage, ImageMetrics, measure
from aoi.settings import IngestSettings, Settings
from aoi.store import ImageStore, sha256_of
from ingest.candidate import BadInput, Candidate


@dataclass
class Loaded:
    candidate: Candidate
    data: bytes
    sha256: str


@dataclass
class Measured:
    candidate: Candidate
    data: bytes
    sha256: str
    metrics: ImageMetrics


@dataclass
class Rejected:
    candidate: Candidate
    reason: str
    data: bytes | None = None  # kept in the quarantine store when readable


def read_and_hash(candidates: Iterable[Candidate]) -> tuple[list[Loaded], list[Rejected]]:
    loaded, rejected = [], []
    for candidate in candidates:
        problem = candidate.problem or candidate.metadata_problem()
        if problem or candidate.load is None:
            rejected.append(Rejected(candidate, problem or "nothing to read"))
            continue
        try:
            data = candidate.load()
        except (BadInput, BadImage) as err:
            rejected.append(Rejected(candidate, str(err)))
            continue
        except Exception as err:  # an importer bug or I/O surprise must not sink the batch
            rejected.append(Rejected(candidate, f"unreadable: {type(err).__name__}: {err}"))
            continue
        loaded.append(Loaded(candidate, data, sha256_of(data)))
    return loaded, rejected


def drop_known(loaded: list[Loaded], known: dict[str, str | None]) -> tuple[list[Loaded], list[Loaded], list[Rejected]]:
    """(new content, duplicates, label conflicts) against ``known`` (digest -> label already catalogued)
    and against what came earlier in the same chunk.

    The same bytes under another label is not a harmless duplicate: it is a labelling error (e.g. a "defect"
    crop identical to its defect-free template window), so it goes to the quarantine with both labels named.
    """
    seen = dict(known)
    fresh, duplicates, conflicts = [], [], []
    for item in loaded:
        label = item.candidate.label
        if item.sha256 not in seen:
            seen[item.sha256] = label
            fresh.append(item)
        elif label is not None and seen[item.sha256] is not None and seen[item.sha256] != label:
            reason = f"label conflict: the same content is already catalogued as {seen[item.sha256]}, not {label}"
            conflicts.append(Rejected(item.candidate, reason, item.data))
        else:
            duplicates.append(item)
    return fresh, duplicates, conflicts


def upload_rule(metrics: ImageMetrics, limits: IngestSettings) -> str | None:
    """Which upload rule of the platform manual the image breaks (smaller than the minimum size, too elongated),
    named with its setting; None when it keeps them all."""
    width, height = metrics.width, metrics.height
    if width < limits.min_width or height < limits.min_height:
        return (
            f"upload rule min size: {width}x{height} px is under the minimum {limits.min_width}x{limits.min_height}"
            " px (AOI_INGEST__MIN_WIDTH, AOI_INGEST__MIN_HEIGHT)"
        )
    ratio = max(width, height) / min(width, height)
    if ratio > limits.max_aspect_ratio:
        return (
            f"upload rule max aspect ratio: {width}x{height} px is {ratio:.1f}:1, over "
            f"{limits.max_aspect_ratio:g}:1 (AOI_INGEST__MAX_ASPECT_RATIO)"
        )
    return None


def decode_and_measure(loaded: list[Loaded], settings: Settings) -> tuple[list[Measured], list[Rejected]]:
    limits = settings.ingest
    measured, rejected = [], []
    for item in loaded:
        try:
            metrics = measure(
                item.data,
                max_pixels=limits.max_pixels,
                allowed_modes=limits.allowed_modes,
                min_side=settings.metrics_min_side,
            )
        except BadImage as err:
            rejected.append(Rejected(item.candidate, str(err), item.data))
            continue
        broken = upload_rule(metrics, limits)
        if broken:
            rejected.append(Rejected(item.candidate, broken, item.data))
            continue
        measured.append(Measured(item.candidate, item.data, item.sha256, metrics))
    return measured, rejected


def store_images(measured: list[Measured], store: ImageStore) -> None:
    store.put_many((item.data, item.sha256) for item in measured)


def keep_rejected(rejected: list[Rejected], quarantine: ImageStore) -> None:
    """Bad files' bytes go to the quarantine store, so a person can look at what was refused."""
    quarantine.put_many((item.data, None) for item in rejected if item.data)


def source_of(item: Measured, override: str | None, layout_default: str | None) -> str:
    """gray (AOI) or color (VRS): given, implied by the layout, or from the image mode."""
    return override or layout_default or ("gray" if item.metrics.mode == "L" else "color")


def chunks(candidates: list[Candidate], size: int, max_bytes: int | None = None) -> Iterator[list[Candidate]]:
    """Runs of at most ``size`` candidates whose bytes (``Candidate.size``, known before reading) add up to at
    most ``max_bytes``: a chunk's images are all in memory at once, and one chunk may not hold gigabytes."""
    chunk: list[Candidate] = []
    held = 0
    for candidate in candidates:
        if chunk and (len(chunk) >= size or (max_bytes is not None and held + candidate.size > max_bytes)):
            yield chunk
            chunk, held = [], 0
        chunk.append(candidate)
        held += candidate.size
    if chunk:
        yield chunk
