"""SIMULATION: each part number has its own tone on each simulated machine, and the line check reports per part."""

from __future__ import annotations

import csv

import numpy as np
from PIL import Image

from demo import simulated_line
from evaluation import line_check


def fake_pku(root, boards=("10", "11", "12"), per_board: int = 8):
    rng = np.random.default_rng(0)
    for board in boards:
        for k in range(per_board):
            path = root / "Short" / f"{board}_short_{k:02d}_roi_1.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.clip(rng.normal((40, 110, 50), 20, (32, 32, 3)), 0, 255).astype(np.uint8)).save(path)
    return root


def test_each_part_has_its_own_tone_on_each_machine(tmp_path):
    gains = {
        (m.machine_id, p): simulated_line.part_gains(m.machine_id, p, "PCB-10")
        for m in simulated_line.MACHINES
        for p in ("PCB-10", "PCB-11", "PCB-12")
    }
    assert all(gains[(m.machine_id, "PCB-10")] == (1.0, 1.0, 1.0) for m in simulated_line.MACHINES)
    others = [g for (_, p), g in gains.items() if p != "PCB-10"]
    assert len(set(others)) == len(others), "every machine and part has a tone of its own"
    assert all(abs(v - 1) <= simulated_line.PART_TONE for g in others for v in g)
    assert simulated_line.part_gains("VRS-01", "PCB-11", "PCB-10") == gains[("VRS-01", "PCB-11")]  # fixed, every run

    line = simulated_line.simulate(
        fake_pku(tmp_path / "pku"), tmp_path / "line", reference_id="VRS-REF", per_machine=4, reference_images=4
    )
    assert line["part_tone"]["VRS-02"]["PCB-11"] == list(gains[("VRS-02", "PCB-11")])
    with open(tmp_path / "line" / "camera_params.csv") as f:
        params = {(r["machine_id"], r["part_no"]): float(r["gain_g"]) for r in csv.DictReader(f)}
    for m in simulated_line.MACHINES:  # the CSV carries each part's own gains
        assert params[(m.machine_id, "PCB-11")] == round(6 * m.gains[1] * gains[(m.machine_id, "PCB-11")][1], 2)
    capture = line["captures"][0]
    machine = next(m for m in simulated_line.MACHINES if m.machine_id == capture["machine_id"])
    as_shot = (tmp_path / "line" / capture["path"]).read_bytes()
    source = tmp_path / "pku" / capture["source_file"]
    assert as_shot == simulated_line.shot(machine.for_part(capture["part_no"], "PCB-10"), source)
    assert as_shot != simulated_line.shot(machine, source)

    by_machine: dict[str, list] = {}
    for c in line["captures"]:
        data = (tmp_path / "line" / c["path"]).read_bytes()
        by_machine.setdefault(c["machine_id"], []).append(
            {**c, "data": data, "unshifted": simulated_line.unshifted(line, c), "calibration": None}
        )
    rows = line_check.tone_by_part(by_machine)
    assert {(r["machine_id"], r["part_no"]) for r in rows} == {
        (c["machine_id"], c["part_no"]) for c in line["captures"]
    }
    assert sum(r["images"] for r in rows) == len(line["captures"])
