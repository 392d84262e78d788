"""Curation: people relabel, exclude, restore and delete images, one or a selection at a time.

Every change is one ``image_change`` row per image (who, when, why, the label and status before and after), made
in one transaction with the image's new label or status: all of a selection changes, or none of it. Nothing here
touches dataset versions (they stay frozen: the next version built from a parent takes the changes and counts
them) or the blind wall's ``hash_claim`` rows (an image of a blind set stays blind whatever its label).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum

from sqlmodel import Session, col, select

from aoi.catalog import db
from aoi.catalog.models import AppUser, HashClaim, Image, ImageChange, ImageStatus, UserRole
from aoi.labels import LabelMap, UnknownLabel
from aoi.settings import Settings
from training.taxonomy import Taxonomy, TaxonomyError

MAX_REASON = 2000  # characters of a reason: a sentence or a paragraph, not a document


class CurationError(ValueError):
    """A curation request refused before anything changed; the message says why."""


class Action(StrEnum):
    relabel = "relabel"
    exclude = "exclude"
    restore = "restore"
    delete = "delete"


ACTIONS = tuple(a.value for a in Action)


class Via(StrEnum):
    web = "web"
    cli = "cli"


def valid_labels(source: str, labels: LabelMap | None = None) -> tuple[str, ...]:
    """The labels an image of ``source`` may carry: the project's labels (the label map ingest resolves names
    with) that the source's model learns (its taxonomy: a colour image is never PASS, the PKU set has none)."""
    labels = labels or LabelMap.load()
    try:
        fine = Taxonomy.load(source).fine
    except TaxonomyError:
        return labels.labels
    return tuple(label for label in labels.labels if label in fine) or labels.labels


def _ids(image_ids: Iterable[int]) -> list[int]:
    ids = list(dict.fromkeys(int(i) for i in image_ids))  # a selection may name an image twice
    if not ids:
        raise CurationError("no images selected: nothing changed")
    return ids


def _words(by: str, why: str, via: str) -> tuple[str, str, Via]:
    by, why = (by or "").strip(), (why or "").strip()
    if not by:
        raise CurationError("who made the change is required (by)")
    if len(by) > 128:
        raise CurationError("the name of who made the change is longer than 128 characters")
    if not why:
        raise CurationError("a reason is required: say why (it is kept in the image's history)")
    if len(why) > MAX_REASON:
        raise CurationError(f"the reason is longer than {MAX_REASON} characters")
    try:
        return by, why, Via(via)
    except ValueError:
        raise CurationError(f"via must be web or cli, not {via!r}") from None


def _images(s: Session, ids: Sequence[int]) -> list[Image]:
    """The images, locked for this transaction (PostgreSQL; SQLite's transaction holds the write lock already);
    unknown ids are refused before anything changes."""
    found = {i.id: i for i in s.exec(select(Image).where(col(Image.id).in_(ids)).with_for_update()).all()}
    missing = [i for i in ids if i not in found]
    if missing:
        raise CurationError(f"no image {', '.join(map(str, missing))} in the catalog: nothing changed")
    return [found[i] for i in ids]


def _refuse(problems: list[str]) -> None:
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise CurationError(f"{shown}: nothing changed")


def _record(
    s: Session,
    images: list[Image],
    action: Action,
    by: str,
    why: str,
    via: Via,
    new_label: str | None = None,
    new_status: Callable[[Image], str] | None = None,
) -> list[ImageChange]:
    """Apply and record the change of every image (``new_status``: image -> status), then commit once."""
    changes = []
    for image in images:
        old_label, old_status = image.label, image.status
        if action is Action.relabel:
            image.label = new_label
            if image.status == ImageStatus.unlabeled:
                image.status = ImageStatus.labeled
        elif new_status is not None:
            image.status = new_status(image)
            image.status_reason = f"{PAST[action]} by {by}: {why}"
        s.add(image)
        change = ImageChange(
            image_id=db.saved_id(image),
            action=action.value,
            old_label=old_label,
            new_label=image.label,
            old_status=old_status,
            new_status=image.status,
            reason=why,
            by=by,
            via=via.value,
        )
        s.add(change)
        changes.append(change)
    s.commit()
    return changes


PAST = {Action.exclude: "excluded", Action.restore: "restored", Action.delete: "deleted"}


def relabel(
    s: Session,
    image_ids: Iterable[int],
    label: str,
    by: str,
    why: str,
    via: str = Via.web,
    labels: LabelMap | None = None,
) -> list[ImageChange]:
    """Give the images ``label`` (a project label of their source; names resolve as at ingest: ``mouse bite`` is
    NICK). An unlabelled image becomes labelled; an excluded one stays excluded. Not a label conflict: the person's
    word replaces the label, and the history keeps the old one."""
    ids, (by, why, channel) = _ids(image_ids), _words(by, why, via)
    labels = labels or LabelMap.load()
    if not (label or "").strip():
        raise CurationError("choose the new label: nothing changed")
    try:
        label = labels.resolve(label)
    except UnknownLabel:
        raise CurationError(f"unknown label {label!r}: choose one of {', '.join(labels.labels)}") from None
    images = _images(s, ids)
    problems = []
    for image in images:
        allowed = valid_labels(image.source, labels)
        if label not in allowed:
            problems.append(f"{label} is not a label of {image.source} images (choose one of {', '.join(allowed)})")
        elif image.status == ImageStatus.deleted:
            problems.append(f"image {image.id} is deleted: restore it first")
        elif image.label == label:
            problems.append(f"image {image.id} is already {label}")
    _refuse(list(dict.fromkeys(problems)))
    return _record(s, images, Action.relabel, by, why, channel, new_label=label)


