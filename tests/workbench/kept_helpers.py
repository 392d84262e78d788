"""Kept answers as the service leaves them: a ``kept_answer`` row per answer, its bytes in the image store by
sha256 (the review queue's tests make them themselves, from generated or real images)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aoi.catalog import db
from aoi.catalog.models import KeptAnswer
from aoi.settings import Settings
from aoi.store import ImageStore
from tests.workbench.helpers import board

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
GRAY = ("PASS", "OPEN", "SHORT", "NICK", "SPUR", "SPURIOUS_COPPER", "PINHOLE")


def keep(
    settings: Settings,
    data: bytes,
    *,
    request_id: str,
    kind: str = "gray",
    label: str = "SHORT",
    confidence: float = 0.5,
    top: list | None = None,
    reason: str = "unknown",
    machine_id: str | None = "AOI-1",
    part_no: str | None = "P-100",
    upstream_code: str | None = "SHORT",
    model_version: str = "gray-v1",
    kept_at: datetime | None = None,
) -> KeptAnswer:
    """One kept answer of ``data`` (stored by its hash), waiting in the queue."""
    sha = ImageStore(settings.store_dir, fsync=False).put(data)
    runner_up = "OPEN" if label != "OPEN" else "SHORT"
    row = KeptAnswer(
        request_id=request_id,
        kind=kind,
        reason=reason,
        sha256=sha,
        bytes=len(data),
        model_version=model_version,
        label=label,
        confidence=confidence,
        top=top or [[label, confidence], [runner_up, round(min(confidence * 0.8, 1 - confidence), 4)], ["NICK", 0.01]],
        machine_id=machine_id,
        part_no=part_no,
        upstream_code=upstream_code,
        kept_at=kept_at or START,
    )
    with db.session(settings.catalog_url) as s:
        s.add(row)
        s.commit()
        s.refresh(row)
    return row


def kept_answers(
    settings: Settings,
    answers: list[tuple[str, float]],
    *,
    kind: str = "gray",
    seed: int = 0,
    size: tuple[int, int] = (48, 40),
) -> list[str]:
    """One waiting answer per ``(answered label, confidence)``, kept an hour apart in the order given, each with
    its own generated picture (``board``); returns their request ids."""
    mode = "L" if kind == "gray" else "RGB"
    ids = []
    for k, (label, confidence) in enumerate(answers):
        request_id = f"r{seed:03d}{k:05d}"
        keep(
            settings,
            board(10_000 + seed * 1000 + k, size, mode),
            request_id=request_id,
            kind=kind,
            label=label,
            confidence=confidence,
            machine_id=f"AOI-{k % 2 + 1}",
            part_no=f"P-{100 + k % 3}",
            upstream_code=label,
            kept_at=START + timedelta(hours=k),
        )
        ids.append(request_id)
    return ids
