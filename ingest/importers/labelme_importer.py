"""``labelme``: a zip (or folder) of images with labelme JSON files; every shape's bounding box is cropped
into a classification image labelled by the shape's label. An image embedded as ``imageData`` is used when
the file named by ``imagePath`` is not in the archive.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from ingest.importers.annotated import Annotation, bounding_box, discover_annotated, resolve_member
from ingest.importers.base import Discovery, ImportContext


def parse_labelme(name: str, data: bytes, embedded: dict[str, bytes]) -> list[Annotation]:
    doc = json.loads(data)
    image = resolve_member(name, str(doc["imagePath"]))
    if doc.get("imageData"):
        embedded[image] = base64.b64decode(doc["imageData"], validate=False)
    return [Annotation(image, str(shape["label"]), bounding_box(shape["points"])) for shape in doc.get("shapes", [])]


def discover(path: Path, ctx: ImportContext) -> Discovery:
    return discover_annotated(path, ctx, ".json", parse_labelme, "labelme")