def exclude(s: Session, image_ids: Iterable[int], by: str, why: str, via: str = Via.web) -> list[ImageChange]:
    """Leave the images out of every new dataset version, with the reason; ``restore`` brings them back."""
    ids, (by, why, channel) = _ids(image_ids), _words(by, why, via)
    images = _images(s, ids)
    out = (ImageStatus.excluded, ImageStatus.deleted)
    _refuse([f"image {i.id} is already {i.status}" for i in images if i.status in out])
    return _record(s, images, Action.exclude, by, why, channel, new_status=lambda _: ImageStatus.excluded)


def delete(s: Session, image_ids: Iterable[int], by: str, why: str, via: str = Via.web) -> list[ImageChange]:
    """Soft delete: the images leave every new dataset version (blind sets' too); their bytes stay in the store
    until a store GC, and ``restore`` brings them back."""
    ids, (by, why, channel) = _ids(image_ids), _words(by, why, via)
    images = _images(s, ids)
    _refuse([f"image {i.id} is already deleted" for i in images if i.status == ImageStatus.deleted])
    return _record(s, images, Action.delete, by, why, channel, new_status=lambda _: ImageStatus.deleted)


def restore(s: Session, image_ids: Iterable[int], by: str, why: str, via: str = Via.web) -> list[ImageChange]:
    """Bring back images excluded (by a person or by validation) or deleted: labelled again (unlabelled if they
    have no label). A validation's exclusion rows are closed with who restored and why, as ``aoi restore`` does."""
    from validation.records import close_exclusions

    ids, (by, why, channel) = _ids(image_ids), _words(by, why, via)
    images = _images(s, ids)
    _refuse(
        [
            f"image {i.id} is {i.status}, not excluded or deleted"
            for i in images
            if i.status not in (ImageStatus.excluded, ImageStatus.deleted)
        ]
    )
    close_exclusions(s, image_ids=ids, by=by, note=why)
    return _record(
        s,
        images,
        Action.restore,
        by,
        why,
        channel,
        new_status=lambda i: ImageStatus.labeled if i.label else ImageStatus.unlabeled,
    )


def blind_images(s: Session, image_ids: Iterable[int]) -> set[int]:
    """Which of the images are behind the blind wall (their content claimed by a blind set): they stay there."""
    rows = s.exec(
        select(Image.id)
        .join(HashClaim, col(HashClaim.sha256) == col(Image.sha256))
        .where(col(Image.id).in_(list(image_ids)), HashClaim.role == "blind")
    ).all()
    return {int(i) for i in rows if i is not None}


def summary(s: Session, changes: Sequence[ImageChange]) -> dict:
    """What a command prints and a page flashes: the action, who, why, and each image's before and after."""
    blind = blind_images(s, [c.image_id for c in changes])
    first = changes[0]
    return {
        "action": first.action,
        "changed": len(changes),
        "by": first.by,
        "via": first.via,
        "reason": first.reason,
        "at": first.at.isoformat(),
        "images": [
            {
                "image_id": c.image_id,
                "old_label": c.old_label,
                "new_label": c.new_label,
                "old_status": c.old_status,
                "new_status": c.new_status,
                "blind": c.image_id in blind,
            }
            for c in changes
        ],
    }


def history(s: Session, image_id: int) -> list[ImageChange]:
    """An image's changes, oldest first."""
    return list(s.exec(select(ImageChange).where(ImageChange.image_id == image_id).order_by(col(ImageChange.id))).all())


CURATORS = (UserRole.engineer, UserRole.reviewer)


def curator(s: Session, name: str) -> AppUser:
    """The enabled workbench account ``name`` that may curate (an engineer or a reviewer)."""
    user = s.exec(select(AppUser).where(AppUser.name == (name or "").strip())).first()
    if user is None:
        raise CurationError(f"no workbench account {name!r}: add it with `aoi users add NAME --role engineer`")
    if user.disabled:
        raise CurationError(f"the workbench account {name!r} is disabled")
    if user.role not in CURATORS:
        raise CurationError(f"{name} is a {user.role}: engineers and reviewers curate, viewers read")
    return user


def labels_for(source: str, settings: Settings | None = None) -> tuple[str, ...]:
    """The labels a page offers for an image of ``source`` (all project labels when the source is not known)."""
    labels = LabelMap.load(settings.ingest.label_map if settings is not None else None)
    return valid_labels(source, labels) if source else labels.labels
