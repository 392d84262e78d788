"""What the ``monitor`` flow's steps (``steps.py``) share: the window to check, the kinds with a production model,
the per-machine and per-part comparisons, the verdicts, and the summary and artifact of a check."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from aoi.catalog.models import utcnow
from aoi.settings import Settings
from monitoring import live, parts, policy
from monitoring.drift import Comparison, compare

RETRAIN_DEPLOYMENT = "retrain/{kind}"  # flow/deployment; flows/deployments.py registers one per kind


class MonitorError(ValueError):
    """A drift check that cannot run; the message says why."""


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    def as_dict(self) -> dict:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_span(text: str) -> timedelta:
    """'24h', '90m', '7d', '30s' -> timedelta."""
    match = _SPAN.match(text)
    if not match or float(match[1]) <= 0:
        raise MonitorError(f"window must look like 24h, 90m, 7d or 30s, not {text!r}")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def window_of(
    settings: Settings,
    span: str | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
) -> Window:
    """[since, until) or the last ``span`` (default the settings' window_hours) before ``until`` (default now)."""
    end = _parse_time(until, "--until") if until is not None else utcnow()
    if since is not None:
        start = _parse_time(since, "--since")
    else:
        start = end - (parse_span(span) if span else timedelta(hours=settings.monitoring.window_hours))
    if start >= end:
        raise MonitorError(f"the window starts ({start.isoformat()}) after it ends ({end.isoformat()})")
    return Window(start, end)


def _parse_time(text: str | datetime, option: str) -> datetime:
    if isinstance(text, datetime):
        return text if text.tzinfo else text.astimezone()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise MonitorError(f"{option} must be an ISO time such as 2026-11-23T08:00:00+00:00, not {text!r}") from None
    return value if value.tzinfo else value.astimezone()  # a time without zone is local time


def kinds_to_check(settings: Settings, kind: str | None) -> dict[str, str]:
    """kind -> production model version; refuses a kind with no production model."""
    from serving.models import production_versions

    production = production_versions(settings)
    if kind is None:
        return production
    if kind not in production:
        raise MonitorError(
            f"no production {kind} model: drift is measured against the production model's reference (aoi stages)"
        )
    return {kind: production[kind]}


def _report_path(settings: Settings, kind: str, scope: str, at: datetime):
    return settings.reports_dir / "monitoring" / f"drift-{kind}-{at:%Y%m%dT%H%M%S}-{scope}.html"


def _no_reference(part: str, answers: int) -> str:
    return f"no reference for part {part}: {answers} answers reported, not judged"


def _machines(
    settings: Settings,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    judged: pd.DataFrame,
    unreferenced: dict,
    html: bool,
    now: datetime,
    kind: str = "",
) -> dict:
    """Per machine: its verdict on its judged answers, and what the system knows of it (calibration, reference
    images of its own): a machine it knows nothing of is compared as captured, and says so."""
    config = settings.monitoring
    known = set(reference["machine_id"].dropna()) if "machine_id" in reference else set()
    out = {}
    for machine, every in sorted(current.dropna(subset=["machine_id"]).groupby("machine_id"), key=lambda g: g[0]):
        rows = judged[judged["machine_id"] == machine]
        calibrated = bool("calibrated" in every and every["calibrated"].any())
        facts = {"calibrated": calibrated, "in_reference": machine in known}
        notes = []
        if not calibrated and machine not in known:
            notes.append(
                f"no calibration and no reference images for machine {machine}: compared as captured "
                "with the line's reference"
            )
        elif not calibrated:
            notes.append(f"no calibration for machine {machine}: compared as captured")
        new_parts = sorted(set(parts._part(every)) & set(unreferenced))
        notes += [_no_reference(p, int((parts._part(every) == p).sum())) for p in new_parts]
        if len(rows) < config.min_machine_samples:
            out[machine] = {
                "samples": len(rows),
                **facts,
                **policy.too_few(len(rows), config.min_machine_samples).as_dict(),
                "notes": notes,
            }
            continue
        figures = compare(parts.matched(reference, rows, config.min_part_reference), rows, config)
        verdict = policy.judge(figures, config)
        report = None
        if verdict.drift and html:  # the picture a person opens for the flagged machine
            report = figures.save_html(_report_path(settings, kind, _safe(machine), now))
        out[machine] = {
            **_brief(figures),
            **facts,
            **verdict.as_dict(),
            "notes": notes,
            "report": str(report) if report else None,
        }
    return out


def _parts(settings: Settings, reference: pd.DataFrame, current: pd.DataFrame, unreferenced: dict) -> dict:
    """Per named part number: its answers against its own reference images; a part with none is reported as
    such (drift None, never True): a new part on the line is not a changed camera."""
    config = settings.monitoring
    out = {}
    for part, rows in parts.part_groups(current):
        if part in unreferenced:
            out[part] = {
                "samples": len(rows),
                "reference_samples": 0,
                "drift": None,
                "reference": False,
                "reasons": [f"no reference for part {part}"],
            }
            continue
        own = parts.of_part(reference, part)
        if len(rows) < config.min_machine_samples:
            out[part] = {
                "samples": len(rows),
                "reference_samples": len(own),
                "reference": True,
                **policy.too_few(len(rows), config.min_machine_samples).as_dict(),
            }
            continue
        figures = compare(own, rows, config)
        out[part] = {
            **_brief(figures),
            "reference_samples": len(own),
            "reference": True,
            "machines": sorted(rows["machine_id"].dropna().unique().tolist()),
            **policy.judge(figures, config).as_dict(),
        }
    return out


def _brief(c: Comparison) -> dict:
    return {k: v for k, v in c.as_dict().items() if k != "scores"} | {
        "scores": {
            col: {"score": s["score"], "method": s["method"], "drifted": s["drifted"]} for col, s in c.scores.items()
        }
    }


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:64]


