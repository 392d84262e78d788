"""Helpers the feature tests share: a simulated line of machines and its captures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from PIL import Image

from demo.simulated_line import SimulatedMachine, write_csv

CLASSES = ("Missing_hole", "Mouse_bite", "Open_circuit", "Short", "Spur", "Spurious_copper")  # PKU folder names


T0 = datetime(2026, 3, 1, tzinfo=UTC)


SHIFTED = SimulatedMachine("vrs-7", (1.15, 0.9, 1.05), offset=12.0)


def board(n: int = 6, seed: int = 0) -> list[Image.Image]:
    """PCB-like crops: regions of dark background, green copper and bright pads (8 px blocks, as a board's features
    are larger than a pixel: pixel noise would be smoothed by the JPEG encoder and change the spread)."""
    rng = np.random.default_rng(seed)
    tones = np.array([(15, 60, 20), (30, 110, 40), (150, 150, 120)], dtype=np.float32)
    out = []
    for _ in range(n):
        cells = tones[rng.choice(3, size=(6, 6), p=(0.5, 0.35, 0.15))] + rng.normal(0, 4, (6, 6, 3))
        pixels = np.clip(np.kron(cells, np.ones((8, 8, 1))), 0, 255).astype(np.uint8)
        out.append(Image.fromarray(pixels, "RGB"))
    return out


def write_line(root, shots: dict[str, tuple[SimulatedMachine, datetime]], captures: int = 8):
    """Reference shots of one board per (machine, time), one manifest each (reference-<key>.csv: one session is one
    batch), and labelled captures of vrs-7 after the first shot (captures.csv)."""
    for key, (machine, at) in shots.items():
        rows = []
        for k, image in enumerate(board()):
            path = root / "reference" / key / f"ref_{k}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(machine.capture(image))
            rows.append(
                {
                    "path": path.relative_to(root).as_posix(),
                    "machine_id": machine.machine_id,
                    "part_no": "REF-BOARD",
                    "captured_at": at.isoformat(),
                }
            )
        write_csv(root / f"reference-{key}.csv", rows)
    rows = []
    for k, image in enumerate(board(captures, seed=5)):
        path = root / "captures" / f"cap_{k}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(SHIFTED.capture(image))
        rows.append(
            {
                "path": path.relative_to(root).as_posix(),
                "label": CLASSES[k % len(CLASSES)],
                "machine_id": SHIFTED.machine_id,
                "captured_at": (T0 + timedelta(days=1 + k)).isoformat(),
            }
        )
    write_csv(root / "captures.csv", rows)
