"""SIMULATION of an ageing lamp on one simulated VRS machine (the demo's drift): the simulated line's captures
sent to the running service in capture order, one machine's lamp losing light step by step.

The ageing machine's captures are re-shot from the PKU crop with its gains scaled by the lamp's light
(``aoi.simulated_line.aged``); the other machines' captures are sent as stored. The service applies each
machine's colour calibration, fitted while the lamp was new, so the ageing machine drifts and the others do not.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from aoi import simulated_line
from aoi.settings import Settings
from serving.loadgen import run_load

AGEING_MACHINE = "VRS-02"
LIGHT_STEPS = (1.0, 0.94, 0.88, 0.82, 0.76)  # the lamp's light over the window, one step per fifth of the captures


def requests(folder: Path, machine_id: str = AGEING_MACHINE, steps=LIGHT_STEPS) -> list[dict]:
    """One request per capture, in capture order: machine, bytes and the lamp's light when it was taken."""
    line = simulated_line.load(folder)
    machines = {m.machine_id: m for m in simulated_line.MACHINES}
    if machine_id not in machines:
        raise ValueError(f"{machine_id} is not a simulated machine ({', '.join(machines)})")
    own = [c for c in line["captures"] if c["machine_id"] == machine_id]
    out = []
    for capture in sorted(line["captures"], key=lambda c: c["captured_at"]):
        light = 1.0
        if capture["machine_id"] == machine_id:
            light = steps[own.index(capture) * len(steps) // len(own)]
            data = simulated_line.shot(simulated_line.aged(machines[machine_id], light),
                                       Path(line["source"]) / capture["source_file"])  # fmt: skip
        else:
            data = (folder / capture["path"]).read_bytes()
        out.append({"machine_id": capture["machine_id"], "light": light, "image": data})
    return out


def send(settings: Settings, url: str, folder: Path, machine_id: str = AGEING_MACHINE, steps=LIGHT_STEPS,
         concurrency: int = 4) -> dict:  # fmt: skip
    """Classify every request over HTTP as colour images from their machines; what was sent and answered."""
    sent = requests(folder, machine_id, steps)
    token = settings.api_key.get_secret_value() if settings.api_key else None
    result = run_load(url, [r["image"] for r in sent], len(sent), concurrency, "color", token,
                      machine_ids=[r["machine_id"] for r in sent])  # fmt: skip
    return {"simulation": "an ageing lamp on one simulated machine (SIMULATION)", "ageing_machine": machine_id,
            "light_steps": list(steps), "sent": len(sent), "answered": len(result.answers),
            "by_machine": dict(Counter(r["machine_id"] for r in sent)), "errors": result.errors[:5],
            "calibrated_answers": sum(a.get("calibrated", False) for a in result.answers.values())}  # fmt: skip
