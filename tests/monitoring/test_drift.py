"""The pieces of a drift check without Prefect: windows, the Evidently comparison, the verdict, the calibrated
tone, the reference frame."""

from __future__ import annotations

import io
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aoi.image_metrics import TONE_FIELDS, measure
from aoi.preprocess import ToneCalibration
from aoi.settings import MonitoringSettings
from monitoring import check, frames, policy, steps
from monitoring.drift import Comparison, compare, compared_numeric
from tests.monitoring.helpers import dimmed, synthetic


def blurred(frame: pd.DataFrame, focus: float) -> pd.DataFrame:
    """The same scenes through a lens out of focus: the Laplacian's variance falls, edges soften; tone holds."""
    return frame.assign(sharpness=frame["sharpness"] * focus, smear=np.minimum(frame["smear"] + 0.02 * (1 - focus), 1))


def test_window_spans_are_parsed_and_bad_ones_refused(settings):
    assert check.parse_span("24h") == timedelta(hours=24) and check.parse_span("90m") == timedelta(minutes=90)
    for bad in ("24", "h", "-1h", "0d", "2w"):
        with pytest.raises(check.MonitorError, match="window must look like"):
            check.parse_span(bad)
    w = check.window_of(settings, "2h", until="2026-11-23T10:00:00+00:00")
    assert (w.end - w.start) == timedelta(hours=2)
    with pytest.raises(check.MonitorError, match="after it ends"):
        check.window_of(settings, since="2026-11-23T10:00:00+00:00", until="2026-11-23T09:00:00+00:00")
    with pytest.raises(check.MonitorError, match="--since must be an ISO time"):
        check.window_of(settings, since="yesterday")


def test_a_resample_is_clean_and_a_dimmer_lamp_drifts():
    config = MonitoringSettings()
    reference = synthetic(400, seed=0)
    same = compare(reference, synthetic(300, seed=1), config)
    assert policy.judge(same, config).drift is False and same.drift_share < config.drift_share
    darker = compare(reference, dimmed(synthetic(300, seed=2), 0.9), config)
    verdict = policy.judge(darker, config)
    assert verdict.drift is True, darker.as_dict()
    assert {"brightness", "mean_r", "mean_g"} <= set(darker.drifted_columns)
    assert "confidence" not in darker.drifted_columns and "1 of" not in verdict.reasons[0]


def test_reference_images_without_an_answer_count_for_tone_only():
    """The reference's train and test images have tone but no answer: they widen the tone columns and leave
    the label share and the Unknown rate to the answered rows (no "nan" label, no rate diluted by them)."""
    config = MonitoringSettings()
    answered = synthetic(300, seed=0)
    unanswered = synthetic(900, seed=4).assign(confidence=np.nan, model_label=None, unknown=None)
    reference = pd.concat([answered, unanswered], ignore_index=True)
    c = compare(reference, synthetic(300, seed=1), config)
    assert policy.judge(c, config).drift is False, c.as_dict()
    assert c.reference_unknown_rate == pytest.approx(answered["unknown"].mean())
    labels = compare(reference, synthetic(300, seed=1).assign(model_label="SHORT"), config)
    assert "model_label" in labels.drifted_columns
    # the same label shares as the answered rows: no drift, whatever the unanswered rows number
    assert compare(reference, answered, config).scores["model_label"]["score"] == pytest.approx(0.0, abs=1e-9)


def test_an_unknown_rate_rise_alone_is_drift_when_chance_cannot_explain_it():
    config = MonitoringSettings(max_unknown_rise=0.1)
    columns: dict[str, dict] = {c: {} for c in frames.MONITORED}

    def unknown(rate: float, samples: int, reference_rate: float = 0.05) -> Comparison:
        return Comparison(samples, ["unknown"], 1 / 13, rate, reference_rate, columns, reference_answers=400)

    verdict = policy.judge(unknown(0.25, 300), config)  # +20 points, at least +15.5 whatever chance did
    assert verdict.drift is True and "Unknown rate 25.0% is +20.0%" in verdict.reasons[0]
    assert "at least +15.5% with 95% confidence" in verdict.reasons[0]
    assert policy.judge(unknown(0.10, 300), config) == policy.Verdict(False, [])
    # the same +17 points: on 100 answers chance could make most of it (+8.2 at worst), on 3,000 not (+13.2)
    assert policy.judge(unknown(0.40, 100, 0.23), config).drift is False
    assert policy.judge(unknown(0.40, 3000, 0.23), config).drift is True


def test_the_calibrated_tone_is_the_tone_of_the_calibrated_image():
    rng = np.random.default_rng(3)
    pixels = np.clip(rng.normal((140, 120, 90), 15, (48, 48, 3)), 0, 255).astype(np.float32)
    calibration = ToneCalibration(gains=(0.9, 1.1, 1.05), offsets=(4.0, -3.0, 2.0), gray_gain=1.02, gray_offset=-1.5)

    def metrics(array: np.ndarray) -> dict:
        buf = io.BytesIO()
        Image.fromarray(np.round(array).astype(np.uint8), "RGB").save(buf, "PNG")
        m = measure(buf.getvalue())
        return {c: getattr(m, c) for c in TONE_FIELDS}

    as_captured = pd.DataFrame([metrics(pixels)])
    mapped = frames.calibrated(as_captured, [calibration]).iloc[0]
    truth = metrics(calibration.apply(pixels))
    for column in ("mean_r", "mean_g", "mean_b", "r_minus_g", "r_minus_b", "g_minus_b", "b_diff"):
        assert abs(mapped[column] - truth[column]) < 0.6, column  # rounding to 8 bits, nothing else
    assert frames.calibrated(as_captured, [None]).equals(as_captured)


