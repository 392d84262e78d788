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


def test_confusion_with_unknown_matches_the_hand_count_and_each_row_sums_to_the_class():
    table = scores.confusion_with_unknown(TRUE, PRED, CONF, 0.95, ["PASS", "SPUR", "OPEN"])
    assert table["columns"] == ["PASS", "SPUR", "OPEN", "UNKNOWN"]
    # accepted at 0.95: PASS x3 right, SPUR 0.98 right, OPEN 0.999 and 0.96 right; the other four are Unknown
    assert table["matrix"] == [[3, 0, 0, 1], [0, 1, 0, 2], [0, 0, 2, 1]]
    assert table["recall"] == {"PASS": 3 / 4, "SPUR": pytest.approx(1 / 3), "OPEN": pytest.approx(2 / 3)}
    assert table["accepted_recall"] == {"PASS": 1.0, "SPUR": 1.0, "OPEN": 1.0}
    assert table["unknown_rate"] == {"PASS": 1 / 4, "SPUR": pytest.approx(2 / 3), "OPEN": pytest.approx(1 / 3)}
    looser = scores.confusion_with_unknown(TRUE, PRED, CONF, 0.65, ["PASS", "SPUR", "OPEN"])
    # adds SPUR 0.91 (right) and OPEN 0.70 (called PASS): PASS's precision falls to 3 of 4
    assert looser["matrix"] == [[3, 0, 0, 1], [0, 2, 0, 1], [1, 0, 2, 0]]
    assert looser["precision"] == {"PASS": 3 / 4, "SPUR": 1.0, "OPEN": 1.0}


def test_confusion_with_unknown_on_generated_answers_keeps_every_image_once():
    rng = np.random.default_rng(3)
    n, classes = 500, 5
    true = rng.integers(0, classes, n)
    pred = np.where(rng.random(n) < 0.8, true, rng.integers(0, classes, n))
    conf = rng.random(n)
    labels = [f"C{i}" for i in range(classes)]
    table = scores.confusion_with_unknown(true, pred, conf, 0.4, labels)
    matrix = np.array(table["matrix"])
    assert matrix.sum(axis=1).tolist() == np.bincount(true, minlength=classes).tolist()
    kept = scores.unknown_filter(true, pred, conf, 0.4)
    assert matrix[:, classes].sum() / n == pytest.approx(kept.unknown_rate)
    assert np.trace(matrix[:, :classes]) / matrix[:, :classes].sum() == pytest.approx(kept.accepted_accuracy)
    # at threshold 0 nothing is Unknown: the accepted part is the plain confusion matrix
    everything = np.array(scores.confusion_with_unknown(true, pred, conf, 0.0, labels)["matrix"])
    assert everything[:, classes].sum() == 0
    assert everything[:, :classes].tolist() == scores.confusion(true, pred, classes).tolist()


def test_breakdown_shows_the_machine_that_does_worse_and_adds_up_to_the_whole_set():
    rng = np.random.default_rng(11)
    machines = np.array(["AOI-1"] * 200 + ["AOI-2"] * 150 + [None] * 100, dtype=object)
    true = rng.integers(0, 3, len(machines))
    wrong_share = np.where(machines == "AOI-2", 0.4, 0.05)  # AOI-2's camera confuses the model
    pred = np.where(rng.random(len(true)) < wrong_share, (true + 1) % 3, true)
    conf = np.where(pred == true, rng.uniform(0.7, 1.0, len(true)), rng.uniform(0.3, 0.9, len(true)))
    groups = scores.breakdown(true, pred, conf, 0.8, list(machines), "machine_id", ["PASS", "SPUR", "OPEN"])
    assert [g["machine_id"] for g in groups] == ["AOI-1", "AOI-2", None]  # the images of no machine last
    by = {g["machine_id"]: g for g in groups}
    assert [by[m]["images"] for m in ("AOI-1", "AOI-2", None)] == [200, 150, 100]
    for key, g in by.items():
        mask = np.array([m == key for m in machines])
        assert g["accuracy"] == pytest.approx((true[mask] == pred[mask]).mean())
        kept = scores.unknown_filter(true[mask], pred[mask], conf[mask], 0.8)
        assert (g["accepted_accuracy"], g["unknown_rate"]) == (kept.accepted_accuracy, kept.unknown_rate)
        assert set(g["recall"]) == {"PASS", "SPUR", "OPEN"}
    assert by["AOI-2"]["accuracy"] < min(by["AOI-1"]["accuracy"], by[None]["accuracy"]) - 0.2
    assert min(by["AOI-2"]["recall"].values()) < min(by["AOI-1"]["recall"].values())
    whole = scores.unknown_filter(true, pred, conf, 0.8)
    assert sum(g["unknown_rate"] * g["images"] for g in groups) / len(true) == pytest.approx(whole.unknown_rate)
    # images of no known machine at all: one group, the whole set's figures
    (alone,) = scores.breakdown(true, pred, conf, 0.8, [None] * len(true), "part_no", ["PASS", "SPUR", "OPEN"])
    assert alone["part_no"] is None and alone["accuracy"] == pytest.approx((true == pred).mean())
