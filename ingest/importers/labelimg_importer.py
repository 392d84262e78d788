"""``labelimg``: a zip (or folder) of images with LabelImg (Pascal VOC XML) files; every ``<object>`` box is
cropped into a classification image labelled by its ``<name>``. XML is parsed with defusedxml (no entity
expansion bombs).
"""

from __future__ import annotations

from pathlib import Path

from defusedxml import ElementTree

from ingest.importers.annotated import Annotation, discover_annotated, resolve_member
from ingest.importers.base import Discovery, ImportContext


def parse_voc(name: str, data: bytes, embedded: dict[str, bytes]) -> list[Annotation]:
    root = ElementTree.fromstring(data)
    filename = root.findtext("filename") or Path(root.findtext("path") or "").name
    if not filename:
        raise ValueError("no <filename> or <path>")
    image = resolve_member(name, filename)
    out = []
    for obj in root.iter("object"):
        box = obj.find("bndbox")
        if box is None:
            raise ValueError("an <object> has no <bndbox>")
        xmin, ymin, xmax, ymax = (float(box.findtext(tag)) for tag in ("xmin", "ymin", "xmax", "ymax"))
        out.append(Annotation(image, (obj.findtext("name") or "").strip(), (xmin, ymin, xmax, ymax)))
    return out


def discover(path: Path, ctx: ImportContext) -> Discovery:
    return discover_annotated(path, ctx, ".xml", parse_voc, "Pascal VOC")
