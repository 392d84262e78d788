"""Colour calibration per machine: the fit, point-in-time reads through a real Feast repo, train/serve parity
(the same tensor for the same image and machine), and the simulated line on the real PKU crops."""

from __future__ import annotations

from datetime import timedelta

import pytest
import torch

from demo.simulated_line import MACHINES, SimulatedMachine, reference_machine
from features import calibration
from tests.features.helpers import SHIFTED, T0, board, write_line
from tests.flows.helpers import aoi, ingest


def test_the_fit_recovers_gain_and_offset_of_a_shifted_machine():
    crops = board()
    reference = calibration.moments([reference_machine("ref").capture(im) for im in crops])
    machine = calibration.moments([SHIFTED.capture(im) for im in crops])
    fitted = calibration.fit(machine, reference, max_gain=2.0)
    for c, gain in zip("rgb", SHIFTED.gains):
        assert fitted[f"gain_{c}"] == pytest.approx(1 / gain, rel=0.03)
        assert fitted[f"offset_{c}"] == pytest.approx(-SHIFTED.offset / gain, abs=1.5)
    with pytest.raises(calibration.CalibrationError, match="outside"):  # a different board is no calibration
        calibration.fit(
            calibration.moments([SimulatedMachine("x", (0.3, 0.3, 0.3)).capture(im) for im in crops]),
            reference,
            max_gain=2.0,
        )


def test_calibration_is_read_point_in_time_for_training_and_latest_online(settings, tmp_path, prefect_api):
    from features import store

    ref = reference_machine(settings.features.reference_machine)
    later = SimulatedMachine("vrs-7", (1.02, 0.99, 1.0))  # re-tuned on day 4: from then on it needs little correction
    write_line(tmp_path, {"ref": (ref, T0), "first": (SHIFTED, T0), "second": (later, T0 + timedelta(days=4))})
    for key in ("ref", "first", "second"):
        shots = ingest(tmp_path / f"reference-{key}.csv", "--format", "csv", "--source", "color", "--reference")
        assert shots["added"] == 6 and shots["by_label"] == {"(unlabeled)": 6}  # reference samples never train
    ingest(tmp_path / "captures.csv", "--format", "csv", "--source", "color")
    refreshed = aoi("machines", "refresh")
    assert refreshed["calibration"]["rows"] == 3 and refreshed["calibration"]["problems"] == []
    assert refreshed["online"]["machine_calibration"] == 3
    assert refreshed["tone_stats"]["machines"] == 1  # the captures' machine; reference shots are left out

    fs = store.open_store(settings)
    days = [T0 + timedelta(days=d) for d in (-1, 2, 6)]
    before, first, second = calibration.at(fs, [{"machine_id": "vrs-7", "at": t} for t in days])
    assert before is None  # nothing was in force before the first reference shots
    assert first.gains[0] == pytest.approx(1 / 1.15, rel=0.03) and first.offsets[1] < -8
    assert second.gains[0] == pytest.approx(1 / 1.02, abs=0.01) and abs(second.offsets[1]) < 1.5
    assert calibration.online(fs, "vrs-7") == second  # serving: the latest
    assert calibration.online(fs, "vrs-404") is None


def test_training_and_serving_make_the_same_tensor_for_the_same_image_and_machine(settings, tmp_path, prefect_api):
    """Train/serve parity: the training dataset (calibration point in time through training_v1) and /classify's
    input (online through serving_v2) apply the same calibration with the one preprocessing function."""
    from aoi.preprocess import Preprocessing, preprocess
    from aoi.store import ImageStore
    from serving.machine_params import MachineParams
    from serving.models import Deployed
    from serving.service import model_input
    from training.data import ManifestDataset
    from training.params import TrainParams
    from training.steps import prepare
    from training.taxonomy import Taxonomy

    ref = reference_machine(settings.features.reference_machine)
    write_line(tmp_path, {"ref": (ref, T0), "first": (SHIFTED, T0)}, captures=18)
    for key in ("ref", "first"):
        ingest(tmp_path / f"reference-{key}.csv", "--format", "csv", "--source", "color", "--reference")
    ingest(tmp_path / "captures.csv", "--format", "csv", "--source", "color")
    aoi("machines", "refresh")
    aoi("dataset", "build", "line-v1", "--source", "color", "--split", "1:1:1", "--group-by", "none")
    spec, info = prepare(settings, TrainParams(dataset="line-v1", input_size=32))
    assert info["calibrated_images"] == 18  # every capture got its machine's calibration
    sha, label = spec.splits["train"][0]
    training_tensor = ManifestDataset(
        [(sha, label)],
        ImageStore(settings.store_dir),
        Taxonomy.from_dict(spec.taxonomy),
        spec.prep,
        calibration=spec.calibration,
    )[0][0]

    online = MachineParams(settings).calibration("vrs-7")
    deployed = Deployed("v", "color", torch.nn.Identity(), None, spec.prep, 0.5, None)
    data = ImageStore(settings.store_dir).get(sha)
    serving_tensor = torch.from_numpy(model_input(data, deployed, online))[0]
    assert torch.equal(training_tensor, serving_tensor)
    uncalibrated = preprocess(data, Preprocessing(**spec.prep.as_dict()))
    assert (training_tensor - uncalibrated).abs().max() > 0.05  # the calibration really changed the tensor


@pytest.mark.integration
def test_the_simulated_line_is_calibrated_to_the_reference_tone(settings, datasets_dir, tmp_path, prefect_api):
    """On the real PKU crops: every simulated machine is off the reference tone as captured, and within 2 gray
    levels of it after calibration; a colour request from a calibrated machine says so."""
    result = aoi("simulate", "line", "--per-machine", "12", "--out", str(tmp_path / "line"))
    assert result["machines"] == [m.machine_id for m in MACHINES]
    assert result["captures"]["added"] == 12 * len(MACHINES) and result["blind"]["images"] == 12 * len(MACHINES)
    assert result["features"]["calibration"]["machines"] == len(MACHINES) + 1
    assert (tmp_path / "line" / "SIMULATION.txt").read_text().startswith("SIMULATION")
    checked = aoi("machines", "check", "--line", str(tmp_path / "line"))
    assert "model_version" not in checked  # no colour model here: the tone check alone
    for row in checked["tone"]:
        assert row["calibrated_images"] == 12
        assert row["max_error_captured"] > 4, row  # the simulation really shifts every machine
        assert row["max_error_calibrated"] <= 2 and row["within_goal"], row
    again = aoi("simulate", "line", "--per-machine", "12", "--out", str(tmp_path / "line"))
    assert again["captures"]["added"] == 0 and again["blind"] is None  # a re-run adds nothing
