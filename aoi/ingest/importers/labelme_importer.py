"""``labelme``: a zip (or folder) of images with labelme JSON files; every shape's bounding box is cropped
into a classification image labelled by the shape's label. An image embedded as ``imageData`` is used when
the file named by ``imagePath`` is not in the archive.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

from aoi.ingest.candidate import BadInput, Candidate
from aoi.ingest.crops import SourceImages
from aoi.ingest.importers.annotated import Annotation, bounding_box, crop_candidates, resolve_member
from aoi.ingest.importers.base import Discovery, ImportContext, is_image_name
from aoi.ingest.readers import open_container


def discover(path: Path, ctx: ImportContext) -> Discovery:
    container = open_container(path, ctx.limits)
    found = Discovery(candidates=[], containers=[container])
    embedded: dict[str, bytes] = {}

    def read(name: str) -> bytes:
        try:
            return container.read(name)
        except (BadInput, KeyError):
            if name in embedded:
                return embedded[name]
            raise BadInput(f"image {name} named by the annotation is not in the archive") from None

    sources = SourceImages(read)
    for member in container.members():
        if member.problem:
            found.candidates.append(Candidate(file=member.name, origin=container.origin(member.name), problem=member.problem))
            continue
        if not member.name.lower().endswith(".json"):
            if not is_image_name(member.name):
                found.skipped.append(member.name)
            continue
        try:
            doc = json.loads(container.read(member.name))
            image = resolve_member(member.name, str(doc["imagePath"]))
            if doc.get("imageData"):
                embedded[image] = base64.b64decode(doc["imageData"], validate=False)
            annotations = [
                Annotation(image, str(shape["label"]), bounding_box(shape["points"])) for shape in doc.get("shapes", [])
            ]
        except (BadInput, ValueError, KeyError, TypeError, IndexError, binascii.Error) as err:
            reason = f"not a labelme annotation: {type(err).__name__}: {err}"
            found.candidates.append(Candidate(file=member.name, origin=container.origin(member.name), problem=reason))
            continue
        found.candidates += crop_candidates(annotations, member.name, container.origin, sources, ctx)
    return found
