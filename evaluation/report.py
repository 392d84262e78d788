"""One self-contained HTML page per evaluation: the numbers, per-class tables, confusion matrices and a gallery
of every wrongly classified image beside its Grad-CAM heat map.

Why the gallery: the team's heat maps showed the model looking at the background circle pattern instead of the
defect; numbers alone hide that, so a reviewer sees where the model looked for each mistake. The page works
offline and the folder can be moved: no external CSS or JS, pictures are PNG files linked by relative paths.
"""

from __future__ import annotations

import html
import math
import numbers
import re
from pathlib import Path
from typing import TypeGuard

import numpy as np
from PIL import Image

from evaluation import scores
from evaluation.gradcam import overlay

THUMB = 160  # longest side of a gallery picture, in pixels
ERRORS_DIR = "errors"
_OWN_PICTURE = re.compile(r"^\d{4,}_[0-9A-Za-z]*(_cam)?\.png$")  # gallery files this module writes

_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1400px; }
h1 { font-size: 1.5em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.note { color: #555; font-size: 0.9em; max-width: 60em; }
.tables { display: flex; gap: 2em; flex-wrap: wrap; align-items: flex-start; }
.gallery { display: flex; flex-wrap: wrap; gap: 0.8em; }
.card { border: 1px solid #ccc; padding: 0.4em; font-size: 0.85em; }
.card img { image-rendering: pixelated; margin-right: 0.2em; }
.pics { display: flex; align-items: flex-start; }
.nocam { width: 160px; color: #888; text-align: center; align-self: center; }
.accepted { color: #b00; font-weight: bold; } .unknown { color: #666; }
.warnings { background: #fff4e5; border: 1px solid #e0a040; padding: 0.4em 1em; max-width: 60em; }
td.diag { background: #e6f2e6; font-weight: bold; } td.unk, th.unk { background: #eee; }
td.worse { color: #b00; } .nokey { color: #888; font-style: italic; }
"""
NO_KEY = "not recorded"  # the group of images whose machine or part number the catalog does not have


def _is_real(value: object) -> TypeGuard[numbers.Real]:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _fmt_pct(value: object) -> str:
    """A share as a percentage; "—" where there is none (None, NaN). Not yet HTML-escaped."""
    return f"{float(value):.2%}" if _is_real(value) else "—"


def _fmt_num(value: object, digits: int = 3) -> str:
    """A count as is, a number with ``digits`` decimals, anything else as text. Not yet HTML-escaped."""
    if value is None or isinstance(value, bool):
        return "—"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if _is_real(value):
        return f"{float(value):.{digits}f}"
    return str(value)


def _mpl_text(text: str) -> str:
    """Matplotlib reads ``$...$`` as mathematics (and fails on an odd count): show dollars literally."""
    return str(text).replace("$", r"\$")


def confusion_png(matrix: list[list[int]] | np.ndarray, labels: list[str], path: Path, title: str) -> Path:
    """Draw ``matrix`` (rows true class, columns predicted class) as a PNG with the count in every cell."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = np.asarray(matrix, dtype=np.int64)
    n = len(labels)
    if n == 0 or counts.shape != (n, n):
        raise ValueError(f"confusion matrix of shape {counts.shape} for {n} labels")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    side = max(4.0, 0.55 * n + 2.5)
    # A bare Figure with its own Agg canvas: no pyplot state, no global backend switch for the rest of the process.
    fig = Figure(figsize=(side + 1.0, side), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    top = max(int(counts.max()), 1)
    image = ax.imshow(counts, cmap="Blues", vmin=0, vmax=top)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    names = [_mpl_text(label) for label in labels]
    ax.set_xticks(range(n), names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(_mpl_text(title))
    size = 9 if n <= 12 else 7
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                fontsize=size,
                color="white" if counts[i, j] > top / 2 else "black",
            )
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def _thumbnail(image: Image.Image) -> Image.Image:
    """The image at THUMB px on its longest side: small AOI crops are enlarged without smoothing (the pixels
    stay visible), large ones are reduced smoothly."""
    picture = image if image.mode in ("L", "RGB") else image.convert("RGB")
    scale = THUMB / max(picture.size)
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    return picture.resize(size, resample)


def _safe_name(sha256: object) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", str(sha256))[:16]


def _clear_gallery(directory: Path) -> None:
    """Remove the pictures of an earlier report in the same folder, so none of them lingers unlisted."""
    if directory.is_dir():
        for old in directory.iterdir():
            if old.is_file() and _OWN_PICTURE.match(old.name):
                old.unlink()


def _numbers_table(summary: dict) -> str:
    accepted = summary.get("accepted_accuracy")
    coarse = ", ".join(str(c) for c in summary.get("coarse_labels") or [])
    coarse_note = f"share right after collapsing to the coarse classes ({coarse})" if coarse else "share right"
    threshold = summary.get("threshold")
    rows = [
        ("Images", _fmt_num(summary.get("images")), "images in the evaluated set"),
        ("Accuracy", _fmt_pct(summary.get("accuracy")), "share of images whose fine class is right"),
        ("Coarse accuracy", _fmt_pct(summary.get("coarse_accuracy")), coarse_note),
        (
            "Unknown threshold",
            _fmt_num(threshold, 4),
            "an answer with confidence below this becomes Unknown and goes to a person",
        ),
        ("Unknown rate", _fmt_pct(summary.get("unknown_rate")), "share of images sent to Unknown by the threshold"),
        (
            "Accepted accuracy",
            _fmt_pct(accepted) if accepted is not None else "— (no answer reached the threshold)",
            "accuracy on the answers at or above the threshold (the Unknown filter)",
        ),
        (
            "Mean detection rate",
            _fmt_pct(summary.get("mean_detection_rate")),
            "mean recall over the fine classes present",
        ),
    ]
    body = "".join(
        f'<tr><th>{html.escape(name)}</th><td class="num">{html.escape(value)}</td>'
        f'<td class="note">{html.escape(note)}</td></tr>'
        for name, value, note in rows
    )
    return f"<table>{body}</table>"


def _class_table(title: str, table: dict | None) -> str:
    if not table:
        return f"<div><h3>{html.escape(title)}</h3><p>not available</p></div>"
    rows = "".join(
        f"<tr><th>{html.escape(str(label))}</th>"
        + "".join(
            f"<td class='num'>{html.escape(_fmt_num((row or {}).get(key)))}</td>"
            for key in ("precision", "recall", "support")
        )
        + "</tr>"
        for label, row in table.items()
    )
    head = "<tr><th>class</th><th>precision</th><th>recall</th><th>support</th></tr>"
    return f"<div><h3>{html.escape(title)}</h3><table>{head}{rows}</table></div>"


def _warnings_section(found: list[dict] | None) -> str:
    if found is None:
        return "<p>not available (evaluated before warnings were kept)</p>"
    if not found:
        return "<p>None: every label reaches the recall and image-count limits (AOI_GATE__WARN_*).</p>"
    items = "".join(
        f"<li><b>{html.escape(str(w.get('warning', '')))}</b>: {html.escape(str(w.get('message', '')))}</li>"
        for w in found
    )
    return f"<div class='warnings'><ul>{items}</ul></div>"


def _unknown_table(table: dict | None) -> str:
    """The confusion with the Unknown column as an HTML table, recall, accepted recall and Unknown share per
    row, precision per column."""
    if not table or not table.get("labels"):
        return "<p>not available</p>"
    labels, columns, matrix = table["labels"], table["columns"], table["matrix"]
    unknown_col = len(columns) - 1
    unk_class = " class='unk'"
    head = (
        "<tr><th>true class</th>"
        + "".join(
            f"<th{unk_class if j == unknown_col else ''}>{html.escape(str(c))}</th>" for j, c in enumerate(columns)
        )
        + "<th>images</th><th>recall</th><th>accepted recall</th><th>Unknown</th></tr>"
    )
    body = []
    for i, label in enumerate(labels):
        cells = "".join(
            f"<td class='num{' diag' if i == j else ' unk' if j == unknown_col else ''}'>{int(v)}</td>"
            for j, v in enumerate(matrix[i])
        )
        extra = "".join(
            f"<td class='num'>{html.escape(_fmt_pct((table.get(key) or {}).get(label)))}</td>"
            for key in ("recall", "accepted_recall", "unknown_rate")
        )
        body.append(
            f"<tr><th>{html.escape(str(label))}</th>{cells}"
            f"<td class='num'>{sum(int(v) for v in matrix[i])}</td>{extra}</tr>"
        )
    precision = "".join(
        f"<td class='num'>{html.escape(_fmt_pct((table.get('precision') or {}).get(label)))}</td>" for label in labels
    )
    body.append(f"<tr><th>precision</th>{precision}<td class='unk'></td><td colspan='4'></td></tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _group_table(rows: list[dict] | None, key: str, title: str, overall: object) -> str:
    """Figures per machine or per part number; accuracy below the whole set's in red."""
    if rows is None:
        return f"<div><h3>{html.escape(title)}</h3><p>not available</p></div>"
    head = (
        f"<tr><th>{html.escape(title.lower())}</th><th>images</th><th>accuracy</th><th>accepted accuracy</th>"
        "<th>Unknown rate</th><th>lowest class recall</th></tr>"
    )
    body = []
    for row in rows:
        name = f"<span class='nokey'>{NO_KEY}</span>" if row.get(key) is None else html.escape(str(row.get(key)))
        accuracy = row.get("accuracy")
        worse = _is_real(accuracy) and _is_real(overall) and accuracy < overall
        recalls = {k: v for k, v in (row.get("recall") or {}).items() if _is_real(v)}
        lowest = min(recalls, key=recalls.get) if recalls else None
        lowest_text = f"{_fmt_pct(recalls[lowest])} ({lowest})" if lowest is not None else "—"
        body.append(
            f"<tr><th>{name}</th><td class='num'>{html.escape(_fmt_num(row.get('images')))}</td>"
            f"<td class='num{' worse' if worse else ''}'>{html.escape(_fmt_pct(accuracy))}</td>"
            f"<td class='num'>{html.escape(_fmt_pct(row.get('accepted_accuracy')))}</td>"
            f"<td class='num'>{html.escape(_fmt_pct(row.get('unknown_rate')))}</td>"
            f"<td class='num'>{html.escape(lowest_text)}</td></tr>"
        )
    return f"<div><h3>{html.escape(title)}</h3><table>{head}{''.join(body)}</table></div>"


def _confusion_section(folder: Path, summary: dict) -> str:
    parts = []
    for key, labels_key, name, title in (
        ("confusion", "labels", "confusion_fine.png", "Fine classes"),
        ("confusion_coarse", "coarse_labels", "confusion_coarse.png", "Coarse classes"),
    ):
        matrix, labels = summary.get(key), summary.get(labels_key)
        if matrix is None or not labels:
            parts.append(f"<div><h3>{html.escape(title)}</h3><p>not available</p></div>")
            continue
        confusion_png(
            matrix,
            [str(label) for label in labels],
            folder / name,
            f"{title}: {summary.get('model_version', '?')} on {summary.get('dataset', '?')}",
        )
        alt = f"confusion matrix, {title.lower()}, rows true class, columns predicted class"
        parts.append(
            f'<div><h3>{html.escape(title)}</h3><img src="{html.escape(name)}" alt="{html.escape(alt)}"></div>'
        )
    return "<div class='tables'>" + "".join(parts) + "</div>"


def _gallery(folder: Path, errors: list[dict], max_errors: int, total: int, threshold: object) -> str:
    directory = folder / ERRORS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    _clear_gallery(directory)
    if not errors and not total:
        return "<p>No wrongly classified images.</p>"
    # Most confident mistakes first: they are the ones the Unknown filter lets through to the customer.
    ordered = sorted(errors, key=lambda e: -float(e["confidence"]) if _is_real(e.get("confidence")) else math.inf)
    shown = ordered[: max(0, max_errors)]
    if len(shown) < total:
        intro = (
            f"The gallery is capped at {max_errors}: showing {len(shown)} of {total} wrong images, "
            "sorted by confidence, the most confident first."
        )
    else:
        intro = f"All {total} wrong images, sorted by confidence, the most confident first."
    cards = []
    for index, error in enumerate(shown, start=1):
        stem = f"{index:04d}_{_safe_name(error.get('sha256', ''))}"
        true, pred = str(error.get("true", "?")), str(error.get("pred", "?"))
        confidence = error.get("confidence")
        thumb = _thumbnail(error["image"])
        thumb.save(directory / f"{stem}.png", format="PNG")
        pictures = f'<img src="{ERRORS_DIR}/{stem}.png" alt="image {index}: true {html.escape(true)}">'
        if error.get("cam") is not None:
            overlay(thumb, error["cam"]).save(directory / f"{stem}_cam.png", format="PNG")
            pictures += f'<img src="{ERRORS_DIR}/{stem}_cam.png" alt="heat map {index}: where the model looked">'
        else:
            pictures += '<div class="nocam">no heat map</div>'
        verdict = ""
        if _is_real(threshold) and _is_real(confidence):
            verdict = (
                '<div class="accepted">accepted: at or above the threshold, a wrong answer let through</div>'
                if confidence >= threshold
                else '<div class="unknown">Unknown: below the threshold, goes to a person</div>'
            )
        sha = str(error.get("sha256", ""))
        cards.append(
            f'<div class="card"><div class="pics">{pictures}</div>'
            f"<div>true: <b>{html.escape(true)}</b></div><div>predicted: <b>{html.escape(pred)}</b></div>"
            f"<div>confidence: {html.escape(_fmt_num(confidence, 4))}</div>{verdict}"
            f'<div class="note" title="{html.escape(sha)}">sha256 {html.escape(sha[:16])}</div></div>'
        )
    return f"<p>{html.escape(intro)}</p><div class='gallery'>{''.join(cards)}</div>"


def write_report(
    folder: Path, summary: dict, errors: list[dict], max_errors: int = 500, total_errors: int | None = None
) -> Path:
    """Write ``folder/index.html`` with its pictures beside it (confusion matrices, ``errors/`` thumbnails) and
    return the page's path. ``errors``: dicts with sha256, true, pred, confidence, image (PIL) and cam (a 0..1
    heat map of where the model looked for its answer, or None). The gallery shows at most ``max_errors`` of
    them; ``total_errors`` is the number of wrong images when the caller passed only some of them (to spare
    computing heat maps that would not be shown), so the page still says how many there were."""
    folder = Path(folder)
    total = max(len(errors), total_errors or 0)
    folder.mkdir(parents=True, exist_ok=True)
    version, dataset = str(summary.get("model_version", "?")), str(summary.get("dataset", "?"))
    split = summary.get("split")
    title = f"Evaluation of model {version} on {dataset}" + (f" ({split} split)" if split else "")
    facts = ", ".join(
        f"{name} {summary[key]}"
        for key, name in (("kind", "kind"), ("created_at", "created"))
        if summary.get(key) is not None
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p class="note">{html.escape(facts)}</p>
<h2>Numbers</h2>
{_numbers_table(summary)}
<h2>Warnings</h2>
<p class="note">Labels whose recall is below the limit, or with too few images for their recall to mean much.
They never fail the gate; they say where to look.</p>
{_warnings_section(summary.get("warnings"))}
<h2>Per class</h2>
<p class="note">Precision: of the images predicted as the class, the share that are it. Recall (detection rate):
of the images of the class, the share found. Support: images of the class. — where undefined.</p>
<div class="tables">{_class_table("Fine classes", summary.get("per_class"))}
{_class_table("Coarse classes", summary.get("per_class_coarse"))}</div>
<h2>Blind-test table: answers with the Unknown column</h2>
<p class="note">Rows: true class; columns: the answers the Unknown filter accepted (confidence at or above
{html.escape(_fmt_num(summary.get("threshold"), 4))}), by predicted class, and UNKNOWN for the images it sent to a
person; each row sums to the class's images. Recall: {html.escape(scores.RECALL_WITH_UNKNOWN)}. Accepted recall:
right among the accepted images of the class. Unknown: the class's share sent to a person. Precision: right among
the accepted answers of that class.</p>
{_unknown_table(summary.get("confusion_unknown"))}
<h2>Per machine and per part number</h2>
<p class="note">The same figures for the images of each machine and each part number, as the catalog records
them ({NO_KEY}: images ingested without one, as the public sets are). Accuracy below the whole set's is red;
the lowest class recall names the class.</p>
<div class="tables">{_group_table(summary.get("per_machine"), "machine_id", "Machine", summary.get("accuracy"))}
{_group_table(summary.get("per_part"), "part_no", "Part number", summary.get("accuracy"))}</div>
<h2>Confusion matrices</h2>
<p class="note">Rows: true class; columns: predicted class; each cell counts images. The diagonal is right.</p>
{_confusion_section(folder, summary)}
<h2>Wrongly classified images</h2>
<p class="note">Left: the image. Right: the Grad-CAM heat map of where the model found the evidence for its
answer (red: strong, blue: none). Red on the background circle pattern instead of on the defect means the
model used the wrong cue.</p>
{_gallery(folder, errors, max_errors, total, summary.get("threshold"))}
</body></html>
"""
    path = folder / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
