from aoi.settings import Settings
from ingest.candidate import BadInput, Candidate
from ingest.pipeline import decode_and_measure, drop_known, read_and_hash
from tests.helpers import image_bytes


def cand(name: str, data: bytes | Exception, label: str | None = "SPUR") -> Candidate:
    def load():
        if isinstance(data, Exception):
            raise data
        return data

    return Candidate(file=name, origin=f"/in/{name}", load=load, label=label)


def test_read_and_hash_keeps_reasons_of_what_cannot_be_read():
    loaded, rejected = read_and_hash(
        [
            cand("a.png", image_bytes(seed=1)),
            cand("b.png", BadInput("unreadable: permission denied")),
            cand("c.png", RuntimeError("importer bug")),
            Candidate(file="d.png", origin="/in/d.png", problem="label 'X' is not in the label mapping"),
        ]
    )
    assert [item.candidate.file for item in loaded] == ["a.png"]
    assert [r.reason for r in rejected] == [
        "unreadable: permission denied",
        "unreadable: RuntimeError: importer bug",
        "label 'X' is not in the label mapping",
    ]


def test_drop_known_separates_new_content_duplicates_and_label_conflicts():
    a, b = image_bytes(seed=1), image_bytes(seed=2)
    loaded, _ = read_and_hash(
        [
            cand("a.png", a),
            cand("a_again.png", a),
            cand("b.png", b),
            cand("b_as_pass.png", b, label="PASS"),
            cand("b_unlabeled.png", b, label=None),
            cand("old.png", image_bytes(seed=3)),
        ]
    )
    known = {loaded[-1].sha256: "SPUR"}
    fresh, duplicates, conflicts = drop_known(loaded, known)
    assert [i.candidate.file for i in fresh] == ["a.png", "b.png"]
    assert [i.candidate.file for i in duplicates] == ["a_again.png", "b_unlabeled.png", "old.png"]
    assert [c.candidate.file for c in conflicts] == ["b_as_pass.png"]
    assert "already catalogued as SPUR, not PASS" in conflicts[0].reason
    assert conflicts[0].data == b  # the bytes are kept for the quarantine


def test_decode_and_measure_rejects_bad_images_and_keeps_their_bytes():
    loaded, _ = read_and_hash([cand("ok.png", image_bytes()), cand("bad.jpg", b"not an image at all")])
    measured, rejected = decode_and_measure(loaded, Settings())
    assert [m.candidate.file for m in measured] == ["ok.png"]
    assert rejected[0].data == b"not an image at all" and "not an image" in rejected[0].reason


def test_codes_the_catalog_cannot_hold_are_quarantined_not_crashing_the_chunk():
    too_long = Candidate(file="a.png", origin="/in/a.png", load=lambda: b"", machine_id="M" * 65)
    with_nul = Candidate(file="b.png", origin="/in/b.png", load=lambda: b"", upstream_code="OPEN\x00")
    _, rejected = read_and_hash([too_long, with_nul])
    assert "machine_id is 65 characters long" in rejected[0].reason
    assert "upstream_code" in rejected[1].reason and "not text" in rejected[1].reason


def test_names_with_undecodable_bytes_or_nul_become_visible_escapes():
    import os

    odd = Candidate(file=os.fsdecode(b"Spur/\xff\xfe.png"), origin="/in/x\x00y.png")
    assert odd.file == "Spur/\\xff\\xfe.png" and odd.file_name == "\\xff\\xfe.png"
    assert odd.origin == "/in/x\\x00y.png"
    odd.file.encode("utf-8")  # storable as text by any database
