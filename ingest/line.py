"""Confirmed answers from the line become training data: the review queue's decisions as one inbox batch.

A kept answer a person labelled (``kept_answer``: status labelled, or "not a defect" where the kind's taxonomy has
a class for it: gray's PASS) becomes a labelled image of a batch of format ``review``: its bytes (already in the
image store, never re-encoded) go through the one ingest path (read, de-duplicate, decode and measure, the upload
rules), with the answer's kind as source, its machine, part and upstream code, capture time = when the service
kept it, and an ``image_change`` row (action ``review``) naming who labelled it and which answer it was. An answer
called a bad image goes to the quarantine with that reason. The answer's ``image_id`` then links the image, so a
re-run makes no duplicates.

Bytes the catalog holds already (a blind test image sent to the service, an image ingested before) make no new
image: the answer is linked to the existing one, whose label stays, and the blind wall (``hash_claim``) keeps a
blind image out of every training version whatever a person called it. The same bytes under another label are
a label conflict: quarantined, as at ingest. A "not a defect" without a class (colour) stays out of training: it
is a confirmed truth for live accuracy only.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from functools import partial

from sqlmodel import col, select

from aoi.catalog import db
from aoi.catalog.models import (
    Image,
    ImageChange,
    ImageStatus,
    KeptAnswer,
    KeptAnswerStatus,
    QuarantineEntry,
    utcnow,
)
from aoi.labels import LabelMap
from aoi.settings import Settings
from aoi.store import ImageStore
from ingest import pipeline, records
from ingest.candidate import Candidate
from ingest.steps import BatchResult

LINE_FORMAT = "review"  # the batch format of confirmed answers
CHANGE_ACTION = "review"  # the image_change action that says who labelled it in the queue (datasets count these)
DECIDED = (KeptAnswerStatus.labelled.value, KeptAnswerStatus.not_defect.value, KeptAnswerStatus.bad_image.value)


def origin_of(request_id: str) -> str:
    return f"kept-answer:{request_id}"


def _origin_key(request_id: str) -> str:
    return hashlib.sha256(origin_of(request_id).encode("utf-8")).hexdigest()


def _candidate(answer: KeptAnswer, store: ImageStore, label: str | None) -> Candidate:
    return Candidate(
        file=f"review/{answer.kind}/{answer.request_id}",
        origin=origin_of(answer.request_id),
        load=partial(store.get, answer.sha256),
        label=label,
        machine_id=answer.machine_id,
        part_no=answer.part_no,
        upstream_code=answer.upstream_code,
        captured_at=answer.kept_at,
        size=answer.bytes,
    )


def pending(settings: Settings, kind: str) -> list[KeptAnswer]:
    """Decided answers of ``kind`` not yet turned into an image or a quarantine entry."""
    with db.session(settings.catalog_url) as s:
        answers = list(
            s.exec(
                select(KeptAnswer)
                .where(
                    KeptAnswer.kind == kind,
                    col(KeptAnswer.image_id).is_(None),
                    col(KeptAnswer.status).in_(DECIDED),
                )
                .order_by(col(KeptAnswer.decided_at), col(KeptAnswer.id))
            ).all()
        )
        keys = [_origin_key(a.request_id) for a in answers]
        done: set[str] = set()
        for start in range(0, len(keys), 5000):  # bounded IN lists
            chunk = keys[start : start + 5000]
            done |= set(s.exec(select(QuarantineEntry.origin_key).where(col(QuarantineEntry.origin_key).in_(chunk))))
    return [a for a in answers if _origin_key(a.request_id) not in done]


def confirmed_batch(settings: Settings, kind: str) -> BatchResult | None:
    """One inbox batch of the confirmed answers of ``kind`` decided since the last one (None: there are none)."""
    url = settings.catalog_url
    labels = set(LabelMap.load(settings.ingest.label_map).labels)
    answers = pending(settings, kind)
    trainable = [a for a in answers if a.status != KeptAnswerStatus.bad_image and a.true_label in labels]
    bad = [a for a in answers if a.status == KeptAnswerStatus.bad_image]
    no_class = len(answers) - len(trainable) - len(bad)
    if not trainable and not bad:
        return None
    store = ImageStore(settings.store_dir)
    request_ids = sorted(a.request_id for a in trainable + bad)
    batch_id = records.open_batch(
        url, LINE_FORMAT, f"review-queue/{kind}", {"source": kind, "request_ids": request_ids}
    )
    loaded, rejected = pipeline.read_and_hash([_candidate(a, store, a.true_label) for a in trainable])
    known = records.known_labels(url, [item.sha256 for item in loaded])
    fresh, duplicates, conflicts = pipeline.drop_known(loaded, known)
    measured, unusable = pipeline.decode_and_measure(fresh, settings)
    refused = rejected + conflicts + unusable
    for answer in bad:
        data = store.get(answer.sha256) if store.has(answer.sha256) else None
        reason = (
            f"bad image: so decided in the review queue by {answer.decided_by} at {answer.decided_at:%Y-%m-%d %H:%M:%S}"
        )
        refused.append(pipeline.Rejected(_candidate(answer, store, None), reason, data))
    pipeline.keep_rejected(refused, ImageStore(settings.quarantine_dir, fsync=settings.store_fsync))
    records.record_chunk(url, batch_id, measured, refused, kind)
    linked, labelled = _link(url, batch_id, [*measured, *duplicates])
    batch = records.close_batch(url, batch_id, {"discovered": len(trainable) + len(bad), "duplicates": len(duplicates)})
    added = Counter(item.candidate.label or "(unlabeled)" for item in measured if item.candidate.origin in linked)
    warnings = []
    if no_class:
        warnings.append(
            f"{no_class} answer(s) called not a defect: the {kind} taxonomy has no class for it, so they stay out of "
            "training (a confirmed truth for live accuracy only)"
        )
    if labelled:
        warnings.append(
            f"{len(labelled)} answer(s) hold bytes the catalog held unlabelled: those images now carry the answers' "
            "labels"
        )
    if len(duplicates) > len(labelled):
        warnings.append(
            f"{len(duplicates) - len(labelled)} answer(s) hold bytes the catalog has already: linked to those images, "
            "whose labels stay (a blind test image stays behind the blind wall)"
        )
    return BatchResult(
        batch_id=batch_id,
        status=batch.status,
        format=LINE_FORMAT,
        input=batch.input_path,
        discovered=len(trainable) + len(bad),
        skipped=no_class,
        added=sum(added.values()),
        duplicates=len(duplicates),
        quarantined=len(refused),
        by_label=dict(sorted(added.items())),
        batch_totals={"added": batch.added, "quarantined": batch.quarantined, "by_label": batch.by_label},
        warnings=warnings,
    )


def _link(url: str, batch_id: int, items: list[pipeline.Measured | pipeline.Loaded]) -> tuple[set[str], set[str]]:
    """Set each answer's ``image_id``; record who labelled (``image_change``) the images this batch added, and give
    an image the catalog held unlabelled the answer's label. Returns the origins of the answers that added an image
    and of those that labelled an existing one."""
    added: set[str] = set()
    labelled: set[str] = set()
    with db.session(url) as s:
        shas = [item.sha256 for item in items]
        images = {
            i.sha256: i
            for start in range(0, len(shas), db.IN_CHUNK)
            for i in s.exec(select(Image).where(col(Image.sha256).in_(shas[start : start + db.IN_CHUNK]))).all()
        }
        for item in items:
            origin, label = item.candidate.origin, item.candidate.label
            request_id = origin.removeprefix("kept-answer:")
            answer = s.exec(select(KeptAnswer).where(KeptAnswer.request_id == request_id)).first()
            image = images.get(item.sha256)
            if answer is None or image is None:  # a race lost to a store GC: the next batch tries again
                continue
            answer.image_id = image.id
            s.add(answer)
            if image.batch_id == batch_id and image.origin == origin:
                added.add(origin)
            elif image.label is None and image.status == ImageStatus.unlabeled and image.source == answer.kind:
                image.label, image.status = label, ImageStatus.labeled  # a person's word for an unlabelled image
                s.add(image)
                labelled.add(origin)
            else:
                continue
            s.add(
                ImageChange(
                    image_id=db.saved_id(image),
                    action=CHANGE_ACTION,
                    old_label=None,
                    new_label=label,
                    old_status=ImageStatus.unlabeled,
                    new_status=ImageStatus.labeled,
                    reason=(
                        f"confirmed from the line in the review queue: request {request_id}, answered "
                        f"{answer.label} ({answer.confidence:.1%}) by {answer.model_version}"
                    ),
                    by=answer.decided_by or "review queue",
                    via=CHANGE_ACTION,
                    at=answer.decided_at or utcnow(),
                )
            )
        s.commit()
    return added, labelled
