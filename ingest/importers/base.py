"""What every importer receives and returns."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from aoi.labels import LabelMap, UnknownLabel
from aoi.settings import IngestSettings
from ingest.candidate import Candidate
from ingest.readers import Container

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


@dataclass(frozen=True)
class ImportContext:
    limits: IngestSettings
    labels: LabelMap


@dataclass
class Discovery:
    candidates: list[Candidate]
    skipped: list[str] = field(default_factory=list)  # files that are not images nor annotations
    containers: list[Container] = field(default_factory=list)
    default_source: str | None = None  # what the layout implies (DeepPCB: gray); None: from the image mode

    def close(self) -> None:
        for container in self.containers:
            container.close()


def is_image_name(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


def group_of(name: str, pattern: str | None) -> str | None:
    """Group key from a file's stem: ``01_spur_01_roi_3`` -> ``01_spur_01`` with the default pattern."""
    if not pattern:
        return None
    match = re.match(pattern, PurePosixPath(name).stem)
    return match.group("group") if match else None


def map_label(raw: str, labels: LabelMap) -> tuple[str | None, str | None]:
    """(project label, None) or (None, reason)."""
    try:
        return labels.resolve(raw), None
    except UnknownLabel as err:
        return None, str(err)
