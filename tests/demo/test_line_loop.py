"""The demo closes the loop (demo/line_loop.py, demo/lamp_ageing.py's truth record): it labels only kept answers
whose bytes may train, from the terminal, and the retraining's step takes them; SIMULATION: the line confirms one
machine's answers wrong through POST /feedback, enough for live accuracy to flag that machine."""

from __future__ import annotations

import hashlib
import json

from sqlmodel import select
from starlette.testclient import TestClient

from aoi.catalog import db
from aoi.catalog.models import Image, KeptAnswer, LineFeedback, Prediction, table_of
from aoi.store import ImageStore
from datasets.versions import build, register_blind
from demo import lamp_ageing, line_loop
from ingest import steps as ingest_steps
from monitoring import live
from tests.serving.helpers import KEY, row
from tests.workbench.curation_helpers import stored_images
from tests.workbench.helpers import board
from tests.workbench.kept_helpers import keep

COLOR = ("MISSING_HOLE", "OPEN", "SHORT", "NICK", "SPUR", "SPURIOUS_COPPER")


def answer(request_id: str, label: str, runner_up: str = "SPUR", unknown: bool = False) -> dict:
    """The fields of a /classify answer that the truth record keeps."""
    return {
        "request_id": request_id,
        "kind": "color",
        "model_label": label,
        "unknown": unknown,
        "route": "REVIEW",
        "top3": [{"label": label, "confidence": 0.5}, {"label": runner_up, "confidence": 0.3}],
    }


def test_the_demo_labels_only_answers_whose_bytes_may_train_and_retraining_takes_them(settings, tmp_path):
    sources = stored_images(settings, {label: 3 for label in COLOR}, source="color")
    build(settings.catalog_url, "c-v1", source="color", split="1:1:0", seed=1)
    blind_ids = stored_images(settings, {"OPEN": 1}, source="color", size=40)
    with db.session(settings.catalog_url) as s:
        source = [db.get_row(s, Image, i) for i in sources]
        blind = [db.get_row(s, Image, i) for i in blind_ids]
    register_blind(settings.catalog_url, "c-blind", shas={blind[0].sha256}, date="2026-07-17")
    store = ImageStore(settings.store_dir)
    # What the lamp-ageing stage sent: re-shot images (new bytes), a blind image as it is, a catalogued one, and
    # one re-shot image from the machine whose answers the line confirms (left to the VRS station).
    shots = [
        ("VRS-01", board(1), source[0]),
        ("VRS-02", board(2), source[4]),
        ("VRS-04", store.get(blind[0].sha256), blind[0]),
        ("VRS-01", store.get(source[7].sha256), source[7]),
        (line_loop.STALE_MACHINE, board(3), source[10]),
    ]
    sent = [{"machine_id": m, "light": 1.0, "image": data, "source": image.sha256} for m, data, image in shots]
    answers = {i: answer(f"rq{i:04d}", "SHORT") for i in range(len(sent))}
    truth = tmp_path / "ageing-answers.jsonl"
    assert lamp_ageing.write_truth(settings, truth, sent, answers) == len(sent)
    recorded = line_loop.read_truth(truth)
    assert [r["true_label"] for r in recorded] == [image.label for _, _, image in shots]
    assert recorded[0]["sha256"] == hashlib.sha256(shots[0][1]).hexdigest() and recorded[0]["runner_up"] == ["SPUR"]
    for i, (machine, data, _) in enumerate(shots):  # the service kept every one of them (REVIEW answers)
        keep(
            settings,
            data,
            request_id=f"rq{i:04d}",
            kind="color",
            reason="review",
            confidence=0.2 + i / 10,
            machine_id=machine,
            label="SHORT",
            model_version="color-v1",
        )
    keep(settings, board(9), request_id="rq-other", kind="color", confidence=0.01)  # not the simulation's shot

    assert line_loop.waiting(settings) == {"color": {"review": 5, "unknown": 1}}
    review = line_loop.label_from_terminal(settings, truth, at_most=5)

    assert [d["request_id"] for d in review["labelled"]] == ["rq0000", "rq0001"], review
    assert review["failed"] == [] and review["by"] == line_loop.ENGINEER
    assert review["labelled"][0]["command"] == (f"aoi review label rq0000 {source[0].label} --by {line_loop.ENGINEER}")
    with db.session(settings.catalog_url) as s:
        decided = {a.request_id: (a.status, a.true_label, a.decided_by) for a in s.exec(select(KeptAnswer))}
    assert decided["rq0001"] == ("labelled", source[4].label, line_loop.ENGINEER)
    assert decided["rq0002"][0] == decided["rq0004"][0] == "waiting"  # blind bytes; the stale machine's
    # The retraining run's 'confirmed-answers' step makes them training images; its dataset version counts them.
    batch = ingest_steps.confirmed_answers(settings, "color")
    assert batch is not None and batch.added == 2
    assert batch.by_label == {"MISSING_HOLE": 1, "OPEN": 1} == {source[0].label: 1, source[4].label: 1}
    child = build(settings.catalog_url, "c-v2", source="color", split="1:1:0", seed=1, parent="c-v1")
    counted = next(step for step in child["cleaning"] if step["rule"] == "confirmed from the line")
    assert counted["images"] == 2
    assert line_loop.label_from_terminal(settings, truth)["labelled"] == []  # nothing left that may train


