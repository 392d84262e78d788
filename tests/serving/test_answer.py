"""The answer without a model or a server: Unknown filter, rules, routes and the tone check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from aoi.image_metrics import measure
from aoi.preprocess import Preprocessing
from serving.answer import decide, log_row
from serving.models import Deployed
from serving.rules import RulesError, load_rules
from tests.helpers import board, encode
from tests.serving.helpers import png
from training.taxonomy import Taxonomy
from validation.specs import parse_spec

GRAY = Taxonomy.load("gray")
SPEC = parse_spec("""
name: t
tone: {brightness: {min: 100, max: 140}}
machines: {m-dark: {brightness: {min: 50, max: 90}}}
""")


def deployed(threshold: float = 0.9, spec=None, kind: str = "gray", taxonomy: Taxonomy = GRAY) -> Deployed:
    return Deployed("gray-r7", kind, torch.nn.Identity(), taxonomy, Preprocessing(), threshold, spec)


def probs(label: str, p: float, taxonomy: Taxonomy = GRAY) -> np.ndarray:
    out = np.full(len(taxonomy.fine), (1 - p) / (len(taxonomy.fine) - 1), dtype=np.float32)
    out[taxonomy.index(label)] = p
    return out


METRICS = measure(png(value=120))
RULES = load_rules()


def answer(label="SHORT", p=0.99, threshold=0.9, code=None, machine=None, spec=None, kind="gray", taxonomy=GRAY):
    return decide(
        deployed(threshold, spec, kind, taxonomy),
        probs(label, p, taxonomy),
        RULES,
        request_id="r1",
        metrics=METRICS,
        machine_id=machine,
        upstream_code=code,
    )


def test_a_confident_answer_is_final_with_its_coarse_class_and_top3():
    a = answer("SHORT", 0.97)
    assert (a.label, a.coarse_label, a.unknown, a.route, a.rule) == ("SHORT", "REPAIRABLE", False, "FINAL", None)
    assert a.top3[0].label == "SHORT" and a.top3[0].confidence == pytest.approx(0.97)
    assert len(a.top3) == 3 and a.top3[0].confidence >= a.top3[1].confidence >= a.top3[2].confidence


def test_below_the_models_threshold_is_unknown_and_a_gray_unknown_goes_to_the_vrs():
    a = answer("SHORT", 0.95, threshold=0.99)
    assert (a.label, a.coarse_label, a.unknown, a.route, a.model_label) == ("UNKNOWN", "UNKNOWN", True, "VRS", "SHORT")
    assert a.threshold == 0.99


@pytest.mark.parametrize("code", ["NICK", "laserdrill", " Open "])
def test_upstream_codes_of_the_rule_table_force_a_gray_answer_to_unknown(code):
    a = answer("PASS", 0.999, code=code)
    assert (a.label, a.unknown, a.rule, a.route, a.model_label) == (
        "UNKNOWN",
        True,
        "upstream-code-to-unknown",
        "VRS",
        "PASS",
    )


def test_the_rule_is_for_gray_only_and_a_colour_unknown_goes_to_review():
    color = Taxonomy.load("color")
    confident = answer("SHORT", 0.999, code="NICK", kind="color", taxonomy=color)
    assert (confident.rule, confident.route) == (None, "FINAL")
    unsure = answer("SHORT", 0.5, kind="color", taxonomy=color)
    assert (unsure.label, unsure.route) == ("UNKNOWN", "REVIEW")


def test_tone_is_judged_against_the_spec_and_the_machines_own_limits():
    assert answer().in_spec is None and answer().tone_spec is None
    inside = answer(spec=SPEC)
    assert (inside.in_spec, inside.out_of_spec, inside.tone_spec) == (True, [], "t@1")
    dark_machine = answer(spec=SPEC, machine="m-dark")
    assert (dark_machine.in_spec, dark_machine.out_of_spec) == (False, ["brightness"])


def test_quality_is_answered_logged_and_judged_where_the_spec_limits_it():
    spec = parse_spec("name: focus\ntone: {brightness: {min: 0, max: 255}}\nquality: {sharpness: {min: 2000}}")
    sharp = measure(encode(board(size=(256, 256), seed=1)))
    blur = Image.fromarray(board(size=(256, 256), seed=1)).filter(ImageFilter.GaussianBlur(3))
    blurred = measure(encode(np.asarray(blur)))
    assert blurred.sharpness < 2000 < sharp.sharpness
    judged = {
        m: decide(deployed(spec=spec), probs("SHORT", 0.99), RULES, request_id="r1", metrics=m)
        for m in (sharp, blurred)
    }
    assert (judged[sharp].in_spec, judged[sharp].out_of_spec) == (True, [])
    assert (judged[blurred].in_spec, judged[blurred].out_of_spec) == (False, ["sharpness"])
    assert judged[blurred].quality.sharpness == pytest.approx(blurred.sharpness)
    row = log_row(judged[blurred], blurred, "ab" * 32, 3.0)
    assert (row["sharpness"], row["smear"]) == (blurred.sharpness, blurred.smear)
    tiny = measure(png(size=6))
    assert tiny.sharpness is None  # too small to judge: not judged, as validation skips a missing value
    assert decide(deployed(spec=spec), probs("SHORT", 0.99), RULES, request_id="r2", metrics=tiny).in_spec is True


def test_the_log_row_keeps_what_the_model_said_and_what_the_line_was_told():
    a = answer("PASS", 0.999, code="PINHOLE", machine="m1")
    row = log_row(a, METRICS, "ab" * 32, 12.5)
    assert (row["label"], row["model_label"], row["rule"], row["machine_id"]) == ("UNKNOWN", "PASS", a.rule, "m1")
    assert row["brightness"] == pytest.approx(METRICS.brightness) and row["width"] == 32


def test_a_custom_rule_table_replaces_the_shipped_one_and_a_bad_one_is_refused_with_its_problem(tmp_path):
    custom = tmp_path / "rules.yaml"
    custom.write_text(
        "overrides: [{name: shorts-to-review, kind: gray, upstream_codes: [short], answer: UNKNOWN}]\n"
        "routes: [{name: VRS, kind: gray, labels: [NONREPAIRABLE]}]\ndefault_route: LINE\n"
    )
    rules = load_rules(custom)
    assert rules.override("gray", "SHORT").name == "shorts-to-review" and rules.override("gray", "NICK") is None
    assert rules.route("gray", "OPEN", "NONREPAIRABLE") == "VRS" and rules.route("gray", "PASS", "PASS") == "LINE"
    bad = tmp_path / "bad.yaml"
    bad.write_text("overrides: [{name: x, upstream_codes: []}]\n")
    with pytest.raises(RulesError, match="upstream_codes"):
        load_rules(bad)
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")
