"""The public data sets the demo and the integration tests use, found under ``AOI_DATASETS_DIR``.

DeepPCB can be downloaded (``aoi public fetch deeppcb``); the PKU colour crops have to be put there by hand.
Neither set carries machine identifiers or camera parameters: anything per-machine built on them is simulated.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import httpx

from aoi.settings import Settings
from ingest.readers import ZipContainer
from training.params import TrainParams


class DatasetUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class PublicSet:
    name: str
    folder: str
    format: str  # the importer that reads it
    source: str  # gray (AOI) or color (VRS)
    marker: str  # a path inside the folder that proves it is there
    how_to_get: str


SETS = {
    "pku-pcb-roi": PublicSet(
        "pku-pcb-roi",
        "pku-pcb-roi",
        "folder",
        "color",
        "Spur",
        "copy the PKU PCB colour defect crops, one folder per class (Missing_hole, Mouse_bite, Open_circuit, "
        "Short, Spur, Spurious_copper), into {path}",
    ),
    "deeppcb": PublicSet(
        "deeppcb",
        "DeepPCB",
        "deeppcb",
        "gray",
        "PCBData",
        "run `aoi public fetch deeppcb` with network access, or download the public DeepPCB repository's "
        "archive ({url}) and unpack it so that {path}/PCBData exists",
    ),
}
# The dataset versions `aoi demo` builds from them. Versions are immutable, so the demo runs once per AOI_HOME;
# kept here, away from flows/, so that the refusal is checked without importing Prefect (which freezes its
# settings at import, before the demo has pointed it at the local server).
DEMO_DATASETS = {"gray": "deeppcb-v1", "color": "pku-v1"}
# The colour tone spec the demo derives from the PKU set: per class at mean ± 2.5σ. One band over all classes took
# a class's content for camera tone: at ± 1.5σ it kept 12% of MISSING_HOLE (a hole brightens a crop); per class at
# ± 1.5σ every class keeps only about 70% (five metrics, each cutting 13% of a normal spread); per class at ± 2.5σ
# every class keeps 93-95% (README, "Class-aware specs"; tests/integration/test_class_aware_specs.py).
DEMO_COLOR_SPEC = {"k": 2.5, "per_class": True}
COLOR_SPEC = "pku-color-tone"  # the name of that spec
PKU_BLIND_BOARDS = r"^(11|12)_"  # PKU file names start with the board number: two boards held out
DEMO_LINE_CAPTURES = 100  # per simulated machine
# Small enough for 2 CPU cores in a few minutes per model; `aoi train` takes bigger settings. Gray test accuracy
# grows with epochs (2 cores, bfloat16 steps, 600/class, batch 32): 6 epochs 95%, 9 epochs 96.6% in ~240 s,
# 20 epochs 97.9% in ~490 s. The colour set, with fewer and more distinct classes, reaches 94-98% with 3 x 300.
DEMO_TRAINING = {
    "gray": TrainParams(dataset=DEMO_DATASETS["gray"], epochs=9, per_class=600, batch_size=32, lr=2e-3),
    # Tone jitter: the gate refuses a colour model that loses over 5 points when one channel is off by 10%
    # (docs/domain.md#joint-tone).
    "color": TrainParams(dataset=DEMO_DATASETS["color"], epochs=3, per_class=300, batch_size=64, tone_jitter=0.12),
}


def path_of(settings: Settings, name: str) -> Path:
    return settings.datasets_dir / SETS[name].folder


def status(settings: Settings) -> list[dict]:
    out = []
    for name, spec in SETS.items():
        path = path_of(settings, name)
        present = (path / spec.marker).exists()
        out.append(
            {
                "name": name,
                "path": str(path),
                "present": present,
                "format": spec.format,
                "source": spec.source,
                "how_to_get": None if present else spec.how_to_get.format(path=path, url=settings.deeppcb_archive_url),
            }
        )
    return out


def require(settings: Settings, name: str) -> Path:
    path = path_of(settings, name)
    if not (path / SETS[name].marker).exists():
        spec = SETS[name]
        raise DatasetUnavailable(
            f"{name} not found at {path}: " + spec.how_to_get.format(path=path, url=settings.deeppcb_archive_url)
        )
    return path


def fetch_deeppcb(settings: Settings, timeout_s: float = 60.0) -> Path:
    """Download and unpack DeepPCB into ``AOI_DATASETS_DIR/DeepPCB`` (no-op when it is there)."""
    target = path_of(settings, "deeppcb")
    if (target / "PCBData").exists():
        return target
    settings.datasets_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.datasets_dir, prefix=".fetch-") as tmp:
        archive = Path(tmp) / "deeppcb.zip"
        try:
            with httpx.stream("GET", settings.deeppcb_archive_url, follow_redirects=True, timeout=timeout_s) as r:
                r.raise_for_status()
                with open(archive, "wb") as fh:
                    for block in r.iter_bytes(1 << 20):
                        fh.write(block)
        except httpx.HTTPError as err:
            raise DatasetUnavailable(
                f"could not download DeepPCB from {settings.deeppcb_archive_url} ({type(err).__name__}: {err}). "
                f"Offline? " + SETS["deeppcb"].how_to_get.format(path=target, url=settings.deeppcb_archive_url)
            ) from None
        unpacked = Path(tmp) / "unpacked"
        _unpack(archive, unpacked, settings)
        roots = [p.parent for p in unpacked.rglob("PCBData") if p.is_dir()]
        if not roots:
            raise DatasetUnavailable("the downloaded archive holds no PCBData folder")
        shutil.move(str(roots[0]), str(target))
    return target


def _unpack(archive: Path, into: Path, settings: Settings) -> None:
    """Extract with the same bomb and path checks as ingest: members that escape are skipped."""
    limits = settings.ingest.model_copy(update={"max_file_bytes": settings.ingest.zip_max_total_bytes})
    container = ZipContainer(archive, limits)
    try:
        for member in container.members():
            if member.problem:
                continue
            dest = into / PurePosixPath(member.name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(container.read(member.name))
    except zipfile.BadZipFile as err:
        raise DatasetUnavailable(f"downloaded archive is damaged: {err}") from None
    finally:
        container.close()