def test_a_machine_confirmed_wrong_drops_below_its_blind_accuracy_on_live_accuracy_alone(configure, asgi_app, tmp_path):
    settings = configure(API_KEY=KEY)
    stale, steady = line_loop.STALE_MACHINE, "VRS-01"
    rows, truth = [], []
    for i in range(240):
        machine = stale if i % 2 else steady
        labels = (COLOR[i % 6], COLOR[(i + 1) % 6])
        model_label = labels[0] if i % 10 else labels[1]  # the model is right on 90% of them
        rows.append(
            row(i, kind="color", machine_id=machine, model_label=model_label, label=model_label, unknown=i % 37 == 0)
        )
        truth.append(
            {
                "request_id": rows[-1]["request_id"],
                "kind": "color",
                "machine_id": machine,
                "sha256": "0" * 64,
                "true_label": labels[0],
                "model_label": model_label,
                "unknown": i % 37 == 0,
                "runner_up": [labels[1]],
            }
        )
    with db.get_engine(settings.catalog_url).begin() as connection:
        connection.execute(table_of(Prediction).insert(), rows)
    path = tmp_path / "ageing-answers.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in truth))

    with TestClient(asgi_app, headers={"Authorization": f"Bearer {KEY}"}) as client:
        sent = line_loop.confirm_stale_machine(settings, client, path)
        again = line_loop.confirm_stale_machine(settings, client, path)  # idempotent per request id
    assert sent["machine"] == stale and sent["confirmed"] == 120 and sent["errors"] == []
    assert again["confirmed"] == 120 and again["statuses"] == {"200": 120}
    assert "SIMULATION" in sent["simulation"]
    with db.session(settings.catalog_url) as s:
        confirmed = {f.request_id: f.label for f in s.exec(select(LineFeedback))}
    mine = [t for t in truth if t["machine_id"] == stale]
    assert set(confirmed) == {t["request_id"] for t in mine}, "only the stale machine's answers are confirmed"
    right = [t for t in mine if not t["unknown"] and t["model_label"] == t["true_label"]]
    called_wrong = [t for t in right if confirmed[t["request_id"]] != t["true_label"]]
    assert 0.3 < len(called_wrong) / len(right) < 0.7  # the share, drawn per request id
    assert all(confirmed[t["request_id"]] == t["runner_up"][0] for t in called_wrong)
    assert sent["confirmed_wrong"] == len(called_wrong) + sum(
        1 for t in mine if not t["unknown"] and t["model_label"] != t["true_label"]
    )

    frame = live.confirmed(settings, "color", None, None, None)
    by_scope = {r["scope"]: r for r in live.scopes(frame, "color", 0.9, settings.monitoring)}
    assert by_scope[stale]["n"] >= settings.monitoring.min_confirmed
    assert by_scope[stale]["drift"] is True, by_scope[stale]
    assert steady not in by_scope  # nothing confirmed there: no verdict at all

    checked = {
        "kinds": {
            "color": {
                "live_accuracy": list(by_scope.values()),
                "machines": {stale: {"drift": False, "reasons": []}, "VRS-02": {"drift": True, "reasons": ["x"]}},
            }
        }
    }
    verdict = line_loop.stale_verdict(checked, "color")
    assert verdict["flagged_by_live_accuracy"] and not verdict["flagged_by_inputs"]


def test_the_stale_label_keeps_the_truth_unless_a_right_answer_is_drawn():
    base = {"true_label": "SHORT", "model_label": "SHORT", "unknown": False, "runner_up": ["SPUR", "OPEN"]}
    drawn = [f"r{i}" for i in range(400) if line_loop.wrong(f"r{i}", 0.5)]
    assert 150 < len(drawn) < 250  # about the share
    assert line_loop.stale_label({**base, "request_id": drawn[0]}, COLOR, 0.5) == "SPUR"
    assert line_loop.stale_label({**base, "request_id": drawn[0], "runner_up": []}, COLOR, 0.5) != "SHORT"
    assert line_loop.stale_label({**base, "request_id": drawn[0], "unknown": True}, COLOR, 0.5) == "SHORT"
    assert line_loop.stale_label({**base, "request_id": drawn[0], "model_label": "OPEN"}, COLOR, 0.5) == "SHORT"
    kept = next(f"r{i}" for i in range(400) if not line_loop.wrong(f"r{i}", 0.5))
    assert line_loop.stale_label({**base, "request_id": kept}, COLOR, 0.5) == "SHORT"
    assert line_loop.stale_label({**base, "request_id": drawn[0]}, COLOR, 0.0) == "SHORT"
