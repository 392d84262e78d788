"""Reading the prediction log back (``aoi predictions``)."""

from __future__ import annotations

from collections import Counter, defaultdict

from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import Prediction
from aoi.settings import Settings


def summary(settings: Settings, kind: str | None = None, last: int = 10) -> dict:
    with db.session(settings.catalog_url) as s:
        query = select(
            Prediction.kind, Prediction.model_version, Prediction.unknown, Prediction.in_spec, Prediction.route
        )
        if kind:
            query = query.where(Prediction.kind == kind)
        rows = s.exec(query).all()
        latest_query = select(Prediction).order_by(col(Prediction.id).desc()).limit(last)
        if kind:
            latest_query = latest_query.where(Prediction.kind == kind)
        latest = s.exec(latest_query).all()
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for row in rows:
        groups[(row[0], row[1])].append(row)
    by_model = []
    for (k, version), items in sorted(groups.items()):
        judged = [r[3] for r in items if r[3] is not None]
        by_model.append(
            {
                "kind": k,
                "model_version": version,
                "answers": len(items),
                "unknown_rate": round(sum(r[2] for r in items) / len(items), 4),
                "in_spec_rate": round(sum(judged) / len(judged), 4) if judged else None,
                "routes": dict(Counter(r[4] for r in items)),
            }
        )
    return {
        "answers": len(rows),
        "by_model": by_model,
        "latest": [
            {
                "at": p.at.isoformat(),
                "kind": p.kind,
                "model_version": p.model_version,
                "machine_id": p.machine_id,
                "label": p.label,
                "coarse_label": p.coarse_label,
                "confidence": round(p.confidence, 4),
                "route": p.route,
                "rule": p.rule,
                "request_id": p.request_id,
            }
            for p in latest
        ],
    }
