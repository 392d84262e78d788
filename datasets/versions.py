"""Building, registering and describing dataset versions in the catalog.

The wall between blind tests and training (docs/domain.md#blind-tests: training accuracy lied, the dated blind tests
told
the truth) is kept by content hash in ``hash_claim``: one row per hash, role ``train`` or ``blind``. Builds
and blind registrations run in one serialised transaction each, read the other side's claims, drop what
is claimed, and claim the rest, so the guarantee holds whichever is made first.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from aoi.catalog import db
from aoi.catalog.models import (
    DatasetMember,
    DatasetVersion,
    HashClaim,
    Image,
    ImageChange,
    ImageStatus,
    table_of,
)
from aoi.labels import small_labels
from datasets.splits import Row, assign_splits, cap_per_class, parse_ratio


class DatasetError(ValueError):
    """A dataset request that cannot be honoured; the message says why."""


class ClassLossError(DatasetError):
    """A cleaning rule removed more of a class than AOI_DATASETS__MAX_CLASS_LOSS allows."""


def class_losses(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    """Share of each class a rule removed (0..1), for the classes it had before."""
    return {label: 1 - after.get(label, 0) / n for label, n in before.items() if n}


def _lock(s: Session) -> None:
    # SQLite: every transaction here already holds the write lock (BEGIN IMMEDIATE in aoi.catalog.db).
    if s.get_bind().dialect.name == "postgresql":
        s.exec(func.pg_advisory_xact_lock(4242000002).select())


def _claimed(s: Session, shas: Iterable[str], role: str) -> set[str]:
    shas = list(shas)
    found: set[str] = set()
    for start in range(0, len(shas), 5000):  # bounded IN lists
        chunk = shas[start : start + 5000]
        found |= set(
            s.exec(select(HashClaim.sha256).where(col(HashClaim.sha256).in_(chunk), HashClaim.role == role)).all()
        )
    return found


def _claim(s: Session, dataset_id: int, shas: Iterable[str], role: str) -> None:
    rows = [{"sha256": sha, "role": role, "dataset_id": dataset_id} for sha in sorted(set(shas))]
    if not rows:
        return
    insert = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
    s.connection().execute(insert(table_of(HashClaim)).on_conflict_do_nothing(index_elements=["sha256"]), rows)


def _counts(rows: Iterable[Row]) -> dict[str, int]:
    return dict(sorted(Counter(r.label for r in rows).items()))


def _refuse_existing(s: Session, name: str) -> None:
    if s.exec(select(DatasetVersion.id).where(DatasetVersion.name == name)).first() is not None:
        raise DatasetError(f"dataset version {name} exists; versions are immutable, give the new one another name")


def _rows(images) -> list[Row]:
    return [Row(i.id, i.sha256, i.label, i.group_key or f"image:{i.id}") for i in images]


@dataclass(frozen=True)
class PeoplesChanges:
    """What people changed since a parent version (or ever, without one), as the next build counts it."""

    reference_label: dict[int, str | None]  # relabelled image -> its label at the parent (or before its first change)
    removed: set[int]  # images deleted or excluded by a person, whenever
    removed_since: set[int]  # of those, removed after the parent was built (all of them without a parent)


def peoples_changes(s: Session, source: str, parent: DatasetVersion | None) -> PeoplesChanges:
    """Read the ``image_change`` rows of ``source``'s images: relabels since ``parent`` was built, and images
    whose status a person's last change set (deleted, or excluded and not restored since)."""
    since = parent.created_at if parent is not None else None
    rows = s.exec(
        select(ImageChange, Image.status)
        .join(Image, col(Image.id) == col(ImageChange.image_id))
        .where(Image.source == source)
        .order_by(col(ImageChange.at), col(ImageChange.id))
    ).all()
    in_parent: dict[int, str | None] = {}
    if parent is not None:
        in_parent = {
            image_id: label
            for image_id, label in s.exec(
                select(DatasetMember.image_id, DatasetMember.label).where(DatasetMember.dataset_id == parent.id)
            ).all()
        }
    reference: dict[int, str | None] = {}
    last: dict[int, tuple[ImageChange, str]] = {}
    for change, status in rows:
        last[change.image_id] = (change, status)
        after = since is None or _aware(change.at) > _aware(since)
        if change.action == "relabel" and after and change.image_id not in reference:
            reference[change.image_id] = in_parent.get(change.image_id, change.old_label)
    removed = {
        image_id
        for image_id, (change, status) in last.items()
        if status in (ImageStatus.deleted, ImageStatus.excluded) and change.new_status == status
    }
    removed_since = {i for i in removed if since is None or _aware(last[i][0].at) > _aware(since)}
    return PeoplesChanges(reference, removed, removed_since)


