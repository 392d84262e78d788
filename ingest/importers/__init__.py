"""Importers: one small module per input layout, each returning candidates for the one ingest pipeline.

Each module has ``discover(path, ctx) -> Discovery``. ``IMPORTERS`` maps the CLI's ``--format`` to it.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from ingest.importers.base import Discovery, ImportContext

FORMATS = ("folder", "deeppcb", "labelme", "labelimg", "csv")


def get_importer(fmt: str) -> Callable[..., Discovery]:
    """The ``discover`` function of format ``fmt`` (imported on demand)."""

    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    module = import_module(f"ingest.importers.{fmt}_importer")
    return module.discover


__all__ = ["FORMATS", "Discovery", "ImportContext", "get_importer"]
