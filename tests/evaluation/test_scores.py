"""The Unknown filter, confusion and calibration arithmetic against figures worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation import scores

# Ten answers over three classes (0 PASS, 1 SPUR, 2 OPEN), with their top-class confidence.
TRUE = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
PRED = np.array([0, 0, 1, 0, 1, 1, 2, 2, 0, 2])
CONF = np.array([0.99, 0.97, 0.60, 0.995, 0.98, 0.91, 0.55, 0.999, 0.70, 0.96])


def test_confusion_and_per_class_tables_match_the_hand_count():
    m = scores.confusion(TRUE, PRED, 3)
    # rows true, columns predicted, counted by hand from the ten answers above
    assert m.tolist() == [[3, 1, 0], [0, 2, 1], [1, 0, 2]]
    assert scores.accuracy(m) == pytest.approx(7 / 10)
    table = scores.per_class(m, ["PASS", "SPUR", "OPEN"])
    assert table["PASS"] == {"precision": pytest.approx(3 / 4), "recall": pytest.approx(3 / 4), "support": 4}
    assert table["SPUR"] == {"precision": pytest.approx(2 / 3), "recall": pytest.approx(2 / 3), "support": 3}
    assert table["OPEN"] == {"precision": pytest.approx(2 / 3), "recall": pytest.approx(2 / 3), "support": 3}
    assert scores.mean_detection_rate(table) == pytest.approx((3 / 4 + 2 / 3 + 2 / 3) / 3)


def test_unknown_filter_keeps_confident_answers_and_scores_only_those():
    kept = scores.unknown_filter(TRUE, PRED, CONF, threshold=0.95)
    # accepted: 0.99 ok, 0.97 ok, 0.995 ok, 0.98 ok, 0.999 ok, 0.96 ok -> 6 accepted, all right
    assert (kept.accepted, kept.unknown_rate, kept.accepted_accuracy) == (6, pytest.approx(0.4), 1.0)
    looser = scores.unknown_filter(TRUE, PRED, CONF, threshold=0.65)
    # adds 0.91 (right) and 0.70 (wrong: OPEN called PASS) -> 8 accepted, 7 right
    assert (looser.accepted, looser.unknown_rate, looser.accepted_accuracy) == (8, pytest.approx(0.2), 7 / 8)
    nothing = scores.unknown_filter(TRUE, PRED, CONF, threshold=1.0)
    assert (nothing.accepted, nothing.unknown_rate, nothing.accepted_accuracy) == (0, 1.0, None)


def test_coarse_collapse_counts_a_fine_error_inside_one_coarse_class_as_right():
    to_coarse, coarse = scores.coarse_index(["PASS", "SPUR", "OPEN"], {"PASS": "PASS", "SPUR": "NG", "OPEN": "NG"})
    assert coarse == ["PASS", "NG"]
    m = scores.confusion(to_coarse[TRUE], to_coarse[PRED], 2)
    assert m.tolist() == [[3, 1], [1, 5]]  # SPUR<->OPEN confusions vanish in the coarse answer


def test_calibration_finds_the_least_unknown_for_a_target_and_the_best_accuracy_for_an_unknown_budget():
    point = scores.calibrate(TRUE, PRED, CONF, target_accuracy=1.0)
    # the seven most confident answers (down to 0.91) are all right; the next (0.70) is wrong
    assert point.threshold == pytest.approx(0.91) and point.unknown_rate == pytest.approx(0.3)
    point = scores.calibrate(TRUE, PRED, CONF, target_accuracy=0.85)
    assert point.threshold == pytest.approx(0.70) and point.accepted_accuracy == pytest.approx(7 / 8)
    point = scores.calibrate(TRUE, PRED, CONF, max_unknown_rate=0.25)
    # at most 2 of 10 Unknown: drop 0.55 and 0.60 (both wrong) -> 7 of 8 right
    assert point.threshold == pytest.approx(0.70) and point.accepted_accuracy == pytest.approx(7 / 8)
    with pytest.raises(scores.CalibrationError, match="exactly one"):
        scores.calibrate(TRUE, PRED, CONF)
    with pytest.raises(scores.CalibrationError, match="no threshold reaches"):
        scores.calibrate(TRUE, np.zeros(10, dtype=int) + 1, CONF, target_accuracy=0.9)
