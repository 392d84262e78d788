"""Labels from the review queue flow into retraining: decided answers -> one inbox batch (format ``review``) ->
the next dataset version built from a parent holds them and counts them ("confirmed from the line"); the blind
wall holds; a bad image is quarantined; a re-run makes no duplicates."""

from __future__ import annotations

from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import (
    Image,
    ImageChange,
    ImageStatus,
    IngestBatch,
    KeptAnswer,
    QuarantineEntry,
)
from aoi.store import ImageStore
from datasets.versions import build, manifest, register_blind
from ingest import steps
from ingest.line import LINE_FORMAT, origin_of
from tests.workbench.curation_helpers import stored_images
from tests.workbench.helpers import board
from tests.workbench.kept_helpers import START, keep, kept_answers
from workbench import review_queue

GRAY = ("PASS", "OPEN", "SHORT", "NICK", "SPUR", "SPURIOUS_COPPER", "PINHOLE")


def decide(settings, request_id: str, label: str, by: str = "erin") -> None:
    with db.session(settings.catalog_url) as s:
        review_queue.decide(s, request_id, label, by)


def answers(settings) -> dict[str, KeptAnswer]:
    with db.session(settings.catalog_url) as s:
        return {a.request_id: a for a in s.exec(select(KeptAnswer)).all()}


def images_of(settings, batch_id: int) -> list[Image]:
    with db.session(settings.catalog_url) as s:
        return list(s.exec(select(Image).where(Image.batch_id == batch_id).order_by(col(Image.id))).all())


def parent_version(settings) -> None:
    stored_images(settings, {label: 3 for label in GRAY})
    build(settings.catalog_url, "g-v1", source="gray", split="1:1:0", seed=1)


def test_labelled_answers_become_a_batch_the_next_version_holds_and_counts(settings):
    parent_version(settings)
    ids = kept_answers(settings, [("SHORT", 0.3), ("OPEN", 0.4), ("SPUR", 0.5), ("NICK", 0.6)])
    decide(settings, ids[0], "OPEN", by="erin")  # the model was wrong
    decide(settings, ids[1], "OPEN", by="rita")  # right, but unsure
    decide(settings, ids[2], "NOT_DEFECT")  # gray's class for it: PASS
    decide(settings, ids[3], "SKIP")  # no truth: stays out

    result = steps.confirmed_answers(settings, "gray")
    assert result is not None and result.format == LINE_FORMAT and result.status == "succeeded"
    assert (result.added, result.quarantined, result.duplicates) == (3, 0, 0)
    assert result.by_label == {"OPEN": 2, "PASS": 1}
    made = images_of(settings, result.batch_id)
    kept = answers(settings)
    assert {i.origin: i.label for i in made} == {
        origin_of(ids[0]): "OPEN",
        origin_of(ids[1]): "OPEN",
        origin_of(ids[2]): "PASS",
    }
    first = next(i for i in made if i.origin == origin_of(ids[0]))
    assert (first.source, first.status, first.machine_id, first.part_no, first.upstream_code) == (
        "gray",
        ImageStatus.labeled,
        "AOI-1",
        "P-100",
        "SHORT",
    )
    assert first.captured_at is not None and first.captured_at.replace(tzinfo=None) == START.replace(tzinfo=None)
    assert first.sha256 == kept[ids[0]].sha256, "the kept bytes, never re-encoded"
    assert kept[ids[0]].image_id == first.id and kept[ids[3]].image_id is None
    with db.session(settings.catalog_url) as s:
        change = s.exec(select(ImageChange).where(ImageChange.image_id == first.id)).one()
        batch = db.get_row(s, IngestBatch, result.batch_id)
    assert (change.action, change.by, change.new_label) == ("review", "erin", "OPEN")
    assert ids[0] in change.reason and "SHORT" in change.reason
    assert batch.source == "gray" and batch.options["request_ids"] == sorted(ids[:3])

    child = build(settings.catalog_url, "g-v2", source="gray", split="1:1:0", seed=1, parent="g-v1")
    rules = {step["rule"]: step for step in child["cleaning"]}
    line = rules["confirmed from the line"]
    assert (line["images"], line["since_parent"]) == (3, 3)
    assert line["after"]["OPEN"] - line["before"]["OPEN"] == 2 and line["after"]["PASS"] - line["before"]["PASS"] == 1
    members = {r["image_id"]: r for r in manifest(settings.catalog_url, "g-v2")}
    assert {i.id for i in made} <= set(members) and members[first.id]["label"] == "OPEN"
    assert child["images"] == len(GRAY) * 3 + 3

    # A re-run makes no duplicates; a later decision makes the next batch, with only itself.
    assert steps.confirmed_answers(settings, "gray") is None
    decide(settings, ids[3], "NICK", by="rita")
    again = steps.confirmed_answers(settings, "gray")
    assert again is not None and again.added == 1 and again.batch_id != result.batch_id
    assert steps.confirmed_answers(settings, "gray") is None
    with db.session(settings.catalog_url) as s:
        assert len(s.exec(select(Image).where(col(Image.origin).startswith("kept-answer:"))).all()) == 4
    grandchild = build(settings.catalog_url, "g-v3", source="gray", split="1:1:0", seed=1, parent="g-v2")
    line = {step["rule"]: step for step in grandchild["cleaning"]}["confirmed from the line"]
    assert (line["images"], line["since_parent"]) == (4, 1)