@dataclass(frozen=True)
class FromLine:
    images: set[int]  # candidate images labelled in the review queue (an image_change of action review)
    since_parent: int  # of those, the ones the parent version did not hold (all of them without a parent)


def _from_line(s: Session, source: str, rows: list[Row], parent: DatasetVersion | None) -> FromLine:
    from ingest.line import CHANGE_ACTION

    line = set(
        s.exec(
            select(ImageChange.image_id)
            .join(Image, col(Image.id) == col(ImageChange.image_id))
            .where(Image.source == source, ImageChange.action == CHANGE_ACTION)
        ).all()
    )
    images = {r.image_id for r in rows if r.image_id in line}
    if parent is None or not images:
        return FromLine(images, len(images))
    ordered = sorted(images)
    held = {
        image_id
        for start in range(0, len(ordered), db.IN_CHUNK)
        for image_id in s.exec(
            select(DatasetMember.image_id).where(
                DatasetMember.dataset_id == parent.id,
                col(DatasetMember.image_id).in_(ordered[start : start + db.IN_CHUNK]),
            )
        ).all()
    }
    return FromLine(images, len(images - held))


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite gives times back without their zone


def build(
    url: str,
    name: str,
    *,
    source: str,
    spec_key: str | None = None,
    per_class: int | None = None,
    split: str = "8:1:1",
    group_by: str = "source_image",
    seed: int = 0,
    parent: str | None = None,
    note: str | None = None,
    max_class_loss: float = 0.2,
    allow_class_loss: bool = False,
    min_label_images: int = 0,
) -> dict:
    """Freeze a training dataset version of ``source``'s labelled images; returns ``describe(name)`` with
    ``warnings`` (labels with fewer than ``min_label_images`` images).

    The guard: a rule that judges images (validation against a spec) may remove at most ``max_class_loss`` of any
    class; beyond it the build is refused, naming the rule, the class and the share, unless ``allow_class_loss``,
    which the rule's row in the cleaning table records. The blind wall and the per-class cap are not judged:
    they remove what the builder asked for by name, and their counts stay in the table."""
    ratio = parse_ratio(split)
    if not 0 <= max_class_loss <= 1:
        raise DatasetError(f"max_class_loss must be a share between 0 and 1, not {max_class_loss:g}")
    if group_by not in ("source_image", "none"):
        raise DatasetError(f"group_by must be source_image or none, not {group_by!r}")
    with db.session(url) as s:
        _lock(s)
        _refuse_existing(s, name)
        parent_version = None
        if parent:
            parent_version = s.exec(select(DatasetVersion).where(DatasetVersion.name == parent)).first()
            if parent_version is None:
                raise DatasetError(f"parent dataset version {parent} does not exist")
        images = s.exec(
            select(Image).where(Image.source == source, col(Image.label).is_not(None)).order_by(col(Image.id))
        ).all()
        if not images:
            raise DatasetError(f"no labelled {source} images in the catalog")
        rows = _rows(images)
        if group_by == "none":
            rows = [Row(r.image_id, r.sha256, r.label, f"image:{r.image_id}") for r in rows]
        cleaning = []

        def rule(text: str, kept: list[Row], before: list[Row], guarded: bool = False) -> list[Row]:
            step = {"rule": text, "before": _counts(before), "after": _counts(kept)}
            if guarded:
                over = {
                    label: round(loss, 4)
                    for label, loss in class_losses(step["before"], step["after"]).items()
                    if loss > max_class_loss
                }
                if over and not allow_class_loss:
                    label, loss = max(over.items(), key=lambda item: (item[1], item[0]))
                    n = step["before"][label]
                    others = f" (and {len(over) - 1} other class(es))" if len(over) > 1 else ""
                    raise ClassLossError(
                        f"rule '{text}' removes {loss:.0%} of class {label} ({n - step['after'].get(label, 0)} of {n} "
                        f"images){others}, over AOI_DATASETS__MAX_CLASS_LOSS={max_class_loss:.0%}: look at the tone "
                        "pictures per label of the validation run, restore what the rule should not remove, or build "
                        "with --allow-class-loss to accept the loss"
                    )
                step.update(max_class_loss=max_class_loss, allow_class_loss=allow_class_loss, over_limit=over)
            cleaning.append(step)
            return kept

        # Confirmed from the line (the review queue's labels, ingest/line.py): counted first, as what they add.
        from_line = _from_line(s, source, rows, parent_version)
        if from_line.images:
            rows = rule("confirmed from the line", rows, [r for r in rows if r.image_id not in from_line.images])
            cleaning[-1].update(images=len(from_line.images), since_parent=from_line.since_parent)
        # People's changes (workbench, `aoi images ...`): the labels are the images' current ones; the table shows
        # them against the parent's (the start row), and what people removed, whenever a parent is named or
        # people changed any of these images.
        people = peoples_changes(s, source, parent_version)
        reference = people.reference_label
        blind = _claimed(s, (r.sha256 for r in rows), "blind")
        relabelled = {  # behind the blind wall, a relabel changes a blind set's next version, never this one
            r.image_id
            for r in rows
            if r.image_id in reference and reference[r.image_id] != r.label and r.sha256 not in blind
        }
        counted = (
            parent_version is not None
            or bool(relabelled)
            or any(r.image_id in people.removed and r.sha256 not in blind for r in rows)
        )
        if counted:
            # before: each relabelled image under its label at the parent (an image that had none was no candidate)
            before = [
                r if r.image_id not in relabelled else Row(r.image_id, r.sha256, reference[r.image_id] or "", r.group)
                for r in rows
                if r.image_id not in relabelled or reference[r.image_id] is not None
            ]
            rows = rule("relabelled by a person", rows, before)
            cleaning[-1]["images"] = len(relabelled)
        # The blind wall first: the guard then judges validation on the images this build could train on, not on
        # held-out captures (a simulated machine's shifted tone is there to be excluded, and is blind anyway).
        rows = rule("not in a blind test set", [r for r in rows if r.sha256 not in blind], rows)
        gone = {r.image_id for r in rows if r.image_id in people.removed}
        if counted:
            rows = rule("removed by a person", [r for r in rows if r.image_id not in gone], rows)
            cleaning[-1].update(images=len(gone), since_parent=len(gone & people.removed_since))
        rows = [r for r in rows if r.image_id not in gone]
        status = {i.id: i.status for i in images}
        rows = rule(
            f"not excluded by validation{f' (spec {spec_key})' if spec_key else ''}",
            [r for r in rows if status[r.image_id] != ImageStatus.excluded],
            rows,
            guarded=True,
        )
        if per_class:
            rows = rule(f"at most {per_class} per class (seed {seed})", cap_per_class(rows, per_class, seed), rows)
        if not rows:
            raise DatasetError("cleaning left no images")
        splits = assign_splits(rows, ratio, seed)
        version = DatasetVersion(
            name=name,
            role="train",
            source=source,
            parent=parent,
            spec_key=spec_key,
            seed=seed,
            split=split,
            per_class=per_class,
            group_by=group_by,
            taxonomy=sorted({r.label for r in rows}),
            cleaning=cleaning,
            counts=_split_counts(rows, splits),
            dropped_blind=len(blind),
            note=note,
        )
        s.add(version)
        s.flush()
        s.add_all(
            DatasetMember(
                dataset_id=version.id,
                image_id=r.image_id,
                sha256=r.sha256,
                label=r.label,
                split=splits[r.image_id],
                group_key=r.group,
            )
            for r in rows
        )
        _claim(s, version.id, (r.sha256 for r in rows), "train")
        s.commit()
    return {**describe(url, name), "warnings": small_labels(_counts(rows), min_label_images)}


