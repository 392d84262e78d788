"""End to end on real PKU colour crops, through the steps (no Ray, no Prefect server): a parent version and a blind
set ingested from real files; answers kept with real bytes (one of them a blind crop sent to the service) are
labelled in the queue's page and from the CLI, one called a bad image; the retrain path's steps (confirmed answers
-> freeze from the parent -> the training run's loaders -> one epoch -> the model registered) hold the confirmed
images with the people's labels, never the blind crop, and the cleaning table counts them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select
from typer.testing import CliRunner

from aoi.catalog import db
from aoi.catalog.models import KeptAnswer, QuarantineEntry, UserRole
from aoi.store import ImageStore
from cli import app
from tests.workbench.helpers import logged_in, token
from tests.workbench.kept_helpers import keep

pytestmark = pytest.mark.slow

CLASSES = {
    "Missing_hole": "MISSING_HOLE",
    "Mouse_bite": "NICK",
    "Open_circuit": "OPEN",
    "Short": "SHORT",
    "Spur": "SPUR",
    "Spurious_copper": "SPURIOUS_COPPER",
}


def crops(datasets_dir: Path, folder: str, board: str, n: int) -> list[Path]:
    return sorted((datasets_dir / "pku-pcb-roi" / folder).glob(f"{board}_*.jpg"))[:n]


def ingest_folder(settings, root: Path) -> int:
    """The ingest flow's steps in order, on one chunk (the flow's Prefect wiring is tested elsewhere)."""
    from ingest import steps

    batch = steps.open_batch(settings, str(root), "folder", {"source": "color"}, None)
    found = steps.discover(settings, str(root), "folder")
    chunk = list(found.candidates)
    hashed = steps.hash_and_dedupe(settings, chunk)
    checked = steps.store(settings, steps.decode_and_measure(settings, hashed))
    steps.catalog(settings, batch, checked, hashed, "color")
    steps.finish(settings, batch, steps.Tally(discovered=len(chunk)), found)
    return batch


def test_real_crops_labelled_in_the_queue_reach_the_next_version_and_the_model(settings, datasets_dir, tmp_path):
    import torch

    from datasets.versions import build, manifest, register_blind
    from ingest import steps as ingest_steps
    from training import runs
    from training import steps as training_steps
    from training.loop import fit
    from training.model import build_model
    from training.params import TrainParams
    from training.taxonomy import Taxonomy
    from training.trainer import _loaders
    from workbench.app import create_app

    train_root, blind_root = tmp_path / "train", tmp_path / "blind"
    for folder in CLASSES:
        for path in crops(datasets_dir, folder, "01", 4):
            (train_root / folder).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, train_root / folder / path.name)
    for folder in ("Short", "Spur"):
        for path in crops(datasets_dir, folder, "11", 2):  # board 11: the demo's held-out board
            (blind_root / folder).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, blind_root / folder / path.name)
    ingest_folder(settings, train_root)
    build(settings.catalog_url, "c-v1", source="color", split="1:1:0", seed=1)
    blind_batch = ingest_folder(settings, blind_root)
    register_blind(settings.catalog_url, "blind-0720", batch_id=blind_batch, date="2026-07-20")

    # What the service keeps: real bytes of unseen boards (10) and one crop of the blind board.
    line = {
        "short-10": crops(datasets_dir, "Short", "10", 1)[0],
        "spur-10": crops(datasets_dir, "Spur", "10", 1)[0],
        "open-10": crops(datasets_dir, "Open_circuit", "10", 1)[0],
        "smeared": crops(datasets_dir, "Mouse_bite", "10", 1)[0],
        "blind": crops(datasets_dir, "Short", "11", 1)[0],
    }
    for request_id, path in line.items():
        keep(settings, path.read_bytes(), request_id=request_id, kind="color", label="SPUR", confidence=0.4)

    with TestClient(create_app(settings)) as client:
        logged_in(client, UserRole.engineer, "erin")
        for request_id, label in [("short-10", "SHORT"), ("blind", "SHORT"), ("smeared", "BAD_IMAGE")]:
            response = client.post(
                f"/review/{request_id}/decision",
                data={"label": label, "csrf_token": token(client, "/review")},
                follow_redirects=False,
            )
            assert response.status_code == 303
    for request_id, label in [("spur-10", "SPUR"), ("open-10", "open circuit")]:
        said = CliRunner().invoke(app, ["review", "label", request_id, label, "--by", "erin"])
        assert said.exit_code == 0, said.stderr

    batch = ingest_steps.confirmed_answers(settings, "color")
    assert batch is not None and batch.by_label == {"OPEN": 1, "SHORT": 1, "SPUR": 1}
    assert (batch.duplicates, batch.quarantined) == (1, 1)
    child = build(settings.catalog_url, "c-v2", source="color", split="1:1:0", seed=1, parent="c-v1")
    rules = {step["rule"]: step for step in child["cleaning"]}
    assert rules["confirmed from the line"]["images"] == 3
    with db.session(settings.catalog_url) as s:
        kept = {a.request_id: a for a in s.exec(select(KeptAnswer)).all()}
        entry = s.exec(select(QuarantineEntry).where(QuarantineEntry.fingerprint == kept["smeared"].sha256)).one()
    assert "bad image" in entry.reason and "erin" in entry.reason
    members = {r["sha256"]: r for r in manifest(settings.catalog_url, "c-v2")}
    assert {members[kept[r].sha256]["label"] for r in ("short-10", "spur-10", "open-10")} == {"SHORT", "SPUR", "OPEN"}
    assert kept["blind"].sha256 not in members and kept["smeared"].sha256 not in members
    assert ImageStore(settings.store_dir).get(kept["short-10"].sha256) == line["short-10"].read_bytes()

    params = TrainParams(dataset="c-v2", epochs=1, per_class=8, batch_size=8, input_size=32, augment=False)
    spec, info = training_steps.prepare(settings, params)
    run_id = training_steps.start_run(settings, params, info)
    train_loader, valid_loader, classes = _loaders(spec, 0, 1)
    taxonomy = Taxonomy.from_dict(spec.taxonomy)
    seen = {}
    for loader in (train_loader, valid_loader):
        for (sha, _), target in zip(loader.dataset.items, loader.dataset.targets, strict=True):
            seen[sha] = taxonomy.fine[target]
    assert seen[kept["short-10"].sha256] == "SHORT" and seen[kept["open-10"].sha256] == "OPEN"
    assert kept["blind"].sha256 not in seen, "the blind wall holds"
    torch.manual_seed(0)
    model = build_model(spec.arch, classes, spec.prep.channels)
    last: dict = {}
    history = fit(
        model,
        train_loader,
        valid_loader,
        spec.loop,
        torch.device("cpu"),
        classes,
        lambda epoch, metrics, state: last.update(metrics=metrics, state=state),
    )
    registered = runs.register(settings, run_id, spec, last["state"]["model"], last["metrics"], history)
    assert registered["status"] == "succeeded" and registered["dataset"] == "c-v2"

    # The new model's answers come back to the queue; its Grad-CAM is computed on demand, then cached.
    fresh = crops(datasets_dir, "Spur", "10", 2)[1]
    keep(settings, fresh.read_bytes(), request_id="next", kind="color", model_version=registered["model_version"])
    with TestClient(create_app(settings)) as client:
        logged_in(client, UserRole.viewer)
        assert 'href="/review/next/gradcam.png"' in client.get("/review?request_id=next").text
        heat = client.get("/review/next/gradcam.png")
        assert heat.status_code == 200 and heat.headers["content-type"] == "image/png"
        assert (
            heat.content[:8] == b"\x89PNG\r\n\x1a\n" and client.get("/review/next/gradcam.png").content == heat.content
        )
