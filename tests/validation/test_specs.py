import statistics

import numpy as np
import pandas as pd
import pytest

from validation.records import shipped_spec
from validation.specs import SpecError, derive, parse_spec


def test_the_shipped_vrs_capture_spec_is_the_reports_limits():
    spec = parse_spec(shipped_spec("vrs-capture-2023").read_text())
    limits = {m: (limit.min, limit.max) for m, limit in spec.tone.items()}
    assert limits == {
        "brightness": (130, 188),
        "b_diff": (19, 43),
        "r_minus_g": (3, 15),
        "r_minus_b": (21, 49),
        "g_minus_b": (15, 37),
    }
    assert "progress report" in spec.source and spec.applies_to == "color"
    assert spec.compression.compressed == "required"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: a\ntone: {brightness: {min: 190, max: 130}}", "lower limit 190.0 exceeds upper limit 130.0"),
        ("name: a\ntone: {hue: {min: 1, max: 2}}", "unknown tone metric(s) ['hue']"),
        ("name: a\nmachines: {M1: {saturation: {max: 2}}}", "machine M1: unknown tone metric"),
        ("name: a\ntone: {brightness: {}}", "a limit needs min, max or both"),
        ("name: a", "the spec limits nothing"),
        ("name: a\ntone: {brightness: {min: 1}}\ncolour: 3", "colour: Extra inputs"),
        ("- just\n- a list", "must be a mapping"),
        ("name: [unclosed", "not valid YAML"),
    ],
)
def test_bad_specs_are_refused_with_a_message(text, message):
    with pytest.raises(SpecError) as err:
        parse_spec(text)
    assert message in str(err.value)


def test_derived_limits_are_mean_plus_minus_k_sigma_overall_and_per_machine():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "machine_id": ["M1"] * 50 + ["M2"] * 30 + ["M3"],
            **{m: rng.normal(100, 10, 81) for m in ("brightness", "r_minus_g", "r_minus_b", "g_minus_b", "b_diff")},
        }
    )
    spec = derive("ref", frame, k=1.5, per_machine=True)
    values = list(frame["brightness"])
    mean, sd = statistics.mean(values), statistics.stdev(values)
    assert spec.tone["brightness"].min == pytest.approx(mean - 1.5 * sd)
    assert spec.tone["brightness"].max == pytest.approx(mean + 1.5 * sd)
    m2 = list(frame.loc[frame.machine_id == "M2", "g_minus_b"])
    assert spec.machines["M2"]["g_minus_b"].max == pytest.approx(statistics.mean(m2) + 1.5 * statistics.stdev(m2))
    assert set(spec.machines) == {"M1", "M2"}, "a machine with one image gets no limits of its own"
    assert parse_spec(spec.to_yaml()) == spec


def test_derive_refuses_a_reference_set_too_small():
    with pytest.raises(SpecError, match="has 1 image"):
        derive("x", pd.DataFrame({"brightness": [1.0], "machine_id": [None]}), columns=("brightness",))
