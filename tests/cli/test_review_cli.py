"""`aoi review list|label|skip|ingest`: the review queue from a terminal, its JSON, and one line with exit code 2 for
every refusal."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from aoi.catalog import db
from aoi.catalog.models import KeptAnswer, LineFeedback, UserRole
from cli import app
from tests.workbench.curation_helpers import account
from tests.workbench.kept_helpers import kept_answers


def run(*args: str, code: int = 0):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, f"{result.stdout}\n{result.stderr}\n{result.exception!r}"
    return result


def as_json(*args: str, code: int = 0):
    return json.loads(run(*args, "--json", code=code).stdout)


@pytest.fixture
def queue(settings):
    account(settings.catalog_url, "eve", UserRole.engineer)
    account(settings.catalog_url, "rex", UserRole.reviewer)
    account(settings.catalog_url, "vic", UserRole.viewer)
    account(settings.catalog_url, "gone", "engineer", disabled=True)
    gray = kept_answers(settings, [("SHORT", 0.6), ("OPEN", 0.2), ("SHORT", 0.4)])
    color = kept_answers(settings, [("MISSING_HOLE", 0.1)], kind="color", seed=5)
    return gray, color


def test_list_in_the_setting_s_order_with_kind_and_limit(settings, queue):
    gray, color = queue
    out = as_json("review", "list")
    assert out["order"] == "lowest_confidence" and out["waiting"] == {"color": 1, "gray": 3}
    assert [a["request_id"] for a in out["answers"]] == [color[0], gray[1], gray[2], gray[0]]
    first = out["answers"][1]
    assert first["top"][0] == ["OPEN", 0.2] and len(first["top"]) == 3
    assert (first["machine_id"], first["part_no"], first["upstream_code"], first["model_version"]) == (
        "AOI-2",
        "P-101",
        "OPEN",
        "gray-v1",
    )
    assert [a["request_id"] for a in as_json("review", "list", "--kind", "gray", "--limit", "2")["answers"]] == [
        gray[1],
        gray[2],
    ]
    oldest = as_json("review", "list", "--kind", "gray", "--order", "oldest")["answers"]
    assert [a["request_id"] for a in oldest] == gray
    table = run("review", "list").stdout
    assert gray[1] in table and "20.0%" in table


def test_label_skip_and_the_special_words_record_the_account(settings, queue):
    gray, color = queue
    out = as_json("review", "label", gray[0], "nick", "--by", "eve")
    assert (out["status"], out["true_label"], out["decided_by"]) == ("labelled", "NICK", "eve")
    assert out["decided_at"]
    assert as_json("review", "skip", gray[1], "--by", "rex")["status"] == "skipped"
    assert as_json("review", "label", gray[2], "BAD_IMAGE", "--by", "rex")["status"] == "bad_image"
    assert as_json("review", "label", color[0], "NOT_DEFECT", "--by", "rex")["true_label"] == "NOT_DEFECT"
    assert as_json("review", "list")["answers"] == []
    assert [a["request_id"] for a in as_json("review", "list", "--status", "skipped")["answers"]] == [gray[1]]
    with db.session(settings.catalog_url) as s:
        truths = {f.request_id: (f.label, f.by, f.source) for f in s.exec(select(LineFeedback)).all()}
    assert truths == {gray[0]: ("NICK", "eve", "review"), color[0]: ("NOT_DEFECT", "rex", "review")}
    plain = run("review", "label", gray[1], "SPUR", "--by", "eve").stdout
    assert f"request {gray[1]}: labelled (SPUR) by eve" in plain


@pytest.mark.parametrize(
    "args, message",
    [
        (("label", "{g0}", "MISSING_HOLE", "--by", "eve"), "not a class of gray answers"),
        (("label", "{g0}", "SHORT", "--by", "vic"), "viewers read"),
        (("label", "{g0}", "SHORT", "--by", "gone"), "disabled"),
        (("label", "{g0}", "SHORT", "--by", "nobody"), "no workbench account"),
        (("label", "nope", "SHORT", "--by", "eve"), "no kept answer"),
        (("skip", "{decided}", "--by", "rex"), "already labelled SHORT by eve"),
        (("list", "--kind", "blue"), "gray or color"),
        (("list", "--order", "newest"), "order must be one of"),
        (("list", "--status", "labelled"), "waiting or skipped"),
        (("ingest", "--kind", "blue"), "gray or color"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(settings, queue, args, message):
    gray, _ = queue
    decided = gray[2]
    run("review", "label", decided, "SHORT", "--by", "eve")
    words = [a.format(g0=gray[0], decided=decided) for a in args]
    result = run("review", *words, code=2)
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    out = as_json("review", *words, code=2)
    assert message in out["error"]
    with db.session(settings.catalog_url) as s:
        assert db.get_row(s, KeptAnswer, 1).status == "waiting", "nothing changed"


def test_ingest_makes_the_inbox_batch_once(settings, queue):
    gray, _ = queue
    run("review", "label", gray[0], "SHORT", "--by", "eve")
    run("review", "label", gray[1], "BAD_IMAGE", "--by", "eve")
    out = as_json("review", "ingest", "--kind", "gray")
    assert (out["format"], out["added"], out["quarantined"], out["by_label"]) == ("review", 1, 1, {"SHORT": 1})
    again = as_json("review", "ingest", "--kind", "gray")
    assert again["batch_id"] is None and again["added"] == 0 and set(again) == set(out)
    assert "no gray answers labelled since the last batch" in run("review", "ingest", "--kind", "gray").stdout
