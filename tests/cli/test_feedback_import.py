"""`aoi feedback import FILE`: a batch of the VRS station's findings in one command, with exact counts."""

from __future__ import annotations

import json
import os
import time

import pytest
from sqlmodel import func, select
from typer.testing import CliRunner

from aoi.catalog import db
from aoi.catalog.models import LineFeedback, Prediction, table_of
from cli import app
from tests.flows.helpers import aoi
from tests.serving.helpers import row

GRAY = ["PASS", "OPEN", "SHORT", "NICK", "SPUR", "SPURIOUS_COPPER", "PINHOLE"]


def predictions(settings, n: int, kind: str = "gray", start: int = 0) -> list[str]:
    rows = [row(i, kind=kind) for i in range(start, start + n)]
    with db.get_engine(settings.catalog_url).begin() as connection:
        connection.execute(table_of(Prediction).insert(), rows)
    return [r["request_id"] for r in rows]


def test_ten_thousand_reports_import_in_one_command_with_exact_counts(settings, tmp_path):
    ids = predictions(settings, 9_850)
    colour = predictions(settings, 100, kind="color", start=20_000)
    with db.session(settings.catalog_url) as s:  # confirmed before: 50 the same, 50 with another label
        for i in range(100):
            s.add(LineFeedback(request_id=ids[i], label=GRAY[i % 7], by="operator", source="api"))
        s.commit()
    lines = ["request_id,label,by"]
    imported = same = conflicts = 0
    unknown: list[int] = []
    bad: list[int] = []
    for i, request_id in enumerate(ids):
        number = len(lines) + 1
        if i < 50:
            lines.append(f"{request_id},{GRAY[i % 7]},vrs-01")  # already confirmed with this label
            same += 1
        elif i < 100:
            lines.append(f"{request_id},{GRAY[(i + 1) % 7]},vrs-01")  # another label than the one on record
            conflicts += 1
        elif i % 97 == 0:
            lines.append(f"{request_id},SCRATCH,vrs-01")
            bad.append(number)
        else:
            lines.append(f"{request_id},{GRAY[i % 7].lower()},")  # by from --by; any case of the name
            imported += 1
    for i, request_id in enumerate(colour):  # PASS is no colour class
        lines.append(f"{request_id},{'PASS' if i % 2 else 'Mouse_bite'},vrs-02")
        if i % 2:
            bad.append(len(lines))
        else:
            imported += 1
    for i in range(60):
        lines.append(f"nosuch{i:06d},SHORT,vrs-01")
        unknown.append(len(lines))
    lines.append(f"{ids[200]},SHORT,vrs-01,extra")  # four columns
    lines.append(f"{ids[201]},OPEN,vrs-01")  # a repeat within the file with another label
    (tmp_path / "vrs.csv").write_text("\n".join(lines) + "\n")
    assert len(lines) - 1 >= 10_000

    started = time.perf_counter()
    result = aoi("feedback", "import", str(tmp_path / "vrs.csv"), "--by", "vrs-03")
    seconds = time.perf_counter() - started
    assert seconds < 20, seconds  # bulk queries: about 2 s on a shared CI core; one round trip per line is minutes
    assert result["lines"] == len(lines) - 1
    assert result["imported"] == imported
    assert result["already_confirmed"] == same
    assert result["conflicts"] == conflicts + 1
    assert [u["line"] for u in result["details"]["unknown_request_ids"]] == unknown
    assert [b["line"] for b in result["details"]["bad_labels"]] == bad
    assert [b["line"] for b in result["details"]["bad_lines"]] == [len(lines) - 1]
    with db.session(settings.catalog_url) as s:
        assert s.exec(select(func.count()).select_from(LineFeedback)).one() == 100 + imported
        one = s.exec(select(LineFeedback).where(LineFeedback.request_id == ids[101])).one()
        assert (one.label, one.by, one.source) == (GRAY[101 % 7], "vrs-03", "import")
        nick = s.exec(select(LineFeedback).where(LineFeedback.request_id == colour[0])).one()
        assert (nick.label, nick.by) == ("NICK", "vrs-02")
    again = aoi("feedback", "import", str(tmp_path / "vrs.csv"), "--by", "vrs-03")  # idempotent
    assert again["imported"] == 0 and again["already_confirmed"] == same + imported


def test_json_lines_are_imported_and_a_line_without_by_is_counted(settings, tmp_path):
    ids = predictions(settings, 3)
    path = tmp_path / "vrs.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps({"request_id": ids[0], "label": "SHORT", "by": "vrs-01"}),
                "not json",
                json.dumps({"request_id": ids[1], "label": "not_defect", "by": "vrs-01"}),
                json.dumps({"request_id": ids[2], "label": "OPEN"}),  # no by and no --by
                "",
                json.dumps(["a", "list"]),
            ]
        )
    )
    result = aoi("feedback", "import", str(path))
    assert (result["imported"], result["bad_lines"]) == (2, 3)
    assert [b["line"] for b in result["details"]["bad_lines"]] == [2, 4, 6]


@pytest.mark.parametrize(
    "case", ["missing", "folder", "binary", "latin1", "empty", "no label column", "one column", "json list", "fifo"]
)
def test_a_file_that_is_no_batch_is_one_line_and_exit_2(settings, tmp_path, case):
    predictions(settings, 1)
    path = tmp_path / "in.csv"
    if case == "folder":
        path.mkdir()
    elif case == "binary":
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    elif case == "latin1":
        path.write_bytes("request_id,label\nreq000000,SH\xd6RT\n".encode("latin-1"))
    elif case == "empty":
        path.write_text("\n\n")
    elif case == "no label column":
        path.write_text("request_id,by\nreq000000,vrs\n")
    elif case == "one column":
        path.write_text("req000000\n")
    elif case == "json list":
        path = tmp_path / "in.jsonl"
        path.write_text('["req000000", "SHORT"]\n')
    elif case == "fifo":
        os.mkfifo(path)  # reading it would wait for a writer forever
    result = CliRunner().invoke(app, ["feedback", "import", str(path), "--by", "vrs-01"])
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert (
        len(result.stderr.strip().splitlines()) == 1 and "error" in result.stderr and "Traceback" not in result.stderr
    )
    as_json = aoi("feedback", "import", str(path), "--by", "vrs-01", code=2)
    assert str(path) in as_json["error"]


def test_a_file_that_does_not_say_who_needs_by(settings, tmp_path):
    predictions(settings, 1)
    path = tmp_path / "in.csv"
    path.write_text("req000000,SHORT\n")
    assert "--by" in aoi("feedback", "import", str(path), code=2)["error"]
    assert aoi("feedback", "import", str(path), "--by", "vrs-01")["imported"] == 1