def verdict_of(scopes: dict) -> bool | None:
    """The check's verdict: drift when the whole window or any machine drifted; None when nothing could be said."""
    verdicts = [
        scopes["overall"]["drift"],
        *(m["drift"] for m in scopes["machines"].values()),
        *(p["drift"] for p in scopes.get("parts", {}).values()),
        *(row["drift"] for row in _live(scopes)),  # a confirmed drop in accuracy is drift whatever the inputs say
    ]
    if any(v for v in verdicts):
        return True
    return None if scopes["overall"]["drift"] is None else False


def _live(scopes: dict) -> list[dict]:
    return (scopes.get("live_accuracy") or {}).get("scopes", [])


def drifted_machines(scopes: dict) -> list[str]:
    found = [m for m, v in scopes["machines"].items() if v["drift"]]
    return found + sorted({r["machine"] for r in _live(scopes) if r["drift"] and r["machine"]} - set(found))


def drifted_parts(scopes: dict) -> list[str]:
    return [p for p, v in scopes.get("parts", {}).items() if v["drift"]]


def reasons(scopes: dict) -> str:
    """Why the check said drift, as the retrain run's ``reason`` parameter carries it."""
    return "; ".join(
        scopes["overall"]["reasons"]
        + [f"{m}: {'; '.join(v['reasons'])}" for m, v in scopes["machines"].items() if v["drift"]]
        + [f"part {p}: {'; '.join(v['reasons'])}" for p, v in scopes.get("parts", {}).items() if v["drift"]]
        + live.drift_reasons(scopes.get("live_accuracy") or {})
    )


def _machine_verdicts(scopes: dict) -> dict:
    """Per machine, every figure but the per-column scores (kept for the check's row and its JSON)."""
    return {m: {k: v for k, v in fig.items() if k != "scores"} for m, fig in scopes["machines"].items()}


def _part_verdicts(scopes: dict) -> dict:
    return {p: {k: v for k, v in fig.items() if k != "scores"} for p, fig in scopes.get("parts", {}).items()}


def retraining_ended(flow_run_id: str) -> bool:
    from promotion.approval import state_of

    state = state_of(flow_run_id)
    return state is None or state.is_final()


