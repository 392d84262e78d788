"""Helpers the flow tests share: the CLI driven as a script would, small data sets."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

from cli import app
from tests.helpers import class_folder, encode, write

GRAY_FOLDERS = {
    "PASS": 6,
    "Open_circuit": 6,
    "Short": 6,
    "Mouse_bite": 6,
    "Spur": 6,
    "Spurious_copper": 6,
    "Pin_hole": 6,
}

IN_SPEC = (175, 163, 140)  # brightness ~164, R-G 12, R-B 35, G-B 23, B diff 29: inside the VRS capture spec


def aoi(*args: str, code: int = 0) -> Any:
    """The command's ``--json`` output: an object or a list, as each command documents (tests index it freely)."""
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == code, f"{result.stdout}\n{result.stderr}\n{result.exception!r}"
    return json.loads(result.stdout)


def ingest(path: Path, *options: str, code: int = 0) -> Any:
    return aoi("ingest", str(path), "--no-progress", *options, code=code)


def manifest(name: str) -> list[dict]:
    result = CliRunner().invoke(app, ["dataset", "manifest", name])
    assert result.exit_code == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.stdout)))


def gray_dataset(tmp_path, name="g-v1", folders=GRAY_FOLDERS, split="1:1:0") -> dict:
    ingest(class_folder(tmp_path / "gray", folders), "--source", "gray")
    return aoi("dataset", "build", name, "--source", "gray", "--seed", "1", "--split", split)


def vrs_images(folder, n: int, scale: float = 1.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        arr = np.clip(np.array(IN_SPEC) * scale + rng.normal(0, 2, (48, 48, 3)), 0, 255).astype(np.uint8)
        write(folder / "Spur" / f"vrs_{seed}_{i}.jpg", encode(arr, fmt="JPEG", mode="RGB"))
    return folder
