"""Drift history: a check's Evidently run lands in the local Evidently workspace (one project per kind), which the
workspace API lists back; the HTML reports beyond the retention are removed, never one a kept check links, and
a removed report's check keeps its row while its link answers 404."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from fastapi import HTTPException
from sqlmodel import select

from aoi.catalog import db
from aoi.catalog.models import DriftCheck, utcnow
from monitoring import history, steps
from monitoring.drift import compare
from tests.monitoring.helpers import T0, dimmed, synthetic
from workbench.reports import report_file


def test_a_check_is_saved_as_a_snapshot_the_workspace_lists_back(configure):
    settings = configure()
    reference, current = synthetic(300, seed=0), dimmed(synthetic(200, seed=1), 0.8)
    assert history.runs(settings, "gray") == []
    snapshot = compare(reference, current, settings.monitoring).snapshot  # the monitor flow's run (test_monitor_flow)
    first = history.add_check(settings, "gray", snapshot, "gray 1")
    second = history.add_check(settings, "gray", snapshot, "gray 2")
    assert set(history.runs(settings, "gray")) == {first["snapshot_id"], second["snapshot_id"]}
    assert first["project_id"] == second["project_id"], "one project per kind"
    assert history.runs(settings, "color") == []
    ws = history.workspace(settings)
    stored = ws.get_run(first["project_id"], first["snapshot_id"])
    assert stored is not None and stored.name == "gray 1" and stored.metric_results, "the figures, as the UI shows them"
    assert first["workspace"] == str(settings.home / "monitoring" / "evidently")


def _check_with_reports(settings, kind: str, at, n: int) -> tuple[int, list]:
    """A stored check whose report files (the window's and a flagged machine's) were written at ``at``."""
    folder = settings.reports_dir / "monitoring"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"drift-{kind}-{at:%Y%m%dT%H%M%S}-{scope}.html" for scope in ("all", "m2")]
    for path in paths:
        path.write_text("<html>report</html>")
        os.utime(path, (at.timestamp(), at.timestamp()))
    row = DriftCheck(
        kind=kind,
        model_version="v1",
        window_start=T0,
        window_end=T0 + timedelta(hours=1),
        machines={"m2": {"drift": True, "report": str(paths[1])}, "m1": {"drift": False, "report": None}},
        drift=True,
        decision=f"check {n}",
        report_path=str(paths[0]),
        created_at=at + timedelta(seconds=1),
    )
    with db.session(settings.catalog_url) as s:
        s.add(row)
        s.commit()
        return db.saved_id(row), paths


def test_reports_beyond_the_retention_are_removed_and_their_checks_stay(configure):
    settings = configure(MONITORING__REPORT_RETENTION=2)
    start = utcnow() - timedelta(hours=5)
    checks = [_check_with_reports(settings, "gray", start + timedelta(hours=h), h) for h in range(4)]
    other = _check_with_reports(settings, "color", start, 9)  # another kind's reports are its own business
    folder = settings.reports_dir / "monitoring"
    stray = folder / f"drift-gray-{start:%Y%m%dT%H%M%S}-m9.html"  # from a check that never got its row
    stray.write_text("x")
    os.utime(stray, (start.timestamp(), start.timestamp()))
    removed = steps.prune_reports(settings, "gray")
    assert set(removed) == {str(p) for _, paths in checks[:2] for p in paths} | {str(stray)}
    assert all(p.exists() for _, paths in checks[2:] for p in paths)
    assert all(p.exists() for p in other[1])
    with db.session(settings.catalog_url) as s:
        assert len(s.exec(select(DriftCheck).where(DriftCheck.kind == "gray")).all()) == 4
    gone = checks[0][1][0].relative_to(settings.reports_dir).as_posix()
    with pytest.raises(HTTPException) as refused:
        report_file(settings, gone)
    assert refused.value.status_code == 404
    assert report_file(settings, checks[3][1][0].relative_to(settings.reports_dir).as_posix()).is_file()
    assert steps.prune_reports(settings, "gray") == [], "nothing more to remove"


def test_fewer_checks_than_the_retention_remove_nothing(configure):
    settings = configure(MONITORING__REPORT_RETENTION=5)
    start = utcnow() - timedelta(hours=5)
    checks = [_check_with_reports(settings, "gray", start + timedelta(hours=h), h) for h in range(3)]
    assert steps.prune_reports(settings, "gray") == []
    assert all(p.exists() for _, paths in checks for p in paths)
