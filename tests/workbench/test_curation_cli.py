"""`aoi images relabel|exclude|restore|delete`: JSON shapes, exit code 2 with one line for every refusal, and
`aoi images` (the listing) working exactly as before it became a group."""

from __future__ import annotations

import json

import pytest
from sqlmodel import col, select
from typer.testing import CliRunner

from aoi.catalog import db
from aoi.catalog.models import Image, ImageChange, UserRole
from aoi.catalog.queries import GalleryFilter
from aoi.catalog.queries import images as gallery
from cli import app
from tests.workbench.curation_helpers import account, crops


def run(*args: str, code: int = 0):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, f"{result.stdout}\n{result.stderr}\n{result.exception!r}"
    return result


def recorded(settings) -> list[ImageChange]:
    with db.session(settings.catalog_url) as s:
        return list(s.exec(select(ImageChange).order_by(col(ImageChange.id))).all())


def as_json(*args: str, code: int = 0):
    return json.loads(run(*args, "--json", code=code).stdout)


@pytest.fixture
def catalog(settings):
    ids = crops(settings.catalog_url, 3)
    account(settings.catalog_url, "eve", UserRole.engineer)
    account(settings.catalog_url, "vic", UserRole.viewer)
    account(settings.catalog_url, "gone", "engineer", disabled=True)
    return ids


def test_each_action_records_the_account_via_cli_and_prints_its_change(settings, catalog):
    a, b = catalog["PASS"][:2]
    out = as_json("images", "relabel", str(a), str(b), "--label", "nick", "--by", "eve", "--why", "a bite")
    assert set(out) == {"action", "changed", "by", "via", "reason", "at", "images"}
    assert (out["action"], out["changed"], out["by"], out["via"], out["reason"]) == (
        "relabel",
        2,
        "eve",
        "cli",
        "a bite",
    )
    assert out["images"] == [
        {
            "image_id": i,
            "old_label": "PASS",
            "new_label": "NICK",
            "old_status": "labeled",
            "new_status": "labeled",
            "blind": False,
        }
        for i in (a, b)
    ]
    assert (
        as_json("images", "exclude", str(a), "--by", "eve", "--why", "blurred")["images"][0]["new_status"] == "excluded"
    )
    assert as_json("images", "delete", str(b), "--by", "eve", "--why", "dup")["images"][0]["new_status"] == "deleted"
    restored = as_json("images", "restore", str(a), str(b), "--by", "eve", "--why", "fine")
    assert [(i["old_status"], i["new_status"]) for i in restored["images"]] == [
        ("excluded", "labeled"),
        ("deleted", "labeled"),
    ]
    text = run("images", "exclude", str(a), "--by", "eve", "--why", "again").stdout
    assert "exclude: 1 image(s) by eve (again)" in text
    changes = recorded(settings)
    assert [c.action for c in changes] == ["relabel", "relabel", "exclude", "delete", "restore", "restore", "exclude"]
    assert {(c.via, c.by) for c in changes} == {("cli", "eve")}


@pytest.mark.parametrize(
    "args,message",
    [
        (("relabel", "{id}", "--label", "SCRATCH", "--by", "eve", "--why", "x"), "unknown label 'SCRATCH'"),
        (("relabel", "{id}", "--label", "MISSING_HOLE", "--by", "eve", "--why", "x"), "not a label of gray images"),
        (("exclude", "{id}", "99999", "--by", "eve", "--why", "x"), "no image 99999"),
        (("delete", "{id}", "--by", "nobody", "--why", "x"), "no workbench account 'nobody'"),
        (("delete", "{id}", "--by", "vic", "--why", "x"), "viewers read"),
        (("delete", "{id}", "--by", "gone", "--why", "x"), "disabled"),
        (("restore", "{id}", "--by", "eve", "--why", "x"), "not excluded or deleted"),
        (("exclude", "{id}", "--by", "eve", "--why", ""), "a reason is required"),
        (("exclude", "{id}", "--by", "eve"), "Missing option '--why'"),
        (("exclude", "--by", "eve", "--why", "x"), "Missing argument"),
    ],
)
def test_refusals_are_one_line_exit_2_and_change_nothing(settings, catalog, args, message):
    target = catalog["PASS"][0]
    argv = [a.format(id=target) for a in args]
    out = as_json("images", *argv, code=2)
    assert message in out["error"]
    plain = run("images", *argv, code=2)
    assert len(plain.stderr.strip().splitlines()) == 1 and "Traceback" not in plain.stderr
    with db.session(settings.catalog_url) as s:
        assert db.get_row(s, Image, target).label == "PASS" and db.get_row(s, Image, target).status == "labeled"
    assert recorded(settings) == []


def test_the_listing_is_unchanged(settings, catalog):
    url = settings.catalog_url
    assert as_json("images") == json.loads(json.dumps(gallery(url), default=str))
    assert [r["id"] for r in as_json("images", "--label", "OPEN")] == catalog["OPEN"]
    page = as_json("images", "--status", "labeled", "--source", "gray", "--limit", "2", "--offset", "1")
    assert [r["id"] for r in page] == [
        r["id"] for r in gallery(url, GalleryFilter(status="labeled", limit=2, offset=1))
    ]
    assert as_json("images", "--name", "img_000") and as_json("images", "--label", "NOPE") == []
    assert "not an ISO 8601 time" in as_json("images", "--since", "yesterday", code=2)["error"]
    assert "is not one of" in as_json("images", "--status", "lost", code=2)["error"]
    assert "9 images" in run("images").stdout  # the table, as before
    assert "relabel" in run("images", "--help").stdout


def test_dataset_show_counts_peoples_changes_in_the_cleaning_table(settings, catalog):
    from datasets.versions import build

    build(settings.catalog_url, "g-v1", source="gray", split="1:1:0")
    as_json("images", "relabel", str(catalog["PASS"][0]), "--label", "OPEN", "--by", "eve", "--why", "open")
    as_json("images", "delete", str(catalog["SHORT"][0]), "--by", "eve", "--why", "dup")
    build(settings.catalog_url, "g-v2", source="gray", split="1:1:0", parent="g-v1")
    shown = run("dataset", "show", "g-v2").stdout
    assert "relabelled by a person (1 images)" in shown
    assert "removed by a person (1 images, 1 since the parent)" in shown
    rules = [step["rule"] for step in as_json("dataset", "show", "g-v2")["cleaning"]]
    assert rules[0] == "relabelled by a person" and "removed by a person" in rules
