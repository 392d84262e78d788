"""Shared by the labelme and LabelImg importers: boxes on images inside a container -> crop candidates."""

from __future__ import annotations

import binascii
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from xml.etree.ElementTree import ParseError

from defusedxml.common import DefusedXmlException

from ingest.candidate import BadInput, Candidate
from ingest.crops import SourceImages, crop_bytes_bound
from ingest.importers.base import Discovery, ImportContext, is_image_name, map_label
from ingest.readers import Missing, Refused, inside, open_container

# What a malformed annotation file raises while being parsed (JSON, XML, missing keys, bad numbers, base64).
ANNOTATION_ERRORS = (
    BadInput,
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    AttributeError,
    OverflowError,
    RecursionError,
    binascii.Error,
    ParseError,
    DefusedXmlException,
)


@dataclass(frozen=True)
class Annotation:
    image: str  # member name of the image inside the container
    raw_label: str
    box: tuple[float, float, float, float]


Parser = Callable[[str, bytes, dict[str, bytes]], list["Annotation"]]


def bounding_box(points) -> tuple[float, float, float, float]:
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def resolve_member(annotation_file: str, image_ref: str) -> str:
    """The image's member name: ``image_ref`` is relative to the annotation file's folder.

    A reference never leaves the container: an absolute one (``/x``, ``C:\\x``) or one whose ``..`` climb
    above the container's root raises ``BadInput`` naming the rule, and nothing is read for it.
    """
    return inside(image_ref, str(PurePosixPath(annotation_file).parent))


def discover_annotated(path: Path, ctx: ImportContext, suffix: str, parse: Parser, kind: str) -> Discovery:
    """Walk a zip or folder: every ``suffix`` file is parsed into boxes and each box becomes a crop candidate.

    ``parse(member, data, embedded)`` returns the annotations of one file and may add images carried inside
    the annotation itself (labelme's ``imageData``) to ``embedded``, used when the archive lacks the image.
    A file that does not parse is quarantined with the parser's reason.
    """
    container = open_container(path, ctx.limits)
    found = Discovery(candidates=[], containers=[container])
    embedded: dict[str, bytes] = {}

    def read(name: str) -> bytes:
        try:
            return container.read(name)
        except (Missing, KeyError):  # absent, not refused: a link or an escaping name is never replaced
            if name in embedded:
                return embedded[name]
            raise BadInput(f"image {name} named by the annotation is not in the archive") from None

    sources = SourceImages(read, ctx.limits)
    for member in container.members():
        if member.problem:
            found.candidates.append(
                Candidate(file=member.name, origin=container.origin(member.name), problem=member.problem)
            )
            continue
        if not member.name.lower().endswith(suffix):
            if not is_image_name(member.name):
                found.skipped.append(member.name)
            continue
        try:
            data = container.read(member.name)
        except BadInput as err:
            found.candidates.append(Candidate(file=member.name, origin=container.origin(member.name), problem=str(err)))
            continue
        try:
            annotations = parse(member.name, data, embedded)
        except Refused as err:
            found.candidates.append(Candidate(file=member.name, origin=container.origin(member.name), problem=str(err)))
            continue
        except ANNOTATION_ERRORS as err:
            reason = f"not a {kind} annotation: {type(err).__name__}: {err}"
            found.candidates.append(Candidate(file=member.name, origin=container.origin(member.name), problem=reason))
            continue
        found.candidates += crop_candidates(annotations, member.name, container.origin, sources, ctx)
    return found


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
            size=crop_bytes_bound(ann.box, ctx.limits.crop_size, ctx.limits.crop_margin),
        )
        candidate.label, candidate.problem = map_label(ann.raw_label, ctx.labels)
        if candidate.problem is None:
            candidate.load = partial(
                sources.cut, candidate, ann.image, ann.box, ctx.limits.crop_size, ctx.limits.crop_margin
            )
        out.append(candidate)
    if not annotations:
        out.append(Candidate(file=source_file, origin=origin_of(source_file), problem="annotation has no boxes"))
    return out
