"""SIMULATION: a line of four VRS machines made from the PKU colour crops, which carry no machine data.

Every simulated machine "shoots" a crop by scaling each channel by its own gain (one also adds a brightness
offset: a lamp set brighter) and saving JPEG, as a real capture is stored. Each part number (a PKU board ``BB``
is part ``PCB-BB``) gets its own tone on each machine (docs/domain.md#tone-per-machine: the same settings give other
colours for
other part numbers): per-channel gains within ±``PART_TONE`` of the machine's, fixed by the machine and part; the
reference board's part is shot at the machine's own tone, so the calibration fitted on it leaves each part's
difference in place, as a per-machine calibration does on a real line. Besides its line captures, each
machine (and the reference machine, whose tone the models were trained on) shoots the same reference board:
those reference samples calibrate it (``features/calibration.py``). A camera-parameter CSV for the machines and
the line's part numbers comes with it. Everything written is labelled a simulation, in ``SIMULATION.txt`` and in
``line.json``, which also keeps the true gains so that the calibration can be checked against them.

Layout of the output folder::

    SIMULATION.txt  line.json  camera_params.csv
    reference.csv   reference/<machine>/<crop>.jpg       (reference samples: ingest --reference)
    captures.csv    captures/<machine>/<Class>/<crop>.jpg (labelled line captures with machine_id, part_no)
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image

# JPEG quality of every simulated capture: the PKU originals' (95), so that the line differs from the training data
# in tone only, as docs/domain.md#compression asks (keep the training set in the online format).
CAPTURE_QUALITY = 95
NOTICE = (
    "SIMULATION. These images are PKU PCB colour crops re-shot by simulated VRS machines (per-channel gains, "
    "one brightness offset). No real machine took them; machine ids, part numbers and camera parameters are "
    "made up for the demo and the tests."
)


@dataclass(frozen=True)
class SimulatedMachine:
    machine_id: str
    gains: tuple[float, float, float]  # R, G, B
    offset: float = 0.0  # brightness offset in gray levels, added to every channel
    light: int = 48  # camera parameters for the CSV (example values, docs/domain.md#tone-per-machine)
    exposure: int = 13

    def shoot(self, image: Image.Image) -> Image.Image:
        arr = np.asarray(image.convert("RGB"), dtype=np.float32) * np.float32(self.gains) + np.float32(self.offset)
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")

    def capture(self, image: Image.Image) -> bytes:
        """The JPEG bytes this machine stores for ``image``."""
        out = io.BytesIO()
        self.shoot(image).save(out, format="JPEG", quality=CAPTURE_QUALITY)
        return out.getvalue()

    def for_part(self, part_no: str, reference_part: str) -> SimulatedMachine:
        """This machine as it shoots boards of ``part_no`` (its own tone for that part; see ``part_gains``)."""
        factors = part_gains(self.machine_id, part_no, reference_part)
        return replace(self, gains=tuple(round(g * f, 4) for g, f in zip(self.gains, factors)))


# How far a part's tone may lie from the machine's on the reference board, per channel. Small enough that the
# per-machine calibration still brings every machine within the line check's 2 gray levels over its parts.
PART_TONE = 0.02


def part_gains(machine_id: str, part_no: str, reference_part: str) -> tuple[float, float, float]:
    """SIMULATION: the per-channel gain of ``part_no`` on ``machine_id`` relative to the machine's tone on the
    reference board: 1 for the reference board's part, else fixed in [1 - PART_TONE, 1 + PART_TONE] by a hash of
    the pair (the same on every run)."""
    if part_no == reference_part:
        return (1.0, 1.0, 1.0)
    digest = hashlib.sha256(f"{machine_id}/{part_no}".encode()).digest()
    return tuple(round(1 + PART_TONE * (digest[k] / 127.5 - 1), 4) for k in range(3))


# Within the range where docs/domain.md#joint-tone saw accuracy fall (a channel at 0.9 or 1.1 cost up to 30 points).
MACHINES = (
    SimulatedMachine("VRS-01", (1.12, 0.92, 1.00)),
    SimulatedMachine("VRS-02", (0.90, 1.08, 1.12), light=50, exposure=12),
    SimulatedMachine("VRS-03", (1.00, 0.88, 1.15), light=46),
    SimulatedMachine("VRS-04", (1.05, 1.00, 0.95), offset=18.0, exposure=14),  # the lamp set brighter
)


def aged(machine: SimulatedMachine, light: float) -> SimulatedMachine:
    """``machine`` with its lamp giving ``light`` of its light (an ageing lamp): every channel darker in proportion."""
    return replace(machine, gains=tuple(g * light for g in machine.gains), offset=machine.offset * light)


def default_folder(settings) -> Path:
    """Where `aoi simulate line`, `aoi machines check` and the demo keep the simulated line."""
    return settings.home / "simulated-line"


def shot(machine: SimulatedMachine, file: Path) -> bytes:
    """``machine``'s capture of the crop stored in ``file``."""
    with Image.open(file) as image:
        return machine.capture(image)


