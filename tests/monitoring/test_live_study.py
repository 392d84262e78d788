"""The live accuracy study's statistics on generated answers (seeded): an unchanged line rarely alarms, a 10-point drop
on one machine is found more often the more answers are confirmed, and no drop is found no more often than chance."""

from __future__ import annotations

import numpy as np
import pytest

from aoi.settings import MonitoringSettings
from monitoring import live_study
from tests.flows.helpers import aoi


def outcomes(accuracy: float, n: int = 1000, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).random(n) < accuracy


def test_false_alarms_stay_rare_and_detection_grows_with_the_confirmed_answers():
    config = MonitoringSettings()
    rows = live_study.simulate(outcomes(0.9), config, sizes=(100, 800), windows=120, seed=1)
    small, large = rows
    assert small["false_alarm_rate"] <= 0.05 and large["false_alarm_rate"] <= 0.05, rows
    assert large["detection_rate"] >= 0.9 and small["detection_rate"] < large["detection_rate"], rows
    assert (small["window"], large["windows"]) == (400, 120)


def test_without_a_drop_the_stale_machine_is_found_no_more_than_chance():
    config = MonitoringSettings()
    none = live_study.simulate(outcomes(0.9), config, sizes=(400,), windows=120, drop=0.0001, seed=2)[0]
    assert none["detection_rate"] <= 0.05, none


def test_too_few_answers_never_alarm_and_a_drop_beyond_the_accuracy_is_refused():
    config = MonitoringSettings(min_confirmed=500)
    row = live_study.simulate(outcomes(0.9), config, sizes=(400,), windows=50, drop=0.5)[0]
    assert row["false_alarms"] == 0 and row["found"] == 0, "below the minimum nothing is judged"
    with pytest.raises(ValueError, match="more than the blind accuracy"):
        live_study.simulate(outcomes(0.05), config, sizes=(10,), windows=1)


def test_the_command_refuses_bad_sizes_and_a_kind_without_a_model(aoi_home):
    assert "--sizes must be positive" in aoi("live-accuracy-study", "--sizes", "100,lots", code=2)["error"]
    assert "no production gray model" in aoi("live-accuracy-study", "--kind", "gray", code=2)["error"]
