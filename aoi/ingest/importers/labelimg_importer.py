"""``labelimg``: a zip (or folder) of images with LabelImg (Pascal VOC XML) files; every ``<object>`` box is
cropped into a classification image labelled by its ``<name>``. XML is parsed with defusedxml (no entity
expansion bombs).
"""

from __future__ import annotations

from pathlib import Path

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from aoi.ingest.candidate import BadInput, Candidate
from aoi.ingest.crops import SourceImages
from aoi.ingest.importers.annotated import Annotation, crop_candidates, resolve_member
from aoi.ingest.importers.base import Discovery, ImportContext, is_image_name
from aoi.ingest.readers import open_container


def parse_voc(xml: bytes, xml_name: str) -> list[Annotation]:
    root = ElementTree.fromstring(xml)
    filename = root.findtext("filename") or Path(root.findtext("path") or "").name
    if not filename:
        raise ValueError("no <filename> or <path>")
    image = resolve_member(xml_name, filename)
    out = []
    for obj in root.iter("object"):
        box = obj.find("bndbox")
        if box is None:
            raise ValueError("an <object> has no <bndbox>")
        coords = tuple(float(box.findtext(tag)) for tag in ("xmin", "ymin", "xmax", "ymax"))
        out.append(Annotation(image, (obj.findtext("name") or "").strip(), coords))
    return out


def discover(path: Path, ctx: ImportContext) -> Discovery:
    container = open_container(path, ctx.limits)
    found = Discovery(candidates=[], containers=[container])
    sources = SourceImages(container.read)
    for member in container.members():
        if member.problem:
            found.candidates.append(Candidate(file=member.name, origin=container.origin(member.name), problem=member.problem))
            continue
        if not member.name.lower().endswith(".xml"):
            if not is_image_name(member.name):
                found.skipped.append(member.name)
            continue
        try:
            annotations = parse_voc(container.read(member.name), member.name)
        except (BadInput, ValueError, TypeError, ElementTree.ParseError, DefusedXmlException) as err:
            reason = f"not a Pascal VOC annotation: {type(err).__name__}: {err}"
            found.candidates.append(Candidate(file=member.name, origin=container.origin(member.name), problem=reason))
            continue
        found.candidates += crop_candidates(annotations, member.name, container.origin, sources, ctx)
    return found
