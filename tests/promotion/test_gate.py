"""Gate rules on hand-made blind evaluations: each rule can fail on its own, and the verdict says why."""

from __future__ import annotations

from aoi.settings import GateSettings
from evaluation import scores
from promotion import gate

LABELS = ["PASS", "OPEN"]


def blind(name: str, confusion: list[list[int]], unknown_rate: float = 0.1) -> dict:
    images = sum(map(sum, confusion))
    return {
        "dataset": name,
        "labels": LABELS,
        "confusion": confusion,
        "images": images,
        "unknown_rate": unknown_rate,
        "accuracy": (confusion[0][0] + confusion[1][1]) / images,
    }


def verdict(rules: list[dict]) -> dict[str, bool]:
    return {r["rule"]: r["passed"] for r in rules}


def test_a_good_candidate_passes_every_rule_and_the_first_model_has_nothing_to_beat():
    rules = gate.judge(GateSettings(), [blind("b-0717", [[48, 2], [1, 49]])], None, tone_drop=0.01)
    assert gate.passed(rules), rules
    assert "nothing to beat" in next(r for r in rules if r["rule"] == "blind accuracy vs production")["detail"]


def test_each_rule_fails_on_its_own_figure():
    settings = GateSettings(min_blind_accuracy=0.9, max_unknown_rate=0.2, min_class_recall=0.8, max_tone_drop=0.05)
    good = blind("b-0720", [[45, 5], [0, 50]])  # 95%, OPEN recall 1.0, PASS recall 0.9
    production = [blind("b-0720", [[50, 0], [1, 49]])]  # 99%
    rules = verdict(gate.judge(settings, [good], production, tone_drop=0.2, production_version="gray-r1"))
    assert rules == {
        "blind accuracy on b-0720": True,
        "blind accuracy vs production": False,
        "Unknown rate on blind sets": True,
        "lowest class recall": True,
        "tone robustness drop (0.9..1.1)": False,
    }
    weak_class = blind("b-0720", [[50, 0], [12, 38]], unknown_rate=0.5)  # 88%, OPEN recall 0.76
    rules = verdict(gate.judge(settings, [weak_class], None, tone_drop=0.0))
    assert not rules["blind accuracy on b-0720"] and not rules["lowest class recall"]
    assert not rules["Unknown rate on blind sets"]


def test_every_blind_set_must_reach_the_floor_and_production_is_compared_on_the_pooled_sets():
    sets = [blind("b-0717", [[50, 0], [0, 50]]), blind("b-0720", [[40, 10], [5, 45]])]  # 100% and 85%
    rules = gate.judge(GateSettings(min_blind_accuracy=0.9), sets, None, tone_drop=0.0)
    assert verdict(rules)["blind accuracy on b-0717"] and not verdict(rules)["blind accuracy on b-0720"]
    pooled = gate.pooled(sets)
    assert pooled["accuracy"] == (100 + 85) / 200 and pooled["images"] == 200


def test_no_blind_set_or_unmeasured_tone_fails_the_gate():
    assert not gate.passed(gate.judge(GateSettings(), [], None, tone_drop=0.0))
    rules = gate.judge(GateSettings(), [blind("b", [[50, 0], [0, 50]])], None, tone_drop=None)
    assert not gate.passed(rules) and "not measured" in gate.markdown(rules)


def warned(found: list[dict]) -> set[tuple[str, str]]:
    return {(w["label"], w["warning"]) for w in found}


def test_warnings_name_a_weak_label_and_a_rare_label_and_never_fail_the_gate():
    settings = GateSettings(
        warn_recall_below=0.9, warn_min_blind_images=30, min_class_recall=0.5, min_blind_accuracy=0.85
    )
    fine = gate.pooled([blind("b-0717", [[48, 2], [1, 49]])])["per_class"]  # 50 images each, recall 0.96 and 0.98
    assert scores.label_warnings(settings, fine) == []
    weak = gate.pooled([blind("b-0717", [[48, 2], [10, 40]])])["per_class"]  # OPEN recall 0.80
    assert warned(scores.label_warnings(settings, weak)) == {("OPEN", "low recall")}
    (warning,) = scores.label_warnings(settings, weak)
    assert warning["figure"] == 0.8 and warning["limit"] == 0.9 and "40 of 50" in warning["message"]
    rare = gate.pooled([blind("b-0717", [[48, 2], [0, 12]])])["per_class"]  # OPEN recall 1.0, only 12 images
    assert warned(scores.label_warnings(settings, rare)) == {("OPEN", "few images")}
    # pooled over two blind sets: 12 + 20 OPEN images reach the limit together
    both = gate.pooled([blind("b-0717", [[48, 2], [0, 12]]), blind("b-0720", [[50, 0], [0, 20]])])["per_class"]
    assert scores.label_warnings(settings, both) == []
    # the same figures under a stricter setting warn; a warning does not enter the rules
    assert warned(scores.label_warnings(GateSettings(warn_recall_below=0.97), fine)) == {("PASS", "low recall")}
    rules = gate.judge(settings, [blind("b-0717", [[48, 2], [10, 40]])], None, tone_drop=0.0)
    assert gate.passed(rules) and all("warn" not in r["rule"] for r in rules)
    text = gate.warnings_markdown(scores.label_warnings(settings, weak))
    assert "low recall" in text and "OPEN" in text
    assert "No warnings" in gate.warnings_markdown([])
