"""The fixed choices of the CLI's options, as enums so that ``--help`` lists them and Click refuses anything else
(one line, exit code 2). Their values are the words the JSON output and the catalog use."""

from __future__ import annotations

from enum import StrEnum

import typer

from aoi.catalog.models import ImageSource as Source
from aoi.catalog.models import ImageStatus as Status


class Kind(StrEnum):
    """A model's kind: the source it classifies."""

    gray = "gray"
    color = "color"


class Format(StrEnum):
    """Input formats of `aoi ingest` (ingest.importers.FORMATS)."""

    folder = "folder"
    deeppcb = "deeppcb"
    labelme = "labelme"
    labelimg = "labelimg"
    csv = "csv"


class ExportFormat(StrEnum):
    """File formats of `aoi export` (export.exports.FORMATS)."""

    onnx = "onnx"


class Arch(StrEnum):
    """Classifier architectures (training.model.ARCHITECTURES)."""

    resnet18 = "resnet18"
    mobilenet_v3_small = "mobilenet_v3_small"
    efficientnet_b0 = "efficientnet_b0"


class Split(StrEnum):
    train = "train"
    valid = "valid"
    test = "test"


class GroupBy(StrEnum):
    source_image = "source_image"
    none = "none"


class Reference(StrEnum):
    """What the drift study compares against."""

    line = "line"
    dataset = "dataset"


def value(choice: StrEnum | None) -> str | None:
    """The plain string a flow or a query takes (None stays None)."""
    return None if choice is None else choice.value


def positive(number: float | None) -> float | None:
    """An option's callback: a number above zero (Click's ranges have no open bound in Typer)."""
    if number is not None and number <= 0:
        raise typer.BadParameter(f"{number:g} is not above 0")
    return number


__all__ = ["Arch", "Format", "GroupBy", "Kind", "Reference", "Source", "Split", "Status", "positive", "value"]
