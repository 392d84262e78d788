"""Kept answers (serving/keep.py): which answers are kept and why, the sample, the quota, the bounded queue."""

from __future__ import annotations

import time

from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import Image, IngestBatch, KeptAnswer
from aoi.store import ImageStore, sha256_of
from serving.keep import AnswerKeeper, reason_for, sampled
from tests.serving.helpers import TOP, png, tone
from tests.serving.helpers import an_answer as answer


def kept(settings) -> list[KeptAnswer]:
    with db.session(settings.catalog_url) as s:
        return list(s.exec(select(KeptAnswer).order_by(col(KeptAnswer.id))).all())


def test_doubtful_answers_are_kept_with_their_reason_top3_and_bytes(configure):
    settings = configure(SERVING__KEEP_SHARE=0)
    keeper = AnswerKeeper(settings).start()
    images = {f"r{i}": png(seed=i) for i in range(4)}
    offered = [
        keeper.offer(answer("r0", unknown=True, route="VRS"), images["r0"], sha256_of(images["r0"])),
        keeper.offer(answer("r1", route="REVIEW"), images["r1"], sha256_of(images["r1"])),
        keeper.offer(answer("r2", route="VRS"), images["r2"], sha256_of(images["r2"])),
        keeper.offer(answer("r3"), images["r3"], sha256_of(images["r3"])),  # confident, share 0: not kept
    ]
    assert keeper.close() == 0
    assert offered == ["unknown", "review", "vrs", None]
    rows = kept(settings)
    assert [(r.request_id, r.reason, r.status) for r in rows] == [
        ("r0", "unknown", "waiting"),
        ("r1", "review", "waiting"),
        ("r2", "vrs", "waiting"),
    ]
    first = rows[0]
    assert first.top == [list(t) for t in TOP] and first.label == "UNKNOWN" and first.confidence == TOP[0][1]
    assert (first.machine_id, first.part_no, first.upstream_code, first.kind) == ("aoi-2", "P-7", "SHORT", "gray")
    store = ImageStore(settings.store_dir)
    for row in rows:  # the exact bytes received, under their digest
        assert store.get(row.sha256) == images[row.request_id] and row.bytes == len(images[row.request_id])
    assert keeper.describe()["by_reason"] == {"review": 1, "vrs": 1, "unknown": 1, "sample": 0}


def test_the_sample_is_close_to_the_share_and_the_same_for_the_same_request():
    ids = [f"{i:032x}" for i in range(20_000)]
    for share in (0.02, 0.25):
        hits = sum(sampled(i, share) for i in ids)
        assert abs(hits / len(ids) - share) < 4 * (share * (1 - share) / len(ids)) ** 0.5  # within 4 sigma
    assert [sampled(i, 0.5) for i in ids[:50]] == [sampled(i, 0.5) for i in ids[:50]]
    assert not any(sampled(i, 0.0) for i in ids) and all(sampled(i, 1.0) for i in ids)
    assert reason_for(answer(ids[0]), 1.0) == "sample" and reason_for(answer(ids[0]), 0.0) is None


def test_sampled_answers_are_kept_in_their_share(configure):
    settings = configure(SERVING__KEEP_SHARE=0.3)
    keeper = AnswerKeeper(settings).start()
    data = png()
    ids = [f"s{i:05d}" for i in range(400)]
    for request_id in ids:
        keeper.offer(answer(request_id), data, sha256_of(data))
    keeper.close()
    rows = kept(settings)
    assert {r.request_id for r in rows} == {i for i in ids if sampled(i, 0.3)}
    assert 0.3 - 0.1 < len(rows) / len(ids) < 0.3 + 0.1 and {r.reason for r in rows} == {"sample"}


def test_over_the_quota_the_oldest_waiting_are_dropped_first_and_counted(configure):
    data = [png(seed=i) for i in range(6)]
    quota = sum(len(data[i]) for i in (1, 3, 4, 5))  # exactly what is left once the two oldest waiting are dropped
    settings = configure(SERVING__KEEP_SHARE=0, SERVING__KEEP_MAX_BYTES=quota)
    with db.session(settings.catalog_url) as s:  # an ingested image shares the bytes of the first answer
        batch = IngestBatch(key="k", format="folder", input_path="in", source="gray")
        s.add(batch)
        s.flush()
        s.add(
            Image(
                sha256=sha256_of(data[0]),
                file_name="x.png",
                origin="x.png",
                source="gray",
                width=32,
                height=32,
                mode="L",
                format="PNG",
                byte_size=len(data[0]),
                batch_id=db.saved_id(batch),
                bytes_per_pixel=1.0,
                compressed=True,
                **tone(),
            )
        )
        s.commit()
    keeper = AnswerKeeper(settings).start()
    for i in range(3):
        keeper.offer(answer(f"a{i}", route="REVIEW"), data[i], sha256_of(data[i]))
        assert keeper.idle()
    with db.session(settings.catalog_url) as s:  # a reviewed answer is never dropped, however old
        reviewed = s.exec(select(KeptAnswer).where(KeptAnswer.request_id == "a1")).one()
        reviewed.status = "labelled"
        s.add(reviewed)
        s.commit()
    for i in range(3, 6):
        keeper.offer(answer(f"a{i}", route="REVIEW"), data[i], sha256_of(data[i]))
        assert keeper.idle()
    keeper.close()
    status = {r.request_id: r.status for r in kept(settings)}
    assert status == {
        "a0": "dropped",
        "a1": "labelled",
        "a2": "dropped",
        "a3": "waiting",
        "a4": "waiting",
        "a5": "waiting",
    }
    assert sum(r.bytes for r in kept(settings) if r.status != "dropped") == quota
    described = keeper.describe()
    assert described["dropped"] == 2 and described["dropped_bytes"] == len(data[0]) + len(data[2])
    store = ImageStore(settings.store_dir)
    assert store.has(sha256_of(data[0]))  # a catalog image still references these bytes
    assert not store.has(sha256_of(data[2])) and store.has(sha256_of(data[1]))


def test_a_full_queue_skips_the_keep_without_waiting_and_counts_it(configure):
    data = png(size=64)
    settings = configure(SERVING__KEEP_SHARE=1, SERVING__KEEP_QUEUE_BYTES=len(data) * 3)
    keeper = AnswerKeeper(settings)  # not started: nothing leaves the queue
    started = time.perf_counter()
    offered = [keeper.offer(answer(f"q{i}"), data, sha256_of(data)) for i in range(50)]
    assert time.perf_counter() - started < 0.5  # never waits
    assert offered[:3] == ["sample"] * 3 and offered[3:] == [None] * 47
    assert keeper.describe()["skipped_queue_full"] == 47 and keeper.describe()["queued"] == 3
    keeper.start()
    keeper.close()  # drains on close
    assert [r.request_id for r in kept(settings)] == ["q0", "q1", "q2"]
    assert keeper.offer(answer("late"), data, sha256_of(data)) is None  # closed: skipped, counted
    assert keeper.describe()["skipped_queue_full"] == 48