def summarise(
    kind: str,
    version: str,
    window: Window,
    reference: pd.DataFrame,
    calibrated_rows: int,
    scopes: dict,
    drift: bool | None,
    decision: policy.Decision,
    retraining: dict | None,
    check_id: int,
) -> dict:
    """One kind's result as `aoi monitor --json` prints it."""
    overall = scopes["overall"]
    return {
        "kind": kind,
        "model_version": version,
        "window": window.as_dict(),
        "drift": drift,
        "samples": overall["samples"],
        "reference_samples": len(reference),
        "calibrated_samples": calibrated_rows,
        "drifted_columns": overall.get("drifted_columns", []),
        "drift_share": overall.get("drift_share"),
        "unknown_rate": overall.get("unknown_rate"),
        "reference_unknown_rate": overall.get("reference_unknown_rate"),
        "reasons": overall["reasons"],
        "overall_drift": overall["drift"],  # the whole window's own verdict
        "machines": _machine_verdicts(scopes),
        "parts": _part_verdicts(scopes),
        "notes": overall.get("notes", []),
        "decision": decision.text,
        "episode_id": decision.episode_id,
        "retraining": retraining,
        "report": scopes["report"],
        "check_id": check_id,
        "blind_accuracy": (scopes.get("live_accuracy") or {}).get("blind"),
        "live_accuracy": _live(scopes),
        "live_accuracy_reasons": live.drift_reasons(scopes.get("live_accuracy") or {}),
        "history": scopes.get("history"),
    }


def combine(results: dict[str, dict]) -> dict:
    """All kinds' checks in one document: drift when any kind drifted; per machine keyed 'kind/machine'."""
    verdicts = [r["drift"] for r in results.values()]
    return {
        "drift": True if any(verdicts) else (None if not verdicts or all(v is None for v in verdicts) else False),
        "samples": sum(r["samples"] for r in results.values()),
        "drifted_columns": sorted({c for r in results.values() for c in r["drifted_columns"]}),
        "machines": {f"{k}/{m}": v for k, r in results.items() for m, v in r["machines"].items()},
        "parts": {f"{k}/{p}": v for k, r in results.items() for p, v in r.get("parts", {}).items()},
        "live_accuracy": [row for r in results.values() for row in r.get("live_accuracy", [])],
        "kinds": results,
    }


def markdown(result: dict) -> str:
    """The check as the Prefect UI shows it (an artifact on the monitor run)."""
    lines = [
        f"### Drift check, {result['kind']} ({result['model_version']}): {result['decision']}",
        f"window {result['window']['start']} to {result['window']['end']}, {result['samples']} answers "
        f"against {result['reference_samples']} reference images",
        "",
        "| scope | samples | drift | drifted columns | Unknown rate |",
        "|---|---|---|---|---|",
    ]
    scopes = [
        ("all", {**result, "drift": result["overall_drift"]}),
        *result["machines"].items(),
        *((f"part {p}", fig) for p, fig in result.get("parts", {}).items()),
    ]
    for scope, fig in scopes:
        lines.append(
            f"| {scope} | {fig['samples']} | {fig['drift']} | {', '.join(fig.get('drifted_columns') or []) or '-'} "
            f"| {fig.get('unknown_rate', '-')} |"
        )
    judged_live = [row for row in result.get("live_accuracy", []) if row["n"]]
    if judged_live:
        lines += [
            "",
            "| live accuracy | confirmed | accuracy | bound | blind | drift |",
            "|---|---|---|---|---|---|",
            *(
                f"| {r['scope']} | {r['n']} | {r['accuracy']} | {r['bound']} | {r['blind_accuracy']} | {r['drift']} |"
                for r in judged_live
            ),
        ]
    lines += [f"\n- {note}" for note in result.get("notes", [])]
    lines += [
        f"- {m}: {note}"
        for m, fig in result["machines"].items()
        for note in fig.get("notes", [])
        if not note.startswith("no reference for part")
    ]
    if result["report"]:
        lines.append(f"\nEvidently report: {result['report']}")
    return "\n".join(lines)