def test_a_blind_image_sent_to_the_service_and_labelled_never_enters_a_split(settings):
    parent_version(settings)
    blind_ids = stored_images(settings, {"SHORT": 2}, size=40)
    with db.session(settings.catalog_url) as s:
        blind = [db.get_row(s, Image, i) for i in blind_ids]
    register_blind(settings.catalog_url, "blind-0717", shas={b.sha256 for b in blind}, date="2026-07-17")
    store = ImageStore(settings.store_dir)
    same = keep(settings, store.get(blind[0].sha256), request_id="blind-same", label="OPEN", confidence=0.2)
    other = keep(settings, store.get(blind[1].sha256), request_id="blind-other", label="OPEN", confidence=0.2)
    assert same.sha256 == blind[0].sha256
    decide(settings, "blind-same", "SHORT")  # what the blind set says too
    decide(settings, "blind-other", "OPEN")  # a person disagreeing with the blind set's label

    result = steps.confirmed_answers(settings, "gray")
    assert result is not None and result.added == 0 and result.duplicates == 1 and result.quarantined == 1
    assert answers(settings)["blind-same"].image_id == blind[0].id, "linked to the blind image, not copied"
    with db.session(settings.catalog_url) as s:
        conflict = s.exec(select(QuarantineEntry).where(QuarantineEntry.origin == origin_of(other.request_id))).one()
        assert db.get_row(s, Image, blind_ids[1]).label == "SHORT", "the blind set's label stays"
    assert "label conflict" in conflict.reason
    child = build(settings.catalog_url, "g-v2", source="gray", split="1:1:0", seed=1, parent="g-v1")
    held = {r["sha256"] for r in manifest(settings.catalog_url, "g-v2")}
    assert not held & {b.sha256 for b in blind}
    assert child["dropped_blind"] >= 1
    assert steps.confirmed_answers(settings, "gray") is None, "a re-run quarantines nothing twice"


def test_a_bad_image_goes_to_the_quarantine_with_its_reason_once(settings):
    ids = kept_answers(settings, [("SHORT", 0.3), ("OPEN", 0.3)])
    decide(settings, ids[0], "BAD_IMAGE", by="rita")
    result = steps.confirmed_answers(settings, "gray")
    assert result is not None and (result.added, result.quarantined) == (0, 1)
    with db.session(settings.catalog_url) as s:
        entries = s.exec(select(QuarantineEntry)).all()
        assert not s.exec(select(Image)).all()
    assert len(entries) == 1
    entry = entries[0]
    assert entry.origin == origin_of(ids[0]) and entry.batch_id == result.batch_id
    assert "bad image" in entry.reason and "rita" in entry.reason
    assert entry.fingerprint == answers(settings)[ids[0]].sha256 and entry.kept
    assert ImageStore(settings.quarantine_dir).has(entry.fingerprint)
    assert steps.confirmed_answers(settings, "gray") is None
    with db.session(settings.catalog_url) as s:
        assert len(s.exec(select(QuarantineEntry)).all()) == 1


