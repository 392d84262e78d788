"""Curation in the catalog (SQLite and PostgreSQL): each action on one image and on a selection, refusals that
change nothing, the history, validation's exclusions, the blind wall, and the next dataset version's counts."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import (
    DatasetVersion,
    Exclusion,
    HashClaim,
    Image,
    ImageChange,
    ImageStatus,
    SpecRecord,
    ValidationRun,
)
from datasets.versions import build, describe, manifest, register_blind
from tests.workbench.curation_helpers import crops
from workbench import curation
from workbench.curation import CurationError


def image(url: str, image_id: int) -> Image:
    with db.session(url) as s:
        return db.get_row(s, Image, image_id)


def changes(url: str) -> list[ImageChange]:
    with db.session(url) as s:
        return list(s.exec(select(ImageChange).order_by(col(ImageChange.id))).all())


def test_relabel_changes_the_label_and_records_who_when_why_and_before_after(catalog_url):
    ids = crops(catalog_url, 2)
    target = ids["PASS"][0]
    with db.session(catalog_url) as s:
        made = curation.relabel(s, [target], "OPEN", "ann", "  the trace is broken  ", via="cli")
        summary = curation.summary(s, made)
    assert image(catalog_url, target).label == "OPEN" and image(catalog_url, target).status == ImageStatus.labeled
    (row,) = changes(catalog_url)
    assert (row.image_id, row.action, row.old_label, row.new_label) == (target, "relabel", "PASS", "OPEN")
    assert (row.old_status, row.new_status, row.by, row.via) == ("labeled", "labeled", "ann", "cli")
    assert row.reason == "the trace is broken" and row.at is not None
    assert summary["changed"] == 1 and summary["images"][0]["old_label"] == "PASS"
    # Names resolve as at ingest (the label map's aliases); a name it does not know is refused.
    with db.session(catalog_url) as s:
        curation.relabel(s, [target], "mouse bite", "ann", "it is a bite")
        assert [c.new_label for c in curation.history(s, target)] == ["OPEN", "NICK"]


def test_a_selection_changes_in_one_transaction_and_a_no_op_refuses_all_of_it(catalog_url):
    ids = crops(catalog_url, 3)
    chosen = ids["OPEN"]
    with db.session(catalog_url) as s:
        made = curation.exclude(s, chosen + chosen[:1], "ann", "blurred")  # a repeated id counts once
    assert [c.image_id for c in made] == chosen
    for image_id in chosen:
        row = image(catalog_url, image_id)
        assert row.status == ImageStatus.excluded and row.status_reason == "excluded by ann: blurred"
    before = len(changes(catalog_url))
    fresh = ids["SHORT"][0]
    with db.session(catalog_url) as s, pytest.raises(CurationError, match=f"image {chosen[0]} is already excluded"):
        curation.exclude(s, [fresh, chosen[0]], "ann", "again")
    assert image(catalog_url, fresh).status == ImageStatus.labeled, "a refused selection changes none of its images"
    with db.session(catalog_url) as s, pytest.raises(CurationError, match="already SHORT"):
        curation.relabel(s, [fresh], "SHORT", "ann", "same")
    assert len(changes(catalog_url)) == before, "a refusal is not recorded"


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda s, i: curation.delete(s, [i, 999_999], "ann", "x"), "no image 999999"),
        (lambda s, i: curation.relabel(s, [i], "SCRATCH", "ann", "x"), "unknown label 'SCRATCH'"),
        (lambda s, i: curation.relabel(s, [i], "MISSING_HOLE", "ann", "x"), "not a label of gray images"),
        (lambda s, i: curation.exclude(s, [i], "ann", "   "), "a reason is required"),
        (lambda s, i: curation.exclude(s, [i], "", "x"), "who made the change"),
        (lambda s, i: curation.exclude(s, [], "ann", "x"), "no images selected"),
        (lambda s, i: curation.exclude(s, [i], "ann", "x", via="mail"), "via must be web or cli"),
        (lambda s, i: curation.restore(s, [i], "ann", "x"), "is labeled, not excluded or deleted"),
    ],
)
def test_refusals_change_nothing(settings, call, message):
    ids = crops(settings.catalog_url, 1)
    target = ids["PASS"][0]
    with db.session(settings.catalog_url) as s, pytest.raises(CurationError, match=message):
        call(s, target)
    assert image(settings.catalog_url, target).label == "PASS"
    assert image(settings.catalog_url, target).status == ImageStatus.labeled
    assert changes(settings.catalog_url) == []


def test_a_colour_image_takes_colour_labels_only(settings):
    ids = crops(settings.catalog_url, 1, source="color")
    target = ids["OPEN"][0]
    assert "PASS" not in curation.valid_labels("color") and "MISSING_HOLE" in curation.valid_labels("color")
    with db.session(settings.catalog_url) as s:
        with pytest.raises(CurationError, match="PASS is not a label of color images"):
            curation.relabel(s, [target], "PASS", "ann", "x")
        curation.relabel(s, [target], "MISSING_HOLE", "ann", "drill missed")
    assert image(settings.catalog_url, target).label == "MISSING_HOLE"


def test_delete_is_soft_and_restore_brings_back_deleted_and_validation_excluded_images(catalog_url):
    ids = crops(catalog_url, 2)
    deleted, by_validation = ids["PASS"][0], ids["OPEN"][0]
    with db.session(catalog_url) as s:
        spec = SpecRecord(name="t", version=1, yaml="name: t")
        s.add(spec)
        s.flush()
        run = ValidationRun(spec_id=db.saved_id(spec), scope="source:gray")
        s.add(run)
        s.flush()
        s.add(Exclusion(image_id=by_validation, run_id=db.saved_id(run), reasons=["brightness"]))
        row = db.get_row(s, Image, by_validation)
        row.status, row.status_reason = ImageStatus.excluded, "spec t@1: brightness"
        s.add(row)
        s.commit()
        curation.delete(s, [deleted], "ann", "duplicate of another shot")
    gone = image(catalog_url, deleted)
    assert gone.status == ImageStatus.deleted and gone.sha256 and gone.label == "PASS"  # the row (and bytes) stay
    with db.session(catalog_url) as s, pytest.raises(CurationError, match="is deleted: restore it first"):
        curation.relabel(s, [deleted], "OPEN", "ann", "x")
    with db.session(catalog_url) as s:
        made = curation.restore(s, [deleted, by_validation], "bob", "looked again")
    assert [(c.old_status, c.new_status) for c in made] == [("deleted", "labeled"), ("excluded", "labeled")]
    assert image(catalog_url, by_validation).status_reason == "restored by bob: looked again"
    with db.session(catalog_url) as s:
        (exclusion,) = s.exec(select(Exclusion)).all()
    assert exclusion.restored_at is not None and (exclusion.restored_by, exclusion.restore_note) == (
        "bob",
        "looked again",
    )


def test_an_account_curates_only_when_enabled_and_an_engineer_or_reviewer(settings):
    from tests.workbench.curation_helpers import account

    url = settings.catalog_url
    for name, role, disabled in [("eve", "engineer", False), ("rita", "reviewer", False), ("vic", "viewer", False)]:
        account(url, name, role, disabled)
    account(url, "old", "engineer", disabled=True)
    with db.session(url) as s:
        assert curation.curator(s, "eve").name == "eve" and curation.curator(s, "rita").role == "reviewer"
        for name, message in [("vic", "viewers read"), ("old", "disabled"), ("nobody", "no workbench account")]:
            with pytest.raises(CurationError, match=message):
                curation.curator(s, name)


def test_nothing_crosses_the_blind_wall(catalog_url):
    ids = crops(catalog_url, 6)
    blind_ids = [ids["PASS"][0], ids["OPEN"][0], ids["SHORT"][0]]
    with db.session(catalog_url) as s:
        blind_shas = {db.get_row(s, Image, i).sha256 for i in blind_ids}
    register_blind(catalog_url, "blind-1", shas=blind_shas, date="2026-07-17")
    relabelled, deleted = ids["PASS"][0], ids["OPEN"][0]
    with db.session(catalog_url) as s:
        made = curation.relabel(s, [relabelled], "OPEN", "ann", "it is open")
        assert curation.summary(s, made)["images"][0]["blind"] is True
        curation.delete(s, [deleted], "ann", "not a defect")
        curation.restore(s, [deleted], "ann", "it is one")
        curation.delete(s, [deleted], "ann", "not a defect after all")
    version = build(catalog_url, "g-v1", source="gray", split="1:1:0")
    assert not {r["sha256"] for r in manifest(catalog_url, "g-v1")} & blind_shas
    assert version["dropped_blind"] == 3  # the wall comes first: the deleted blind image is still behind it
    with db.session(catalog_url) as s:
        claims = {c.sha256: c.role for c in s.exec(select(HashClaim)).all()}
    assert all(claims[sha] == "blind" for sha in blind_shas), "a change never moves a claim"
    # The blind set's next version: the deleted image leaves it, the relabelled one carries its new label.
    register_blind(catalog_url, "blind-2", shas=blind_shas, date="2026-07-20")
    labels = {r["image_id"]: r["label"] for r in manifest(catalog_url, "blind-2")}
    assert deleted not in labels and labels[relabelled] == "OPEN" and len(labels) == 2
    assert {r["image_id"] for r in manifest(catalog_url, "blind-1")} == set(blind_ids), "versions never change"


def test_the_next_version_takes_current_labels_leaves_out_what_people_removed_and_counts_both(catalog_url):
    ids = crops(catalog_url, 10)
    parent = build(catalog_url, "g-v1", source="gray", split="1:1:0")
    assert [s["rule"] for s in parent["cleaning"]] == ["not in a blind test set", "not excluded by validation"]
    frozen = manifest(catalog_url, "g-v1")
    relabelled, deleted, excluded = ids["PASS"][:2], ids["OPEN"][0], ids["SHORT"][0]
    with db.session(catalog_url) as s:
        curation.relabel(s, relabelled, "SHORT", "ann", "bridged")
        curation.delete(s, [deleted], "ann", "out of focus")
        curation.exclude(s, [excluded], "ann", "two defects in one crop")
    child = build(catalog_url, "g-v2", source="gray", split="1:1:0", parent="g-v1")
    steps = {step["rule"]: step for step in child["cleaning"]}
    assert list(steps) == [
        "relabelled by a person",
        "not in a blind test set",
        "removed by a person",
        "not excluded by validation",
    ]
    relabel = steps["relabelled by a person"]
    assert relabel["images"] == 2
    assert relabel["before"] == {"OPEN": 10, "PASS": 10, "SHORT": 10}
    assert relabel["after"] == {"OPEN": 10, "PASS": 8, "SHORT": 12}
    removed = steps["removed by a person"]
    assert (removed["images"], removed["since_parent"]) == (2, 2)
    assert removed["after"] == {"OPEN": 9, "PASS": 8, "SHORT": 11}
    rows = {r["image_id"]: r["label"] for r in manifest(catalog_url, "g-v2")}
    assert all(rows[i] == "SHORT" for i in relabelled) and deleted not in rows and excluded not in rows
    assert child["images"] == 28 and child["lineage"] == ["g-v1"]
    assert manifest(catalog_url, "g-v1") == frozen and describe(catalog_url, "g-v1")["cleaning"] == parent["cleaning"]
    # A grandchild counts only what changed since its own parent: the restored image comes back, nothing was
    # relabelled since g-v2, and the deleted image is still removed (by a person, before g-v2).
    with db.session(catalog_url) as s:
        curation.restore(s, [excluded], "ann", "one defect after all")
    grandchild = build(catalog_url, "g-v3", source="gray", split="1:1:0", parent="g-v2")
    steps = {step["rule"]: step for step in grandchild["cleaning"]}
    assert steps["relabelled by a person"]["images"] == 0
    assert (steps["removed by a person"]["images"], steps["removed by a person"]["since_parent"]) == (1, 0)
    assert excluded in {r["image_id"] for r in manifest(catalog_url, "g-v3")} and grandchild["images"] == 29
    with db.session(catalog_url) as s:
        assert s.exec(select(DatasetVersion).where(DatasetVersion.name == "g-v3")).one().parent == "g-v2"


def test_validation_leaves_a_persons_exclusion_and_a_deletion_alone(settings):
    from validation.engines import Verdict
    from validation.records import Scope, metrics_frame, restore, shipped_spec
    from validation.specs import parse_spec
    from validation.steps import exclude, start_run

    url = settings.catalog_url
    ids = crops(url, 2)
    by_person, deleted, plain = ids["PASS"][0], ids["PASS"][1], ids["OPEN"][0]
    with db.session(url) as s:
        curation.exclude(s, [by_person], "ann", "two defects")
        curation.delete(s, [deleted], "ann", "duplicate")
        spec = SpecRecord(name="t", version=1, yaml="name: t")
        s.add(spec)
        s.commit()
    assert deleted not in set(metrics_frame(settings, Scope(source="gray"))["id"])
    run_id = start_run(settings, db.saved_id(spec), Scope(source="gray"))
    failed = {i: ["brightness"] for i in (by_person, deleted, plain)}
    shipped = shipped_spec("vrs-capture-2023")
    assert shipped is not None
    spec_model = parse_spec(shipped.read_text())
    exclude(settings, run_id, spec_model, Verdict(failed=failed, evaluated=3))
    assert image(url, plain).status == ImageStatus.excluded
    assert image(url, by_person).status_reason == "excluded by ann: two defects"
    assert image(url, deleted).status == ImageStatus.deleted
    assert restore(settings, run_id=run_id, by="bob") == 1
    assert image(url, by_person).status == ImageStatus.excluded, "restoring a run never undoes a person's exclusion"
