"""When a drift check says drift, and when drift may trigger a retraining.

Verdict: drift when the share of drifted columns reaches ``drift_share``, the Unknown rate rose by more than
``max_unknown_rise`` over the reference's with 95% confidence, or (``quality_drift_alone``) sharpness or smear
drifted; no verdict at all below the minimum sample count. The share counts the columns other than sharpness and
smear, so that it means what it meant before they were monitored.

Episodes: the first drifted check of a kind opens an episode and triggers one retraining. Further drifted
checks in that episode trigger nothing. The episode closes at the first clean check after its retraining has
ended (a failed trigger closes it at once, so the next drifted check tries again).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from aoi.catalog import db
from aoi.catalog.models import DriftEpisode, utcnow
from aoi.settings import MonitoringSettings, Settings
from monitoring.drift import Comparison
from monitoring.frames import QUALITY


@dataclass(frozen=True)
class Verdict:
    drift: bool | None  # None: too few samples to say
    reasons: list[str]

    def as_dict(self) -> dict:
        return {"drift": self.drift, "reasons": self.reasons}


def too_few(samples: int, minimum: int) -> Verdict:
    return Verdict(None, [f"too few samples to say: {samples} < {minimum}"])


def judge(c: Comparison, config: MonitoringSettings) -> Verdict:
    reasons = []
    shared = [column for column in c.drifted_columns if column not in QUALITY]
    if shared and c.drift_share >= config.drift_share:
        total = sum(column not in QUALITY for column in c.scores)
        reasons.append(
            f"{len(shared)} of {total} columns drifted ({', '.join(shared)}), "
            f"share {c.drift_share:.2f} >= {config.drift_share}"
        )
    if c.unknown_rise_floor > config.max_unknown_rise:
        reasons.append(
            f"Unknown rate {c.unknown_rate:.1%} is {c.unknown_rise:+.1%} over the reference's "
            f"{c.reference_unknown_rate:.1%}, at least {c.unknown_rise_floor:+.1%} with 95% confidence "
            f"(limit +{config.max_unknown_rise:.0%})"
        )
    quality = [column for column in c.drifted_columns if column in QUALITY]
    if quality and config.quality_drift_alone:
        # A lens out of focus or a smeared window changes what the model sees while the tone may hold: image
        # quality is a reason of its own, outside the share.
        reasons.append(f"image quality drifted ({', '.join(quality)})")
    return Verdict(bool(reasons), reasons)


@dataclass(frozen=True)
class Decision:
    text: str
    trigger: bool = False  # open a retraining now
    episode_id: int | None = None


def open_episode(settings: Settings, kind: str) -> DriftEpisode | None:
    with db.session(settings.catalog_url) as s:
        return s.exec(select(DriftEpisode).where(DriftEpisode.open_kind == kind)).first()


def _open(settings: Settings, kind: str, machines: list[str]) -> int | None:
    try:
        with db.session(settings.catalog_url) as s:
            episode = DriftEpisode(kind=kind, open_kind=kind, machines=machines)
            s.add(episode)
            s.commit()
            return episode.id
    except IntegrityError:  # the unique open_kind: one open episode per kind, whoever came first
        return None


def close(settings: Settings, episode_id: int, error: str | None = None) -> None:
    with db.session(settings.catalog_url) as s:
        episode = db.get_row(s, DriftEpisode, episode_id)
        episode.open_kind, episode.closed_at = None, utcnow()
        if error:
            episode.trigger_error = error[:1000]
        s.add(episode)
        s.commit()


def triggered(settings: Settings, episode_id: int, flow_run_id: str) -> None:
    with db.session(settings.catalog_url) as s:
        episode = db.get_row(s, DriftEpisode, episode_id)
        episode.retrain_flow_run_id = flow_run_id
        s.add(episode)
        s.commit()
