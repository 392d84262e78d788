"""The evaluation page: numbers, per-class tables, confusion pictures and the error gallery, on real files."""

from __future__ import annotations

import html
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from evaluation.report import _warnings_section, confusion_png, write_report

LABELS = ["PASS", "OPEN", "SHORT", "<b>"]  # "<b>" stands for any label that would break the page unescaped
COARSE = ["PASS", "REPAIRABLE", "NONREPAIRABLE"]


def _summary(**changes) -> dict:
    summary = {
        "model_version": "gray-r1",
        "kind": "gray",
        "dataset": "deeppcb-blind",
        "split": "blind",
        "images": 120,
        "threshold": 0.9945,
        "accuracy": 0.93,
        "coarse_accuracy": 0.95,
        "accepted_accuracy": 0.99,
        "unknown_rate": 0.2,
        "mean_detection_rate": 0.92,
        "labels": LABELS,
        "coarse_labels": COARSE,
        "per_class": {name: {"precision": 0.9, "recall": 1.0, "support": 30} for name in LABELS[:3]}
        | {"<b>": {"precision": None, "recall": 0.5, "support": 30}},
        "per_class_coarse": {name: {"precision": 0.95, "recall": 0.9, "support": 40} for name in COARSE},
        "confusion": [[28, 1, 1, 0], [2, 27, 1, 0], [0, 0, 30, 0], [3, 4, 8, 15]],
        "confusion_coarse": [[28, 2, 0], [2, 57, 1], [3, 4, 23]],
        "created_at": "2026-11-22T10:00:00+00:00",
    }
    return summary | changes


def _errors(n: int, with_cam: bool = True) -> list[dict]:
    rng = np.random.default_rng(0)
    errors = []
    for i in range(n):
        mode, size = ("L", (64, 64)) if i % 2 else ("RGB", (300, 200))  # gray crops and larger colour images
        image = Image.fromarray(rng.integers(0, 255, (size[1], size[0]) + (() if mode == "L" else (3,)), np.uint8))
        errors.append(
            {
                "sha256": f"{i:064x}",
                "true": LABELS[i % 4],
                "pred": LABELS[(i + 1) % 4],
                "confidence": 0.5 + i / (2 * n),
                "image": image,
                "cam": rng.random((2, 2)).astype(np.float32) if with_cam and i != 1 else None,
            }
        )
    return errors


def _linked(page: str) -> list[str]:
    return re.findall(r'src="([^"]+)"', page)


def test_page_numbers_tables_and_pictures(tmp_path):
    errors = _errors(6)
    path = write_report(tmp_path / "report", _summary(), errors)
    assert path == tmp_path / "report" / "index.html"
    page = path.read_text(encoding="utf-8")
    assert "gray-r1" in page and "deeppcb-blind" in page and "<title>" in page
    for shown in ("93.00%", "95.00%", "99.00%", "20.00%", "92.00%", "0.9945", "120"):
        assert shown in page
    for error in errors:  # every error's labels and confidence are on the page
        assert f"true: <b>{html.escape(error['true'])}</b>" in page
        assert f"predicted: <b>{html.escape(error['pred'])}</b>" in page
        assert f"{error['confidence']:.4f}" in page
    assert "All 6 wrong images" in page and "showing" not in page
    assert "no heat map" in page  # error 1 came without a cam
    assert "<b><b></b>" not in page and "&lt;b&gt;" in page  # the label "<b>" is text, not markup
    links = _linked(page)
    assert "confusion_fine.png" in links and "confusion_coarse.png" in links
    assert len([link for link in links if link.startswith("errors/")]) == 6 + 5  # 6 images, 5 heat maps
    for link in links:
        assert not link.startswith(("/", "http")), "links must be relative so the folder can move"
        with Image.open(path.parent / link) as picture:
            picture.verify()
    assert "<link" not in page and "<script" not in page  # nothing to fetch: works offline


def test_gallery_cap_and_order(tmp_path):
    errors = _errors(7)
    page = write_report(tmp_path, _summary(), errors, max_errors=3).read_text(encoding="utf-8")
    assert "showing 3 of 7 wrong images" in page
    shown = re.findall(r"confidence: ([0-9.]+)", page)
    top = sorted((e["confidence"] for e in errors), reverse=True)[:3]
    assert shown == [f"{c:.4f}" for c in top]  # the most confident (most dangerous) mistakes first
    assert len(list((tmp_path / "errors").glob("*.png"))) == 6
    # The caller passed only the first 3 of 40 (no heat maps computed for the rest): the page still says 40.
    page = write_report(tmp_path, _summary(), errors[:3], max_errors=3, total_errors=40).read_text(encoding="utf-8")
    assert "showing 3 of 40 wrong images" in page
    # Written again with fewer errors: no picture of the earlier report lingers.
    write_report(tmp_path, _summary(), errors[:1])
    assert len(list((tmp_path / "errors").glob("*.png"))) == 2


def test_threshold_verdict_and_missing_values(tmp_path):
    errors = _errors(2)
    errors[0]["confidence"], errors[1]["confidence"] = 0.999, 0.4
    summary = _summary(accepted_accuracy=None, mean_detection_rate=None, per_class_coarse=None)
    page = write_report(tmp_path, summary, errors).read_text(encoding="utf-8")
    assert "no answer reached the threshold" in page
    assert "accepted: at or above the threshold" in page and "Unknown: below the threshold" in page
    assert not re.search(r"\bNone\b", page) and not re.search(r"\bnan\b", page, re.IGNORECASE)