def test_not_a_defect_on_colour_stays_out_of_training_and_kinds_stay_apart(settings):
    color = kept_answers(settings, [("SHORT", 0.3), ("OPEN", 0.3)], kind="color", seed=3)
    gray = kept_answers(settings, [("SHORT", 0.3)], seed=4)
    decide(settings, color[0], "NOT_DEFECT")
    decide(settings, gray[0], "SHORT")
    assert steps.confirmed_answers(settings, "color") is None, "no class for it: nothing to train on"
    decide(settings, color[1], "MISSING_HOLE")
    result = steps.confirmed_answers(settings, "color")
    assert result is not None and result.by_label == {"MISSING_HOLE": 1} and result.skipped == 1
    assert any("not a defect" in w for w in result.warnings)
    assert [i.source for i in images_of(settings, result.batch_id)] == ["color"]
    assert answers(settings)[gray[0]].image_id is None, "gray answers wait for the gray retraining"


def test_an_image_the_upload_rules_refuse_is_quarantined_not_trained(settings):
    keep(settings, board(77, (12, 12), "L"), request_id="tiny", label="SHORT")
    decide(settings, "tiny", "SHORT")
    result = steps.confirmed_answers(settings, "gray")
    assert result is not None and (result.added, result.quarantined) == (0, 1)
    with db.session(settings.catalog_url) as s:
        entry = s.exec(select(QuarantineEntry)).one()
    assert "upload rule min size" in entry.reason
    assert steps.confirmed_answers(settings, "gray") is None


def test_the_batch_on_sqlite_and_postgresql(catalog_url, configure):
    settings = configure()
    ids = kept_answers(settings, [("SHORT", 0.3), ("OPEN", 0.4), ("SPUR", 0.5)])
    decide(settings, ids[0], "NICK")
    decide(settings, ids[1], "BAD_IMAGE")
    result = steps.confirmed_answers(settings, "gray")
    assert result is not None and (result.added, result.quarantined, result.by_label) == (1, 1, {"NICK": 1})
    assert steps.confirmed_answers(settings, "gray") is None
    kept = answers(settings)
    assert kept[ids[0]].image_id is not None and kept[ids[1]].image_id is None and kept[ids[2]].image_id is None


def test_an_image_the_catalog_held_unlabelled_takes_the_answer_s_label(settings):
    from aoi.image_metrics import measure
    from ingest import records
    from ingest.candidate import Candidate
    from ingest.pipeline import Measured

    data = board(4242, (48, 40), "L")
    sha = ImageStore(settings.store_dir, fsync=False).put(data)
    batch = records.open_batch(settings.catalog_url, "folder", "/line/unlabelled", {"source": "gray"})
    unlabelled = Measured(Candidate(file="a.png", origin="/line/a.png"), data, sha, measure(data))
    records.record_chunk(settings.catalog_url, batch, [unlabelled], [], "gray")
    keep(settings, data, request_id="seen-before", label="SHORT")
    decide(settings, "seen-before", "SPUR", by="rita")
    result = steps.confirmed_answers(settings, "gray")
    assert result is not None and (result.added, result.duplicates) == (0, 1)
    assert any("held unlabelled" in w for w in result.warnings)
    with db.session(settings.catalog_url) as s:
        image = s.exec(select(Image).where(Image.sha256 == sha)).one()
        change = s.exec(select(ImageChange).where(ImageChange.image_id == image.id)).one()
    assert (image.label, image.status, image.batch_id) == ("SPUR", ImageStatus.labeled, batch)
    assert (change.action, change.by, change.new_label) == ("review", "rita", "SPUR")
    assert answers(settings)["seen-before"].image_id == image.id
    version = build(settings.catalog_url, "g-v1", source="gray", split="1:0:0")
    assert {step["rule"]: step for step in version["cleaning"]}["confirmed from the line"]["images"] == 1