def reference_machine(machine_id: str) -> SimulatedMachine:
    """The machine whose tone is the reference: shoots the crops as they are (still saved as JPEG)."""
    return SimulatedMachine(machine_id, (1.0, 1.0, 1.0))


def board_of(name: str) -> str:
    return Path(name).name.split("_", 1)[0]  # PKU names start with the board: 11_short_03_roi_2.jpg


def part_of(board: str) -> str:
    return f"PCB-{board}"


def crops(source: Path, boards: tuple[str, ...]) -> list[tuple[str, Path]]:
    """(class folder, file) of every PKU crop of ``boards``, in a stable order."""
    return [(f.parent.name, f) for f in sorted(source.glob("*/*.jpg")) if board_of(f.name) in boards]


def simulate(
    source: Path,
    out: Path,
    *,
    reference_id: str,
    per_machine: int = 150,
    reference_images: int = 24,
    capture_boards: tuple[str, ...] = ("11", "12"),
    reference_board: str = "10",
    days: int = 3,
    now: datetime | None = None,
    seed: int = 0,
) -> dict:
    """Write the simulated line into ``out`` (made afresh); returns what ``line.json`` holds.

    Each machine gets its own ``per_machine`` crops of ``capture_boards`` (no crop is shot twice), captured over
    the last ``days`` days; all machines shot the same ``reference_images`` crops of ``reference_board`` before."""
    now = now or datetime.now(UTC)
    rng = random.Random(seed)
    pool = crops(source, capture_boards)
    if len(pool) < per_machine * len(MACHINES):
        raise ValueError(
            f"{len(pool)} crops of boards {', '.join(capture_boards)} in {source}: fewer than "
            f"{per_machine} for each of {len(MACHINES)} machines"
        )
    board = crops(source, (reference_board,))
    if len(board) < reference_images:
        raise ValueError(f"board {reference_board} has {len(board)} crops in {source}, fewer than {reference_images}")
    rng.shuffle(pool)
    board = sorted(rng.sample(board, reference_images), key=lambda item: item[1].name)
    out.mkdir(parents=True, exist_ok=True)
    (out / "SIMULATION.txt").write_text(NOTICE + "\n")
    shot_at = now - timedelta(days=days, hours=1)  # reference shots come first: calibration is in force
    reference_rows = []
    for machine in (reference_machine(reference_id), *MACHINES):
        for _, file in board:
            target = out / "reference" / machine.machine_id / file.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(shot(machine, file))
            reference_rows.append(
                {
                    "path": target.relative_to(out).as_posix(),
                    "machine_id": machine.machine_id,
                    "part_no": part_of(reference_board),
                    "captured_at": shot_at.isoformat(),
                }
            )
    capture_rows = []
    for m, machine in enumerate(MACHINES):
        for k, (label, file) in enumerate(pool[m * per_machine : (m + 1) * per_machine]):
            target = out / "captures" / machine.machine_id / label / file.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(shot(machine.for_part(part_of(board_of(file.name)), part_of(reference_board)), file))
            at = now - timedelta(days=days) + timedelta(seconds=days * 86400 * k / per_machine)
            capture_rows.append(
                {
                    "path": target.relative_to(out).as_posix(),
                    "label": label,
                    "machine_id": machine.machine_id,
                    "part_no": part_of(board_of(file.name)),
                    "captured_at": at.isoformat(),
                    "source_file": f"{label}/{file.name}",
                }
            )
    write_csv(out / "reference.csv", reference_rows)
    write_csv(out / "captures.csv", [{k: v for k, v in r.items() if k != "source_file"} for r in capture_rows])
    parts = sorted({r["part_no"] for r in capture_rows})
    write_csv(
        out / "camera_params.csv",
        [
            {
                "machine_id": m.machine_id,
                "part_no": part,
                "light": m.light,
                "exposure": m.exposure,
                "gain_r": round(9 * g[0], 2),
                "gain_g": round(6 * g[1], 2),
                "gain_b": round(13 * g[2], 2),
                "effective_from": shot_at.isoformat(),
            }
            for m in MACHINES
            for part in parts
            for g in [m.for_part(part, part_of(reference_board)).gains]
        ],
    )
    line = {
        "simulation": NOTICE,
        "source": str(source),
        "reference_machine": reference_id,
        "reference_board": part_of(reference_board),
        "capture_quality": CAPTURE_QUALITY,
        "machines": [asdict(m) for m in MACHINES],
        "parts": parts,
        "part_tone": {
            m.machine_id: {part: list(part_gains(m.machine_id, part, part_of(reference_board))) for part in parts}
            for m in MACHINES
        },
        "captures": capture_rows,
        "reference_samples": len(reference_rows),
    }
    (out / "line.json").write_text(json.dumps(line, indent=1))
    return line


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def load(out: Path) -> dict:
    return json.loads((out / "line.json").read_text())


def unshifted(line: dict, capture: dict) -> bytes:
    """The capture as the reference machine would have stored it: what calibration should bring it back to."""
    return shot(reference_machine(line["reference_machine"]), Path(line["source"]) / capture["source_file"])