def test_no_errors_and_moved_folder(tmp_path):
    path = write_report(tmp_path / "a", _summary(), [])
    assert "No wrongly classified images." in path.read_text(encoding="utf-8")
    shutil.move(tmp_path / "a", tmp_path / "b")
    page = (tmp_path / "b" / "index.html").read_text(encoding="utf-8")
    assert _linked(page) and all((tmp_path / "b" / link).is_file() for link in _linked(page))


def test_confusion_png(tmp_path):
    matrix = np.array([[5, 0, 1], [2, 9, 0], [0, 0, 0]])
    path = confusion_png(matrix, ["PASS", "cost $5", "odd $"], tmp_path / "sub" / "m.png", "title with $ sign")
    with Image.open(path) as picture:
        assert picture.format == "PNG" and picture.width > 200 and picture.height > 200
        pixels = np.asarray(picture.convert("RGB"))
    assert pixels.std() > 10  # something was drawn
    with pytest.raises(ValueError):
        confusion_png([[1, 2], [3, 4]], ["PASS", "OPEN", "SHORT"], tmp_path / "bad.png", "bad")


def _with_tables(**changes) -> dict:
    """A summary with the blind-test table, per-machine and per-part figures and a warning, as evaluate gives."""
    unknown = {
        "labels": LABELS,
        "columns": [*LABELS, "UNKNOWN"],
        "threshold": 0.9945,
        "matrix": [[25, 0, 1, 0, 4], [1, 20, 1, 0, 8], [0, 0, 29, 0, 1], [2, 1, 5, 9, 13]],
        "recall": {"PASS": 25 / 30, "OPEN": 20 / 30, "SHORT": 29 / 30, "<b>": 9 / 30},
        "accepted_recall": {"PASS": 25 / 26, "OPEN": 20 / 22, "SHORT": 1.0, "<b>": 9 / 17},
        "unknown_rate": {"PASS": 4 / 30, "OPEN": 8 / 30, "SHORT": 1 / 30, "<b>": 13 / 30},
        "precision": {"PASS": 25 / 28, "OPEN": 20 / 21, "SHORT": 29 / 36, "<b>": 1.0},
    }
    per_machine = [
        {
            "machine_id": "AOI-1",
            "images": 80,
            "accuracy": 0.97,
            "accepted_accuracy": 0.99,
            "unknown_rate": 0.1,
            "recall": {"PASS": 1.0, "OPEN": 0.95},
        },
        {
            "machine_id": "AOI-7",
            "images": 30,
            "accuracy": 0.71,
            "accepted_accuracy": 0.9,
            "unknown_rate": 0.5,
            "recall": {"PASS": 0.9, "OPEN": 0.42},
        },
        {
            "machine_id": None,
            "images": 10,
            "accuracy": 0.95,
            "accepted_accuracy": None,
            "unknown_rate": 1.0,
            "recall": {},
        },
    ]
    per_part = [
        {
            "part_no": None,
            "images": 120,
            "accuracy": 0.93,
            "accepted_accuracy": 0.99,
            "unknown_rate": 0.2,
            "recall": {"PASS": 0.9},
        }
    ]
    warnings = [
        {
            "label": "<b>",
            "warning": "low recall",
            "figure": 0.5,
            "limit": 0.9,
            "message": "<b>: recall 50.00% is below 90.00% (15 of 30 found)",
        }
    ]
    return _summary(confusion_unknown=unknown, per_machine=per_machine, per_part=per_part, warnings=warnings) | changes


def _rows(page: str, after: str) -> list[list[str]]:
    """The cells of the first table after the heading ``after``, row by row, tags stripped."""
    section = page.split(after, 1)[1].split("</table>", 1)[0]
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", section)
    ]


def test_blind_test_table_per_machine_per_part_and_warnings_on_the_page(tmp_path):
    summary = _with_tables()
    page = write_report(tmp_path, summary, []).read_text(encoding="utf-8")
    rows = _rows(page, "Blind-test table")
    assert rows[0][:6] == ["true class", "PASS", "OPEN", "SHORT", "<b>", "UNKNOWN"]
    body = {r[0]: r[1:] for r in rows[1:]}
    for i, label in enumerate(LABELS):  # counts, row total, recall, accepted recall, Unknown share
        counts = summary["confusion_unknown"]["matrix"][i]
        assert body[label][:5] == [str(v) for v in counts] and body[label][5] == str(sum(counts))
        assert body[label][6] == f"{summary['confusion_unknown']['recall'][label]:.2%}"
        assert body[label][8] == f"{summary['confusion_unknown']['unknown_rate'][label]:.2%}"
    assert body["precision"][:4] == [f"{summary['confusion_unknown']['precision'][k]:.2%}" for k in LABELS]
    machines = {r[0]: r[1:] for r in _rows(page, "<h3>Machine</h3>")[1:]}
    assert machines["AOI-7"][:2] == ["30", "71.00%"] and machines["AOI-7"][4] == "42.00% (OPEN)"
    assert "not recorded" in machines and machines["not recorded"][2] == "—"
    assert page.count("class='num worse'") == 1  # only AOI-7 is below the whole set's 93%
    assert list({r[0]: r for r in _rows(page, "<h3>Part number</h3>")[1:]}) == ["not recorded"]
    assert "low recall" in page and "&lt;b&gt;: recall 50.00%" in page and "<b>: recall" not in page


def test_a_summary_stored_before_the_tables_existed_still_renders(tmp_path):
    old = _summary(confusion_unknown=None, per_machine=None, per_part=None, warnings=None)
    page = write_report(tmp_path, old, []).read_text(encoding="utf-8")
    assert "Blind-test table" in page and page.count("not available") >= 3
    assert "None: every label reaches" in _warnings_section([]) and "<li>" not in _warnings_section([])
