"""Report files (Evidently drift reports, evaluation reports) as the workbench serves them: only files under the
reports folder of AOI_HOME, never a path that leaves it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import HTTPException

from aoi.settings import Settings


def report_href(settings: Settings, path: str | None) -> str | None:
    """The workbench link of a report file the catalog recorded (None when it is not under the reports folder)."""
    if not path:
        return None
    root = settings.reports_dir.resolve()
    try:
        relative = Path(path).resolve().relative_to(root)
    except ValueError:
        return None
    return "/reports/" + quote(relative.as_posix())


def report_file(settings: Settings, relative: str) -> Path:
    """The file under the reports folder that ``relative`` names; refuses anything that would leave it (``..``,
    an absolute path, a link pointing out) and anything that is not a file."""
    root = settings.reports_dir.resolve()
    if not relative or "\x00" in relative or Path(relative).is_absolute() or ".." in Path(relative).parts:
        raise HTTPException(404, "no such report")
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise HTTPException(404, "no such report")
    return target
