"""End to end: a relabel and a deletion made through the workbench's routes reach the next dataset version built
from a parent (its cleaning table counts them) and the model trained on it: the labels the training run's data
loader gave the network are the person's, and the deleted image is not among them.

The training is the run's own steps without Ray (Ray's fixed cost is tested in tests/training): ``prepare`` makes
the run's TrainSpec from the version's manifest, the workers' loaders (``training.trainer._loaders``) read it,
``training.loop.fit`` trains one epoch, and ``runs.register`` records the candidate model version."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlmodel import select

from aoi.catalog import db
from aoi.catalog.models import Image, ModelVersion, TrainingRun, UserRole
from datasets.versions import build, manifest
from tests.workbench.curation_helpers import stored_images
from tests.workbench.helpers import logged_in, token

pytestmark = pytest.mark.slow

GRAY = ("PASS", "OPEN", "SHORT", "NICK", "SPUR", "SPURIOUS_COPPER", "PINHOLE")


def test_a_relabel_and_a_deletion_in_the_workbench_reach_the_next_version_and_the_model(settings, client):
    import torch

    from training import runs, steps
    from training.loop import fit
    from training.model import build_model
    from training.params import TrainParams
    from training.taxonomy import Taxonomy
    from training.trainer import _loaders

    ids = stored_images(settings, {label: 6 for label in GRAY})
    build(settings.catalog_url, "g-v1", source="gray", split="1:1:0", seed=1)
    with db.session(settings.catalog_url) as s:
        images = {i: db.get_row(s, Image, i) for i in ids}
    relabelled = next(i for i in ids if images[i].label == "PASS")
    deleted = next(i for i in ids if images[i].label == "SPUR")

    logged_in(client, UserRole.engineer, "erin")
    for path, data in [
        (f"/images/{relabelled}/relabel", {"label": "PINHOLE", "reason": "a pinhole in the pad"}),
        (f"/images/{deleted}/delete", {"reason": "two boards in one shot"}),
    ]:
        response = client.post(path, data={**data, "csrf_token": token(client)}, follow_redirects=False)
        assert response.status_code == 303, response.text

    child = build(settings.catalog_url, "g-v2", source="gray", split="1:1:0", seed=1, parent="g-v1")
    steps_by_rule = {step["rule"]: step for step in child["cleaning"]}
    assert steps_by_rule["relabelled by a person"]["images"] == 1
    assert steps_by_rule["removed by a person"]["images"] == 1
    assert child["images"] == len(ids) - 1
    members = {r["image_id"]: r for r in manifest(settings.catalog_url, "g-v2")}
    assert members[relabelled]["label"] == "PINHOLE" and deleted not in members
    old = {r["image_id"]: r["label"] for r in manifest(settings.catalog_url, "g-v1")}
    assert old[relabelled] == "PASS" and deleted in old, "the parent version never changes"

    params = TrainParams(dataset="g-v2", epochs=1, per_class=4, batch_size=8, input_size=32, augment=False)
    spec, info = steps.prepare(settings, params)
    run_id = steps.start_run(settings, params, info)
    train_loader, valid_loader, classes = _loaders(spec, 0, 1)
    taxonomy = Taxonomy.from_dict(spec.taxonomy)
    seen = {}  # sha256 -> the class index the loaders give the network, as the workers read them
    for loader in (train_loader, valid_loader):
        for (sha, _), target in zip(loader.dataset.items, loader.dataset.targets, strict=True):
            seen[sha] = taxonomy.fine[target]
    assert seen[images[relabelled].sha256] == "PINHOLE"
    assert images[deleted].sha256 not in seen and len(seen) == child["images"]

    torch.manual_seed(0)
    model = build_model(spec.arch, classes, spec.prep.channels)
    kept: dict = {}
    history = fit(
        model,
        train_loader,
        valid_loader,
        spec.loop,
        torch.device("cpu"),
        classes,
        lambda epoch, metrics, state: kept.update(metrics=metrics, state=state),
    )
    result = runs.register(settings, run_id, spec, kept["state"]["model"], kept["metrics"], history)
    assert result["status"] == "succeeded" and result["dataset"] == "g-v2"
    with db.session(settings.catalog_url) as s:
        run = db.get_row(s, TrainingRun, run_id)
        model_row = s.exec(select(ModelVersion).where(ModelVersion.run_id == run_id)).one()
    assert (run.labelled_images, run.label_kinds) == (child["images"], len(GRAY))
    assert model_row.dataset == "g-v2" and model_row.version == result["model_version"]
    # The run's own evaluation counted the valid images per true class as the person labelled them.
    valid = Counter(r["label"] for r in members.values() if r["split"] == "valid")
    support = {taxonomy.fine[i]: sum(row) for i, row in enumerate(kept["metrics"]["confusion"])}
    assert support == {label: valid.get(label, 0) for label in taxonomy.fine}
