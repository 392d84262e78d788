"""The promotion gate: rules from settings, judged on blind-test figures only (docs/domain.md#blind-tests: a model with
90.3% training accuracy scored 8.9% on a blind test). The verdict lists every rule with its figure, its limit
and pass/fail, so a reviewer sees why, not just whether.
"""

from __future__ import annotations

import numpy as np

from aoi.settings import GateSettings, Settings
from evaluation import scores


def rule(name: str, figure: float | None, op: str, limit: float, detail: str = "") -> dict:
    """One rule: ``figure op limit`` must hold (op is ``>=`` or ``<=``); a missing figure fails."""
    ok = figure is not None and (figure >= limit if op == ">=" else figure <= limit)
    return {"rule": name, "figure": figure, "op": op, "limit": limit, "passed": bool(ok), "detail": detail}


def pooled(evaluations: list[dict]) -> dict:
    """Blind sets taken together: summed confusion matrices, image-weighted Unknown rate."""
    matrix = np.sum([np.asarray(e["confusion"]) for e in evaluations], axis=0)
    images = sum(e["images"] for e in evaluations)
    unknown = sum(e["unknown_rate"] * e["images"] for e in evaluations) / images if images else 0.0
    table = scores.per_class(matrix, evaluations[0]["labels"])
    return {"accuracy": scores.accuracy(matrix), "unknown_rate": unknown, "per_class": table, "images": images}


def judge(
    gate: GateSettings,
    candidate: list[dict],
    production: list[dict] | None,
    tone_drop: float | None,
    production_version: str | None = None,
) -> list[dict]:
    """Every rule of the gate on the candidate's blind evaluations (one per blind set), production's on the
    same sets (None when there is no production model), and the tone-robustness drop."""
    if not candidate:
        return [rule("blind sets evaluated", 0, ">=", 1, "no blind set registered for this kind: nothing can judge it")]
    rules = [
        rule(f"blind accuracy on {e['dataset']}", e["accuracy"], ">=", gate.min_blind_accuracy, f"{e['images']} images")
        for e in candidate
    ]
    mine = pooled(candidate)
    if production:
        theirs = pooled(production)
        need = (theirs["accuracy"] or 0.0) + gate.margin_over_production
        rules.append(
            rule(
                "blind accuracy vs production",
                mine["accuracy"],
                ">=",
                need,
                f"production {production_version}: {theirs['accuracy']:.4f} + margin "
                f"{gate.margin_over_production:+.4f}",
            )
        )
    else:
        rules.append(
            rule(
                "blind accuracy vs production",
                mine["accuracy"],
                ">=",
                0.0,
                "no production model of this kind yet: nothing to beat",
            )
        )
    thresholds = sorted({e["threshold"] for e in candidate if e.get("threshold") is not None})
    at = f" at Unknown threshold {', '.join(f'{t:.4f}' for t in thresholds)}" if thresholds else ""
    rules.append(
        rule(
            "Unknown rate on blind sets",
            mine["unknown_rate"],
            "<=",
            gate.max_unknown_rate,
            f"{mine['images']} images{at}",
        )
    )
    recalls = {k: v["recall"] for k, v in mine["per_class"].items() if v["recall"] is not None}
    worst = min(recalls, key=recalls.get)
    rules.append(rule("lowest class recall", recalls[worst], ">=", gate.min_class_recall, f"class {worst}"))
    if tone_drop is None:
        rules.append(rule("tone robustness drop (0.9..1.1)", None, "<=", gate.max_tone_drop, "not measured"))
    else:
        rules.append(
            rule(
                "tone robustness drop (0.9..1.1)",
                tone_drop,
                "<=",
                gate.max_tone_drop,
                "largest accuracy loss with one channel scaled by 0.9 or 1.1",
            )
        )
    return rules


def passed(rules: list[dict]) -> bool:
    return all(r["passed"] for r in rules)


def markdown(rules: list[dict]) -> str:
    lines = ["| rule | figure | limit | verdict | detail |", "|---|---|---|---|---|"]
    for r in rules:
        figure = "n/a" if r["figure"] is None else f"{r['figure']:.4f}"
        lines.append(
            f"| {r['rule']} | {figure} | {r['op']} {r['limit']:.4f} | {'PASS' if r['passed'] else 'FAIL'} | "
            f"{r['detail']} |"
        )
    return "\n".join(lines)


def warnings_markdown(found: list[dict]) -> str:
    if not found:
        return "No warnings: every label reaches the recall and image-count limits."
    return "\n".join(f"- **{w['warning']}**: {w['message']}" for w in found)


def exports_markdown(found: list[dict]) -> str:
    """The candidate's exports (``export.exports.as_dict``): parity figures beside the model's, latency per device."""
    if not found:
        return "Not exported: PyTorch would answer (`aoi export MODEL [--int8]` judges and measures an export)."
    lines = [
        "| export | verdict | top-1 agreement | blind accuracy (PyTorch → export) | batch 1 | batch 32 | device |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in found:
        p, lat = e["parity"], e["latency"]

        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.2%}"

        lines.append(
            f"| {e['format']} {'INT8' if e['int8'] else 'fp32'} ({e['engine']}) | "
            f"{'accepted' if e['accepted'] else 'refused'} | {pct(p['top1_agreement'])} | "
            f"{pct(p['blind_accuracy_torch'])} → {pct(p['blind_accuracy_export'])} | {lat['batch1_ms']:.2f} ms | "
            f"{lat['batch32_images_per_s']:.0f} images/s (PyTorch {lat['torch_batch32_images_per_s']:.0f}) | "
            f"{lat['device']} |"
        )
    return "\n".join(lines)


def unknown_threshold(settings: Settings, version: str) -> dict:
    """The Unknown threshold the gate judged the candidate at, and whether it was calibrated on its valid split (a
    retrained model must be: at the default threshold its Unknown rate alone can fail the gate)."""
    from training.registry import model_row

    row = model_row(settings, version)
    if row.threshold is None:
        return {
            "value": settings.evaluation.unknown_threshold,
            "calibrated": False,
            "basis": "the default (AOI_EVALUATION__UNKNOWN_THRESHOLD): not calibrated",
        }
    return {"value": row.threshold, "calibrated": True, "basis": row.threshold_basis}


def threshold_line(threshold: dict | None) -> str:
    if not threshold:
        return ""
    how = "calibrated on its valid split" if threshold["calibrated"] else "the default, not calibrated"
    return f"Unknown threshold {threshold['value']:.4f} ({how}).\n\n"