def _split_counts(rows: list[Row], splits: dict[int, str]) -> dict[str, dict[str, int]]:
    out: dict[str, Counter] = {}
    for row in rows:
        out.setdefault(splits[row.image_id], Counter())[row.label] += 1
    return {split: dict(sorted(c.items())) for split, c in sorted(out.items())}


def register_blind(
    url: str,
    name: str,
    *,
    source: str | None = None,
    batch_id: int | None = None,
    groups: set[str] | None = None,
    name_pattern: str | None = None,
    shas: set[str] | None = None,
    date: str | None = None,
    note: str | None = None,
) -> dict:
    """Register a dated blind-test set from the selected labelled images. Images already used by a training
    dataset version are dropped (and counted): a blind set must be unseen.

    ``shas`` selects by content: a folder of blind images may hold content catalogued long ago under other
    names, which a selection by ingest batch would miss.
    """
    if batch_id is None and groups is None and name_pattern is None and shas is None:
        raise DatasetError("select the blind images: --batch, --folder, --groups-from or --name-pattern")
    if date is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        raise DatasetError(f"date must be YYYY-MM-DD, not {date!r}")
    with db.session(url) as s:
        _lock(s)
        _refuse_existing(s, name)
        # Excluded (by validation or a person) and deleted images are no blind test: a blind set registered again
        # after a person deleted one of its images leaves that image out.
        query = select(Image).where(
            col(Image.label).is_not(None), col(Image.status).not_in([ImageStatus.excluded, ImageStatus.deleted])
        )
        if source:
            query = query.where(Image.source == source)
        if batch_id is not None:
            query = query.where(Image.batch_id == batch_id)
        images = s.exec(query.order_by(col(Image.id))).all()
        if shas is not None:
            images = [i for i in images if i.sha256 in shas]
        if groups is not None:
            images = [i for i in images if i.group_key in groups]
        if name_pattern:
            pattern = re.compile(name_pattern)
            images = [i for i in images if pattern.search(i.file_name)]
        rows = _rows(images)
        used = _claimed(s, (r.sha256 for r in rows), "train")
        kept = [r for r in rows if r.sha256 not in used]
        if not kept:
            raise DatasetError(
                f"no images for blind set {name} ({len(used)} selected images are already in training sets)"
            )
        sources = sorted({i.source for i in images})
        version = DatasetVersion(
            name=name,
            role="blind",
            source=sources[0] if len(sources) == 1 else "mixed",
            blind_date=date,
            taxonomy=sorted({r.label for r in kept}),
            counts={"blind": _counts(kept)},
            dropped_blind=len(used),
            cleaning=[
                {"rule": "not used by any training dataset version", "before": _counts(rows), "after": _counts(kept)}
            ],
            note=note,
        )
        s.add(version)
        s.flush()
        s.add_all(
            DatasetMember(
                dataset_id=version.id,
                image_id=r.image_id,
                sha256=r.sha256,
                label=r.label,
                split="blind",
                group_key=r.group,
            )
            for r in kept
        )
        _claim(s, version.id, (r.sha256 for r in kept), "blind")
        s.commit()
    return describe(url, name)


