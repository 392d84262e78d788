"""The drift page shows live accuracy beside the input checks: per check the whole kind's figure against the blind
one, and the newest check's scopes with their verdicts."""

from __future__ import annotations

import re
from datetime import timedelta

from aoi.catalog import db
from aoi.catalog.models import DriftCheck, UserRole, utcnow
from tests.workbench.helpers import logged_in


def scope(name: str, machine, n: int, correct: int, drift, reason: str) -> dict:
    return {
        "scope": name,
        "kind": "gray",
        "machine": machine,
        "part": None,
        "confirmed": n + 3,
        "unknown": 3,
        "not_defect": 0,
        "n": n,
        "correct": correct,
        "accuracy": round(correct / n, 4) if n else None,
        "bound": 0.8,
        "blind_accuracy": 0.95,
        "drift": drift,
        "reason": reason,
    }


def test_the_drift_page_shows_live_accuracy_beside_the_input_checks(settings, client):
    at = utcnow()
    live = {
        "blind": {"accuracy": 0.95},
        "scopes": [
            scope("all", None, 200, 160, True, "0.80 (bound 0.85) < blind 0.95 - 0.05"),
            scope("VRS-03", "VRS-03", 120, 84, True, "0.70 (bound 0.77) < blind 0.95 - 0.05"),
            scope("VRS-01", "VRS-01", 80, 76, None, "too few confirmed answers to say: 80 < 100"),
        ],
    }
    with db.session(settings.catalog_url) as s:
        for hours, figures in ((2, None), (1, live)):
            s.add(
                DriftCheck(
                    kind="gray",
                    model_version="gray-v1",
                    window_start=at - timedelta(hours=hours + 1),
                    window_end=at - timedelta(hours=hours),
                    samples=300,
                    drift=figures is not None,
                    decision="drift: retraining triggered" if figures else "clean",
                    created_at=at - timedelta(hours=hours),
                    live_accuracy=figures,
                )
            )
        s.commit()
    logged_in(client, UserRole.viewer)
    page = client.get("/drift").text
    cells = re.findall(r'<td class="num live">(.*?)</td>', page, re.S)
    assert len(cells) == 2 and "80.0% of 200 (95.0%)" in cells[0] and "none confirmed" in cells[1]
    scopes = re.findall(r'<tr data-live-scope="([^"]+)" class="(\w*)"', page)
    assert scopes == [("all", "drifted"), ("VRS-03", "drifted"), ("VRS-01", "")]
    assert "0.70 (bound 0.77) &lt; blind 0.95 - 0.05" in page and "no verdict" in page
