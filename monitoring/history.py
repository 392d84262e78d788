"""Drift history: every drift check's Evidently run in a local Evidently workspace (one project per kind), so that
``evidently ui --workspace AOI_HOME/monitoring/evidently`` shows the checks over time; and the retention of the
HTML reports, which are large (about 4 MB each) and one per check and flagged machine."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import DriftCheck
from aoi.settings import Settings

PROJECT = "aoi drift: {kind}"


def workspace_dir(settings: Settings) -> Path:
    return settings.home / "monitoring" / "evidently"


def workspace(settings: Settings):
    os.environ.setdefault("DO_NOT_TRACK", "1")  # no usage telemetry from a factory network
    from evidently.ui.workspace import Workspace

    path = workspace_dir(settings)
    path.mkdir(parents=True, exist_ok=True)
    return Workspace(str(path))


def project_of(ws, kind: str):
    """The kind's project, created on its first check."""
    name = PROJECT.format(kind=kind)
    found = ws.search_project(name)
    if found:
        return found[0]
    project = ws.create_project(
        name, description=f"Drift checks of the production {kind} model's answers (aoi monitor)"
    )
    project.save()
    return project


def add_check(settings: Settings, kind: str, snapshot, name: str) -> dict:
    """Save one check's Evidently run in the kind's project; returns where it went."""
    ws = workspace(settings)
    project = project_of(ws, kind)
    ref = ws.add_run(project.id, snapshot, include_data=False, name=name)
    return {"workspace": str(workspace_dir(settings)), "project_id": str(project.id), "snapshot_id": str(ref.id)}


def runs(settings: Settings, kind: str) -> list[str]:
    """The snapshot ids the workspace holds for a kind (empty when it has none)."""
    if not workspace_dir(settings).is_dir():
        return []
    ws = workspace(settings)
    found = ws.search_project(PROJECT.format(kind=kind))
    return [str(s) for s in ws.list_runs(found[0].id)] if found else []


_REPORT = re.compile(r"^drift-(?P<kind>[A-Za-z0-9_]+)-\d{8}T\d{6}-.+\.html$")


def linked_reports(check: DriftCheck) -> set[Path]:
    """The HTML files a stored check links: the whole window's and each flagged machine's."""
    paths = [check.report_path, *((m or {}).get("report") for m in (check.machines or {}).values())]
    return {Path(p).resolve() for p in paths if p}


def prune_reports(settings: Settings, kind: str) -> list[str]:
    """Remove the kind's HTML drift reports beyond ``report_retention``: the reports of the newest that many checks
    stay; any other report of the kind written before the oldest of them goes (one written since belongs to a
    check still running). The removed reports' checks keep their rows; their links then answer 404."""
    keep_checks = settings.monitoring.report_retention
    with db.session(settings.catalog_url) as s:
        newest = s.exec(
            select(DriftCheck)
            .where(DriftCheck.kind == kind)
            .order_by(col(DriftCheck.created_at).desc(), col(DriftCheck.id).desc())
            .limit(keep_checks)
        ).all()
    if len(newest) < keep_checks:
        return []
    kept = set().union(*(linked_reports(c) for c in newest))
    oldest_kept = min(c.created_at if c.created_at.tzinfo else c.created_at.replace(tzinfo=UTC) for c in newest)
    folder = settings.reports_dir / "monitoring"
    removed = []
    for path in sorted(folder.glob(f"drift-{kind}-*.html")) if folder.is_dir() else []:
        match = _REPORT.match(path.name)
        if not match or match["kind"] != kind or path.resolve() in kept:
            continue
        if _written(path) >= oldest_kept:
            continue
        path.unlink(missing_ok=True)
        removed.append(str(path))
    return removed


def _written(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
