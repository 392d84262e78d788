"""Shared by the labelme and LabelImg importers: boxes on images inside a container -> crop candidates."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import PurePosixPath

from aoi.ingest.candidate import BadInput, Candidate
from aoi.ingest.crops import SourceImages, check_box, window
from aoi.ingest.importers.base import ImportContext, map_label


@dataclass(frozen=True)
class Annotation:
    image: str  # member name of the image inside the container
    raw_label: str
    box: tuple[float, float, float, float]


def bounding_box(points) -> tuple[float, float, float, float]:
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def resolve_member(annotation_file: str, image_ref: str) -> str:
    """The image's member name: ``image_ref`` is relative to the annotation file's folder."""
    base = PurePosixPath(annotation_file).parent
    parts: list[str] = []
    for part in (base / image_ref.replace("\\", "/")).parts:
        if part == "..":
            if parts:
                parts.pop()
        elif part not in (".", ""):
            parts.append(part)
    return "/".join(parts)


def _cut(sources: SourceImages, candidate: Candidate, image: str, box, crop_size: int, margin: int) -> bytes:
    picture, _ = sources.get(image)
    int_box = (math.floor(box[0]), math.floor(box[1]), math.ceil(box[2]), math.ceil(box[3]))
    problem = check_box(int_box, picture.size)
    if problem:
        raise BadInput(problem)
    data, digest = sources.crop(image, window(int_box, picture.size, crop_size, margin))
    candidate.parent_sha256 = digest
    return data


def crop_candidates(
    annotations: list[Annotation], source_file: str, origin_of, sources: SourceImages, ctx: ImportContext
) -> list[Candidate]:
    out = []
    for index, ann in enumerate(annotations):
        stem = PurePosixPath(ann.image).stem
        candidate = Candidate(
            file=f"{ann.image}#box{index}",
            origin=f"{origin_of(ann.image)}#box{index}",
            group_key=ann.image,
            parent_file=ann.image,
            name=f"{stem}_box{index}.png",
            bbox=",".join(f"{v:g}" for v in ann.box),
        )
        candidate.label, candidate.problem = map_label(ann.raw_label, ctx.labels)
        if candidate.problem is None:
            candidate.load = partial(
                _cut, sources, candidate, ann.image, ann.box, ctx.limits.crop_size, ctx.limits.crop_margin
            )
        out.append(candidate)
    if not annotations:
        out.append(Candidate(file=source_file, origin=origin_of(source_file), problem="annotation has no boxes"))
    return out
