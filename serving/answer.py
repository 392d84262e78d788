"""From the model's probabilities to the line's answer: Unknown filter, rules, route, tone check.

Pure functions: no model, no HTTP, no database; the service and the tests call them the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from pydantic import BaseModel, Field

from aoi.image_metrics import QUALITY_FIELDS, TONE_FIELDS, ImageMetrics, Tone
from serving.models import Deployed
from serving.rules import UNKNOWN, Rules


class Candidate(BaseModel):
    label: str = Field(description="Fine class")
    coarse_label: str
    confidence: float


class Quality(BaseModel):
    """Image quality from aoi.image_metrics; null where the image was too small to judge."""

    sharpness: float | None = Field(None, description="Variance of the Laplacian of the gray luma, gray levels²")
    smear: float | None = Field(None, description="Share of the image (0..1) in blocks with soft edges")


class Answer(BaseModel):
    request_id: str = Field(description="Also the prediction log's key")
    kind: str
    model_version: str
    label: str = Field(description="Fine class, or UNKNOWN (below the threshold or forced by a rule)")
    coarse_label: str = Field(description="PASS / REPAIRABLE / NONREPAIRABLE ... or UNKNOWN")
    confidence: float = Field(description="The model's top-class probability")
    unknown: bool = Field(description="The answer is UNKNOWN (Unknown filter or rule)")
    threshold: float = Field(description="Unknown-filter threshold of this model version")
    route: str = Field(description="Where the line sends the image next: VRS, REVIEW or FINAL (serving/rules.yaml)")
    rule: str | None = Field(None, description="The post-model rule that changed the answer, if any")
    model_label: str = Field(description="The model's top fine class before filter and rules")
    top3: list[Candidate]
    tone: Tone
    quality: Quality = Field(default_factory=Quality)
    format: str
    jpeg_quality: int | None
    tone_spec: str | None = Field(None, description="The spec the tone is judged against (name@version)")
    in_spec: bool | None = Field(None, description="Tone and quality inside the spec; null when the kind has no spec")
    out_of_spec: list[str] = Field(default_factory=list, description="Tone and quality metrics outside the spec")
    machine_id: str | None = None
    part_no: str | None = None
    upstream_code: str | None = None
    calibrated: bool = Field(
        False,
        description="The machine's colour calibration (Feast) was applied before the model; "
        "the tone above is the image as captured",
    )


def tone_check(deployed: Deployed, metrics: ImageMetrics, machine_id: str | None) -> tuple[bool | None, list[str]]:
    """(inside the spec, metrics outside it); (None, []) when the model's kind has no tone spec."""
    spec = deployed.tone_spec
    if spec is None:
        return None, []
    limits = {**spec.tone_limits_for(machine_id), **spec.quality}
    outside = [name for name, limit in limits.items() if not _inside(getattr(metrics, name), limit.min, limit.max)]
    return not outside, outside


def _inside(value: float | None, low: float | None, high: float | None) -> bool:
    """None (not measured: too small an image) is not judged, as validation does not judge a missing value."""
    return value is None or ((low is None or value >= low) and (high is None or value <= high))


def decide(
    deployed: Deployed,
    probabilities: np.ndarray,
    rules: Rules,
    *,
    request_id: str,
    metrics: ImageMetrics,
    machine_id: str | None = None,
    part_no: str | None = None,
    upstream_code: str | None = None,
    calibrated: bool = False,
) -> Answer:
    taxonomy = deployed.taxonomy
    order = np.argsort(probabilities)[::-1]
    top = taxonomy.fine[int(order[0])]
    confidence = float(probabilities[order[0]])
    label, rule = top, None
    if confidence < deployed.threshold:
        label = UNKNOWN
    override = rules.override(deployed.kind, upstream_code)
    if override is not None:  # reported even when the filter already said the same: the line sees why
        label, rule = override.answer, override.name
    coarse = taxonomy.coarse.get(label, label)  # UNKNOWN (or any rule answer outside the taxonomy) stays itself
    in_spec, outside = tone_check(deployed, metrics, machine_id)
    return Answer(
        request_id=request_id,
        kind=deployed.kind,
        model_version=deployed.version,
        label=label,
        coarse_label=coarse,
        confidence=confidence,
        unknown=label == UNKNOWN,
        threshold=deployed.threshold,
        route=rules.route(deployed.kind, label, coarse),
        rule=rule,
        model_label=top,
        top3=[
            Candidate(
                label=taxonomy.fine[int(i)],
                coarse_label=taxonomy.to_coarse(taxonomy.fine[int(i)]),
                confidence=float(probabilities[i]),
            )
            for i in order[:3]
        ],
        tone=Tone(**{name: getattr(metrics, name) for name in TONE_FIELDS}),
        quality=Quality(**{name: getattr(metrics, name) for name in QUALITY_FIELDS}),
        format=metrics.format,
        jpeg_quality=metrics.jpeg_quality,
        tone_spec=deployed.tone_spec.key if deployed.tone_spec else None,
        in_spec=in_spec,
        out_of_spec=outside,
        machine_id=machine_id,
        part_no=part_no,
        upstream_code=upstream_code,
        calibrated=calibrated,
    )


def log_row(answer: Answer, metrics: ImageMetrics, sha256: str, latency_ms: float) -> dict:
    """The ``prediction`` row of one answer."""
    return {
        "request_id": answer.request_id,
        "at": datetime.now(UTC),
        "latency_ms": latency_ms,
        "kind": answer.kind,
        "model_version": answer.model_version,
        "machine_id": answer.machine_id,
        "part_no": answer.part_no,
        "upstream_code": answer.upstream_code,
        "sha256": sha256,
        "label": answer.label,
        "coarse_label": answer.coarse_label,
        "model_label": answer.model_label,
        "confidence": answer.confidence,
        "unknown": answer.unknown,
        "route": answer.route,
        "rule": answer.rule,
        **answer.tone.model_dump(),
        **answer.quality.model_dump(),
        "format": metrics.format,
        "jpeg_quality": metrics.jpeg_quality,
        "bytes_per_pixel": metrics.bytes_per_pixel,
        "width": metrics.width,
        "height": metrics.height,
        "in_spec": answer.in_spec,
    }