def test_a_blurred_camera_is_drift_though_its_tone_holds():
    config = MonitoringSettings()
    reference = synthetic(400, seed=0)
    out_of_focus = compare(reference, blurred(synthetic(300, seed=5), 0.5), config)
    verdict = policy.judge(out_of_focus, config)
    assert verdict.drift is True, out_of_focus.as_dict()
    assert "sharpness" in out_of_focus.drifted_columns and "brightness" not in out_of_focus.drifted_columns
    assert out_of_focus.drift_share < config.drift_share  # the share alone would have missed it
    assert any(r.startswith("image quality drifted (sharpness") for r in verdict.reasons)
    assert policy.judge(out_of_focus, MonitoringSettings(quality_drift_alone=False)).drift is False
    # a lens slightly softer than the reference's spread is not drift
    assert policy.judge(compare(reference, blurred(synthetic(300, seed=6), 0.95), config), config).drift is False


def test_answers_logged_before_quality_was_measured_leave_it_out_unjudged():
    config = MonitoringSettings()
    reference = synthetic(400, seed=0)
    old = synthetic(300, seed=7).assign(sharpness=None, smear=None)
    c = compare(reference, old, config)
    assert policy.judge(c, config).drift is False, c.as_dict()
    assert "sharpness" not in c.scores and "smear" not in c.scores and "brightness" in c.scores
    # an old reference (cached before quality existed) against new answers: the same, the other way round
    numeric = compared_numeric(reference.drop(columns=["sharpness", "smear"]), synthetic(300, seed=8))
    assert "sharpness" not in numeric and "smear" not in numeric and "brightness" in numeric


def test_each_part_is_judged_against_its_own_reference_and_a_new_part_is_reported_not_drift(configure):
    """Two part numbers of different tone in the reference; the window mixes them in other shares (no drift: each
    answer meets its own part), adds a part the reference never saw (reported, not judged), then one part's tone
    shifts (that part drifts, the other does not)."""
    settings = configure(
        MONITORING__MIN_SAMPLES=100, MONITORING__MIN_MACHINE_SAMPLES=80, MONITORING__MIN_PART_REFERENCE=50
    )
    reference = pd.concat(
        [
            synthetic(400, seed=0, brightness=120).assign(part_no="P-A", machine_id="m1"),
            synthetic(400, seed=1, brightness=170).assign(part_no="P-B", machine_id="m1"),
        ],
        ignore_index=True,
    )
    part_a = synthetic(360, seed=2, brightness=120).assign(part_no="P-A", machine_id="m1")
    part_b = synthetic(80, seed=3, brightness=170).assign(part_no="P-B", machine_id="m1")
    new = synthetic(100, seed=4, brightness=60).assign(part_no="P-NEW", machine_id="m2")  # a new part, a new machine
    window = pd.concat([part_a, part_b, new], ignore_index=True)
    scopes = steps.compare_scopes(settings, "color", reference, window, html=False)
    assert check.verdict_of(scopes) is False, scopes
    assert scopes["overall"]["samples"] == 440 and scopes["overall"]["drift"] is False
    assert scopes["overall"]["notes"] == ["no reference for part P-NEW: 100 answers reported, not judged"]
    assert scopes["parts"]["P-NEW"] == {
        "samples": 100,
        "reference_samples": 0,
        "drift": None,
        "reference": False,
        "reasons": ["no reference for part P-NEW"],
    }
    assert scopes["parts"]["P-A"]["drift"] is False and scopes["parts"]["P-B"]["drift"] is False
    m2 = scopes["machines"]["m2"]
    assert m2["drift"] is None and not m2["calibrated"] and not m2["in_reference"]
    assert any("no calibration and no reference images for machine m2" in n for n in m2["notes"])
    # against the pooled reference the same window drifts: P-A alone is darker than the mix of both parts
    pooled = compare(reference, pd.concat([part_a, part_b], ignore_index=True), settings.monitoring)
    assert policy.judge(pooled, settings.monitoring).drift is True

    shifted = pd.concat([part_a, dimmed(part_b, 0.85), new], ignore_index=True)
    scopes = steps.compare_scopes(settings, "color", reference, shifted, html=False)
    assert check.verdict_of(scopes) is True
    assert scopes["parts"]["P-B"]["drift"] is True and "brightness" in scopes["parts"]["P-B"]["drifted_columns"]
    assert scopes["parts"]["P-A"]["drift"] is False and scopes["parts"]["P-NEW"]["drift"] is None
    assert "part P-B:" in check.reasons(scopes) and "P-NEW" not in check.reasons(scopes)
