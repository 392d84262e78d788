"""How often the drift check cries wolf, and how often it misses a dim lamp (``aoi drift-study``).

From a real dataset version and its production model: the reference is the monitor's own (the dataset
version's tone and compression, the model's answers on the valid split) less the test split; requests are
drawn from the test split, so no window holds an image the reference saw (stricter than production, where the
reference holds its dataset version's test split too). They are spread over 4 simulated machines. Each trial
draws one window:

- undrifted: every machine's images as stored; any drift verdict is a false alarm;
- drifted: the same draw, one machine's images darker by ``light`` (all channels, re-encoded at the image's
  own JPEG quality, measured by the one metrics function and classified again); found when the check flags
  that machine.

Repeated for each window size (answers per machine). The policy, thresholds and Evidently tests are the
monitor's own (``compare_scopes``, without HTML).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from aoi.metrics import measure
from aoi.settings import Settings
from monitoring import check, frames

MACHINES = ("VRS-01", "VRS-02", "VRS-03", "VRS-04")
DIMMED = "VRS-02"


def dim(light: float):
    def change(image: Image.Image) -> Image.Image:
        arr = np.asarray(image, dtype=np.float32) * light
        return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), image.mode)

    return change


def _dimmed_metrics(settings: Settings, selected, light: float, quality: dict[str, int | None]) -> pd.DataFrame:
    """Metrics of each image as the dimmer lamp would have stored it (same format and JPEG quality)."""
    rows, change = [], dim(light)
    for (sha, _), image in zip(selected.rows, selected.images):
        out = io.BytesIO()
        q = quality.get(sha)
        change(image).save(out, format="JPEG", quality=q) if q else change(image).save(out, format="PNG")
        m = measure(out.getvalue(), min_side=settings.metrics_min_side)
        rows.append({"sha256": sha, **{c: getattr(m, c) for c in frames.INPUTS}})
    return pd.DataFrame(rows).fillna({"jpeg_quality": frames.LOSSLESS_QUALITY})


def pools(settings: Settings, version: str, light: float, split: str = "test") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(reference less ``split``, the split's answers as stored, the same answers under the dimmer lamp)."""
    from evaluation import service as evaluation

    loaded = evaluation.load(settings, version)
    selected = evaluation.images_of(settings, loaded, loaded.row.dataset, split)
    reference = frames.reference(settings, version)  # holds every split's inputs: the pool's are read from it
    stored = reference.loc[reference["split"] == split, ["sha256", *frames.NUMERIC]].drop(columns="confidence")
    plain = frames.answers(settings, loaded, selected, evaluation.predict(settings, loaded, selected)).merge(stored, on="sha256")
    # saved as stored: lossless stays lossless (a JPEG at quality 100 is saved lossless too, a negligible change)
    quality = {s: (None if q >= frames.LOSSLESS_QUALITY else int(q)) for s, q in zip(stored["sha256"], stored["jpeg_quality"])}
    darker = frames.answers(settings, loaded, selected, evaluation.predict(settings, loaded, selected, change=dim(light))
                            ).merge(_dimmed_metrics(settings, selected, light, quality), on="sha256")  # fmt: skip
    return (reference[reference["split"] != split].reset_index(drop=True), plain,
            darker.set_index("sha256").loc[plain["sha256"]].reset_index())  # fmt: skip


def run(settings: Settings, version: str, kind: str, windows: int = 50, sizes=(50, 100, 200), light: float = 0.9,
        seed: int = 0, progress: bool = True) -> dict:  # fmt: skip
    reference, plain, darker = pools(settings, version, light)
    rng = np.random.default_rng(seed)
    rows = []
    bar = tqdm(total=windows * len(sizes) * 2, desc="drift study", unit="check", disable=not progress)
    for size in sizes:
        alarms = found = 0
        for _ in range(windows):
            picks = [rng.integers(0, len(plain), size) for _ in MACHINES]
            clean = pd.concat([plain.iloc[p].assign(machine_id=m) for m, p in zip(MACHINES, picks)], ignore_index=True)
            drifted = pd.concat([(darker if m == DIMMED else plain).iloc[p].assign(machine_id=m)
                                 for m, p in zip(MACHINES, picks)], ignore_index=True)  # fmt: skip
            alarms += bool(check.verdict_of(check.compare_scopes(settings, kind, reference, clean, html=False)))
            scopes = check.compare_scopes(settings, kind, reference, drifted, html=False)
            found += bool(scopes["machines"].get(DIMMED, {}).get("drift"))
            bar.update(2)
        rows.append({"per_machine": size, "window": size * len(MACHINES), "windows": windows,
                     "false_alarms": alarms, "false_alarm_rate": round(alarms / windows, 3),
                     "found": found, "detection_rate": round(found / windows, 3)})  # fmt: skip
    bar.close()
    good = [r for r in rows if r["false_alarm_rate"] <= 0.05 and r["detection_rate"] >= 0.95]
    return {"model_version": version, "kind": kind, "reference_samples": len(reference),
            "reference_answers": int(reference["confidence"].notna().sum()), "pool": len(plain),
            "light": light, "dimmed_machine": DIMMED, "rows": rows,
            "smallest_window_meeting_goals": good[0]["per_machine"] if good else None,
            "goal": {"false_alarm_rate_max": 0.05, "detection_rate_min": 0.95}}  # fmt: skip
