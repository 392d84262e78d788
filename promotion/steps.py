"""Promotion steps as the ``promote`` flow calls them: check the candidate, evaluate it and production on every
blind set of its kind, measure tone robustness, judge and record the gate, and write what the reviewer reads."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from aoi.settings import Settings
from evaluation import evaluate, scores
from export import exports
from promotion import gate, stages
from promotion.compare import compare, markdown
from training import registry

GATE_TONE_FACTORS = (0.9, 1.1)  # the gate's tone rule: one channel off by 10% (docs/domain.md#joint-tone)


def check_candidate(settings: Settings, version: str) -> dict:
    row = registry.model_row(settings, version)
    if row.stage != "candidate":
        raise stages.PromotionError(f"{version} is {row.stage}: only a candidate can be promoted")
    current = stages.production(settings, row.kind)
    return {
        "version": version,
        "kind": row.kind,
        "production": current.version if current else None,
        "blind_sets": stages.blind_sets(settings, row.kind),
    }


def evaluate_blind(settings: Settings, version: str, blind_sets: list[str], report: bool = True) -> list[dict]:
    return [evaluate.evaluate(settings, version, name, report=report) for name in blind_sets]


def tone_drop(settings: Settings, version: str, blind_sets: list[str]) -> float | None:
    """The largest accuracy loss over the blind sets when one channel is scaled by 0.9 or 1.1 (each run is
    kept in the catalog's robustness table); None without a blind set."""
    from evaluation.robustness import tone_drop as drop

    runs = [
        evaluate.robustness(settings, version, name, factors=GATE_TONE_FACTORS, compression=False)
        for name in blind_sets
    ]
    return max((drop(r["tone"], GATE_TONE_FACTORS) for r in runs), default=None)


def judge(
    settings: Settings,
    check: dict,
    candidate: list[dict],
    production: list[dict] | None,
    tone_drop: float | None,
    flow_run_id: str | None,
) -> dict:
    rules = gate.judge(settings.gate, candidate, production, tone_drop, check["production"])
    # Warnings on the blind sets taken together (as the recall rule judges them): shown, never failing.
    warnings = scores.label_warnings(settings.gate, gate.pooled(candidate)["per_class"]) if candidate else []
    verdict = stages.record_verdict(
        settings,
        check["version"],
        check["kind"],
        rules,
        check["blind_sets"],
        check["production"],
        flow_run_id,
        warnings,
    )
    # The candidate's exports beside its own figures: what the line would run, judged against it (never a rule).
    exported = exports.exports_of(settings, [check["version"]]).get(check["version"], [])
    return {
        **verdict,
        "unknown_threshold": gate.unknown_threshold(settings, check["version"]),
        "exports": [exports.as_dict(e) for e in exported],
    }


def review_page(settings: Settings, check: dict, verdict: dict, candidate: list[dict]) -> dict:
    """What the reviewer reads beside the form: the verdict, the comparison with production, the reports."""
    versions = [check["version"], *([check["production"]] if check["production"] else [])]
    table = compare(settings, versions, check["blind_sets"])
    verdict_md = (
        f"## Gate verdict for {check['version']} ({check['kind']}): "
        f"{'PASSED' if verdict['passed'] else 'FAILED'}\n\n{gate.markdown(verdict['rules'])}\n\n"
        f"{gate.threshold_line(verdict.get('unknown_threshold'))}"
        f"### Warnings (they do not fail the gate)\n\n"
        f"{gate.warnings_markdown(verdict['warnings'] or [])}\n\n"
        f"### Exports (parity with this model on the blind sets, latency on the exporting device)\n\n"
        f"{gate.exports_markdown(verdict.get('exports') or [])}"
    )
    compare_md = f"## Comparison on the blind sets\n\n{markdown(table)}"
    reports = {e["dataset"]: e["report"] for e in candidate if e.get("report")}
    return {"verdict_markdown": verdict_md, "comparison_markdown": compare_md, "comparison": table, "reports": reports}


# A passed gate waits for a person: the approval is opened, then the decision applied (both kept in ``stages``
# with the rest of the stage bookkeeping; named here as the flow's steps).
open_approval = stages.open_approval
decide = stages.decide
PromotionError = stages.PromotionError


class PromotionResult(BaseModel):
    """What the promote flow returns (``aoi promote --json``): the gate's verdict and, where the gate passed, the
    person's decision (the approval: who, when, the stage it left the model in)."""

    model_config = ConfigDict(frozen=True)

    model_version: str
    decision: str  # "gate failed", or the approval's status: approved, rejected, timed_out
    verdict: dict
    stage: str | None
    approval: dict | None = None

    def as_dict(self) -> dict:
        head = {"model_version": self.model_version, "decision": self.decision, "verdict": self.verdict}
        return {**head, **self.approval} if self.approval is not None else {**head, "stage": self.stage}