def describe(url: str, name: str) -> dict:
    with db.session(url) as s:
        version = s.exec(select(DatasetVersion).where(DatasetVersion.name == name)).first()
        if version is None:
            raise DatasetError(f"no dataset version {name}")
        lineage, parent = [], version.parent
        while parent:
            lineage.append(parent)
            parent = s.exec(select(DatasetVersion.parent).where(DatasetVersion.name == parent)).first()
    data = version.model_dump(exclude={"id"})
    data["created_at"] = version.created_at.isoformat()
    data["images"] = sum(sum(c.values()) for c in version.counts.values())
    # Kept in the cleaning table's guarded rows (no column of its own): was a class's loss accepted by name?
    data["class_loss_allowed"] = any(step.get("allow_class_loss") for step in version.cleaning)
    data["lineage"] = lineage
    return data


def list_versions(url: str) -> list[dict]:
    with db.session(url) as s:
        names = s.exec(select(DatasetVersion.name).order_by(col(DatasetVersion.id))).all()
    return [describe(url, n) for n in names]


def manifest(url: str, name: str) -> list[dict]:
    """The frozen manifest: one row per image (content hash, label, split, group, image id)."""
    describe(url, name)  # raises for an unknown name
    with db.session(url) as s:
        rows = s.exec(
            select(
                DatasetMember.sha256,
                DatasetMember.label,
                DatasetMember.split,
                DatasetMember.group_key,
                DatasetMember.image_id,
            )
            .join(DatasetVersion, DatasetVersion.id == DatasetMember.dataset_id)
            .where(DatasetVersion.name == name)
            .order_by(DatasetMember.split, DatasetMember.image_id)
        ).all()
    return [{"sha256": a, "label": b, "split": c, "group": d, "image_id": e} for a, b, c, d, e in rows]


def deeppcb_groups(list_file: str) -> set[str]:
    """Group keys of the pairs in a DeepPCB split list (``PCBData/test.txt``: ``group…/…/NNN.jpg ann.txt``)."""

    groups = set()
    for line in Path(list_file).read_text().splitlines():
        if line.strip():
            groups.add(f"deeppcb:{PurePosixPath(line.split()[0]).stem}")
    return groups
