"""Great Expectations and plain pandas run the same checks and must give the same verdicts."""

import numpy as np
import pandas as pd
import pytest

from validation.engines import GXRunner, run_pandas
from validation.specs import parse_spec

SPEC = parse_spec("""
name: t
mostly: 0.9
tone:
  brightness: {min: 130, max: 188}
  r_minus_g: {min: 3, max: 15}
machines:
  M2: {brightness: {min: 100, max: 150}}
quality:
  sharpness: {min: 100}
compression:
  formats: [JPEG]
  jpeg_quality: {min: 80}
  compressed: any
""")


def metrics(n=600, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "machine_id": rng.choice(["M1", "M2", None], n),
            "source": "color",
            "brightness": rng.normal(150, 25, n),
            "r_minus_g": rng.normal(9, 5, n),
            "format": rng.choice(["JPEG", "PNG"], n, p=[0.9, 0.1]),
            "jpeg_quality": rng.choice([70.0, 90.0, np.nan], n),
            "bytes_per_pixel": 0.4,
            "compressed": rng.choice([True, False], n, p=[0.9, 0.1]),
            "sharpness": rng.choice([50.0, 500.0, np.nan], n),  # NaN: measured before sharpness existed
        }
    )


def test_pandas_checks_follow_the_spec_per_machine():
    frame = metrics()
    verdict = run_pandas(SPEC, frame)
    for _, row in frame.iterrows():
        low, high = (100, 150) if row.machine_id == "M2" else (130, 188)
        out = not low <= row.brightness <= high
        assert out == any(r.startswith("brightness") for r in verdict.failed.get(row.id, [])), row.id
        blurred = row.sharpness < 100  # NaN compares False: not judged
        assert blurred == ("sharpness outside 100..inf" in verdict.failed.get(row.id, [])), row.id
    assert {f["group"] for f in verdict.set_failures} == {"overall", "machine-M2"}  # mixed compression
    assert all("mixed compressed" in f["check"] for f in verdict.set_failures)


@pytest.mark.slow
def test_great_expectations_gives_the_same_verdicts_and_writes_data_docs(tmp_path):
    frame = metrics()
    gx = GXRunner(tmp_path, tmp_path / "reports" / "data_docs").run(SPEC, frame)
    pd_verdict = run_pandas(SPEC, frame)
    assert {k: sorted(v) for k, v in gx.failed.items()} == {k: sorted(v) for k, v in pd_verdict.failed.items()}
    assert gx.set_failures == pd_verdict.set_failures
    assert gx.failed and gx.evaluated == len(frame)
    assert (tmp_path / "reports" / "data_docs" / "index.html").exists()
