"""Class-aware and per-part specs: derived per class / machine × part, applied by the most specific limits."""

import statistics

import numpy as np
import pandas as pd
import pytest

from validation.engines import run_pandas
from validation.plan import partition
from validation.specs import DEFAULT_DERIVED, SpecError, derive, parse_spec

CLASSES = {"HOLE": 160.0, "SPUR": 100.0}  # what a class shows moves its brightness: a hole is brighter


def crops(n=400, seed=0, machines=("M1", "M2"), parts=("P1", "P2"), light=None) -> pd.DataFrame:
    """Images whose brightness depends on the class (content) and, with ``light``, on the machine's lamp."""
    rng = np.random.default_rng(seed)
    label = rng.choice(list(CLASSES), n, p=[0.2, 0.8])
    machine = rng.choice(list(machines), n)
    frame = pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "source": "color",
            "label": label,
            "machine_id": machine,
            "part_no": rng.choice(list(parts), n),
            **{m: rng.normal(20, 3, n) for m in DEFAULT_DERIVED},
        }
    )
    frame["brightness"] = [CLASSES[c] for c in label] + rng.normal(0, 8, n)
    for m, factor in (light or {}).items():
        frame.loc[frame["machine_id"] == m, "brightness"] *= factor
    return frame


def kept(frame: pd.DataFrame, failed: dict) -> dict[str, float]:
    out = frame["id"].isin(failed)
    return {label: float(1 - out[frame["label"] == label].mean()) for label in sorted(frame["label"].unique())}


def test_per_class_limits_are_each_classs_mean_plus_minus_k_sigma_and_spare_what_a_class_shows():
    frame = crops()
    spec = derive("t", frame, k=2.5, per_class=True)
    for label in CLASSES:
        values = list(frame.loc[frame["label"] == label, "brightness"])
        mean, sd = statistics.mean(values), statistics.stdev(values)
        limits = spec.tone_limits_for(None, None, label)["brightness"]
        assert (limits.min, limits.max) == (pytest.approx(mean - 2.5 * sd), pytest.approx(mean + 2.5 * sd))
    assert spec.tone_limits_for(None, None, "NEW_CLASS") == spec.tone  # a class with no limits: the overall ones
    assert parse_spec(spec.to_yaml()) == spec
    blind = derive("b", frame, k=1.5)
    assert kept(frame, run_pandas(blind, frame).failed)["HOLE"] < 0.2  # one band takes the hole for tone
    assert min(kept(frame, run_pandas(spec, frame).failed).values()) >= 0.9


def test_a_tone_shift_of_one_machine_is_still_excluded_by_a_per_class_spec():
    spec = derive("t", crops(), k=2.5, per_class=True)
    shifted = crops(seed=1, light={"M2": 1.4})
    failed = run_pandas(spec, shifted).failed
    m2 = shifted["machine_id"] == "M2"
    assert shifted.loc[m2, "id"].isin(failed).mean() >= 0.9
    assert shifted.loc[~m2, "id"].isin(failed).mean() <= 0.1


def test_per_part_limits_win_over_per_machine_over_overall():
    frame = crops(n=600, light={"M2": 0.8})
    frame["part_no"] = np.where(frame["id"] % 10 == 0, "P2", "P1")  # a part the machine seldom shoots
    frame.loc[(frame["machine_id"] == "M1") & (frame["part_no"] == "P2"), "r_minus_g"] += 30  # its own tone
    spec = derive("t", frame, k=3, per_part=True)
    assert set(spec.machines) == {"M1", "M2"} and {(g.machine, g.part) for g in spec.groups} == {
        ("M1", "P1"),
        ("M1", "P2"),
        ("M2", "P1"),
        ("M2", "P2"),
    }
    own = frame[(frame["machine_id"] == "M1") & (frame["part_no"] == "P2")]["r_minus_g"]
    assert spec.tone_limits_for("M1", "P2")["r_minus_g"].max == pytest.approx(own.mean() + 3 * own.std())
    assert spec.tone_limits_for("M1", "P9") == {**spec.tone, **spec.machines["M1"]}  # an unknown part: its machine
    assert spec.tone_limits_for("M9", "P2") == spec.tone  # an unknown machine: overall
    names = {g.name for g, _ in partition(spec, frame.assign(machine_id=frame["machine_id"].where(frame["id"] > 5)))}
    assert names == {"overall", "machine-M1.part-P1", "machine-M1.part-P2", "machine-M2.part-P1", "machine-M2.part-P2"}
    # Judged by its own limits, M1 × P2's tone is no fault; by M1's or the overall ones, it would be.
    failed = run_pandas(spec, frame).failed
    assert own.index.isin([i - 1 for i in failed]).mean() <= 0.05
    as_machine = derive("m", frame, k=3, per_machine=True)
    assert frame.loc[own.index, "id"].isin(run_pandas(as_machine, frame).failed).mean() > 0.3


def test_per_class_within_machine_and_part_groups_fall_back_level_by_level():
    frame = crops(n=600)
    spec = derive("t", frame, k=2, per_part=True, per_class=True)
    selectors = {(g.machine, g.part, g.label) for g in spec.groups}
    assert ("M1", "P1", "HOLE") in selectors and ("M1", None, "SPUR") in selectors and (None, None, "HOLE") in selectors
    hole = frame[(frame.machine_id == "M1") & (frame.part_no == "P1") & (frame.label == "HOLE")]["brightness"]
    assert spec.tone_limits_for("M1", "P1", "HOLE")["brightness"].min == pytest.approx(hole.mean() - 2 * hole.std())
    spur = frame[(frame.machine_id == "M1") & (frame.label == "SPUR")]["brightness"]
    assert spec.tone_limits_for("M1", "P7", "SPUR")["brightness"].max == pytest.approx(spur.mean() + 2 * spur.std())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: a\ngroups: [{part: P1, tone: {brightness: {max: 3}}}]", "give its machine too"),
        ("name: a\ngroups: [{tone: {brightness: {max: 3}}}]", "needs machine, label or both"),
        ("name: a\ngroups: [{label: X, tone: {hue: {max: 3}}}]", "unknown tone metric"),
    ],
)
def test_bad_limit_groups_are_refused_with_a_message(text, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(text)


def test_derive_refuses_a_k_that_is_not_positive():
    with pytest.raises(SpecError, match="k must be above 0"):
        derive("t", crops(), k=0)


@pytest.mark.slow
def test_great_expectations_applies_the_most_specific_limits_like_pandas(tmp_path):
    from validation.engines import GXRunner

    frame = crops(n=300, machines=("M1", "M9"), parts=("P1", "P7"))  # M9 and P7 have no limits of their own
    spec = derive(
        "gx-groups", crops(n=300, seed=2, machines=("M1",), parts=("P1",)), k=1.5, per_part=True, per_class=True
    )
    gx = GXRunner(tmp_path, tmp_path / "docs").run(spec, frame)
    pd_verdict = run_pandas(spec, frame)
    assert len(partition(spec, frame)) == 6  # machine × part × class, machine × class, class
    assert gx.failed and {k: sorted(v) for k, v in gx.failed.items()} == {
        k: sorted(v) for k, v in pd_verdict.failed.items()
    }
