"""Each importer on small generated inputs: what it finds, how it labels, what it refuses and why."""

import csv
import io
from collections import Counter

import pytest
from PIL import Image

from aoi.labels import LabelMap
from aoi.settings import IngestSettings
from ingest.candidate import ArchiveRefused
from ingest.crops import check_box, window
from ingest.importers import ImportContext, get_importer
from ingest.pipeline import read_and_hash
from tests.helpers import class_folder, image_bytes, labelimg_zip, labelme_zip, mini_deeppcb, write

CTX = ImportContext(limits=IngestSettings(), labels=LabelMap.load())


def _load_all(found):
    loaded, rejected = read_and_hash(found.candidates)
    return loaded, {r.candidate.file: r.reason for r in rejected}


def test_label_map_resolves_aliases_and_refuses_unknown_names():
    labels = LabelMap.load()
    assert labels.resolve("Mouse_bite") == "NICK"
    assert labels.resolve("mouse bite") == "NICK"
    assert labels.resolve("spurious-copper") == "SPURIOUS_COPPER"
    assert labels.deeppcb(5) == "SPURIOUS_COPPER"
    with pytest.raises(ValueError, match="not in the label mapping"):
        labels.resolve("Alien")


def test_crop_window_is_square_inside_the_image_and_grows_for_large_boxes():
    assert window((10, 10, 20, 20), (640, 640), 64, 8) == (0, 0, 64, 64)
    assert window((300, 300, 310, 310), (640, 640), 64, 8) == (273, 273, 337, 337)
    assert window((600, 600, 639, 639), (640, 640), 64, 8) == (576, 576, 640, 640)
    left, top, right, bottom = window((100, 100, 200, 150), (640, 640), 64, 8)
    assert right - left == bottom - top == 116
    assert check_box((5, 5, 5, 9), (10, 10)) and check_box((0, 0, 11, 5), (10, 10))
    assert check_box((0, 0, 10, 10), (10, 10)) is None


def test_folder_importer_maps_class_folders_and_groups_crops_by_source_photo(tmp_path):
    class_folder(tmp_path, {"Mouse_bite": 4, "Spur": 2})
    write(tmp_path / "README.txt", b"notes")
    write(tmp_path / "Alien" / "a.png", image_bytes(seed=99))
    found = get_importer("folder")(tmp_path, CTX)
    labels = Counter(c.label for c in found.candidates if c.problem is None)
    assert labels == {"NICK": 4, "SPUR": 2}
    assert found.skipped == ["README.txt"]
    alien = next(c for c in found.candidates if c.file == "Alien/a.png")
    assert "not in the label mapping" in alien.problem
    groups = {c.file: c.group_key for c in found.candidates}
    assert groups["Mouse_bite/01_mouse_bite_00_roi_0.png"] == groups["Mouse_bite/01_mouse_bite_00_roi_2.png"]
    assert groups["Mouse_bite/01_mouse_bite_00_roi_0.png"] != groups["Mouse_bite/01_mouse_bite_01_roi_0.png"]


def test_deeppcb_importer_cuts_a_defect_crop_and_a_pass_window_per_usable_box(tmp_path):
    mini_deeppcb(tmp_path)
    found = get_importer("deeppcb")(tmp_path, CTX)
    assert found.default_source == "gray"
    loaded, rejected = _load_all(found)
    labels = Counter(item.candidate.label for item in loaded)
    # pair 0: OPEN + NICK; pair 1: PINHOLE (SHORT's box lies outside); pair 2: colour burned in -> only PASS
    assert labels == {"OPEN": 1, "NICK": 1, "PINHOLE": 1, "PASS": 4}
    reasons = " | ".join(rejected.values())
    assert "outside the 200x200 image" in reasons
    assert "is not 'x1 y1 x2 y2 type'" in reasons
    assert "colour drawn into it" in rejected["PCBData/group10000/10000/10000002_test.jpg#box0"]
    for item in loaded:
        image = Image.open(io.BytesIO(item.data))
        assert (image.format, image.mode, image.size) == ("PNG", "L", (64, 64))
        assert item.candidate.group_key.startswith("deeppcb:100000")
        assert item.candidate.parent_sha256 and item.candidate.parent_file.endswith(".jpg")
    pair0 = [i.candidate for i in loaded if i.candidate.group_key == "deeppcb:10000000"]
    assert {c.label for c in pair0} == {"OPEN", "NICK", "PASS"}


def test_deeppcb_importer_refuses_a_folder_without_annotations(tmp_path):
    write(tmp_path / "x.jpg", image_bytes(fmt="JPEG"))
    with pytest.raises(ArchiveRefused, match="no DeepPCB annotations"):
        get_importer("deeppcb")(tmp_path, CTX)


@pytest.mark.parametrize("embed", [False, True], ids=["image-file", "image-data"])
def test_labelme_importer_crops_every_shape(tmp_path, embed):
    found = get_importer("labelme")(labelme_zip(tmp_path / "lm.zip", embed=embed), CTX)
    loaded, rejected = _load_all(found)
    assert rejected == {}
    assert sorted(i.candidate.label for i in loaded) == ["SHORT", "SPUR"]
    assert all(i.candidate.group_key == "boards/b1.png" for i in loaded)
    found.close()


def test_labelme_importer_quarantines_a_broken_annotation_and_escaping_members(tmp_path):
    archive = labelme_zip(tmp_path / "lm.zip", extra={"ann/broken.json": b"{not json", "../../evil.json": b"{}"})
    found = get_importer("labelme")(archive, CTX)
    loaded, rejected = _load_all(found)
    assert len(loaded) == 2
    assert "not a labelme annotation" in rejected["ann/broken.json"]
    assert "escapes the archive" in rejected["../../evil.json"]


def test_labelimg_importer_reads_pascal_voc_boxes(tmp_path):
    found = get_importer("labelimg")(labelimg_zip(tmp_path / "voc.zip"), CTX)
    loaded, rejected = _load_all(found)
    assert rejected == {}
    assert sorted(i.candidate.label for i in loaded) == ["NICK", "OPEN"]
    assert {i.candidate.bbox for i in loaded} == {"5,5,35,25", "150.5,150,170,199"}


def test_csv_importer_reads_metadata_and_quarantines_bad_rows(tmp_path):
    write(tmp_path / "imgs" / "a.png", image_bytes(seed=1))
    write(tmp_path / "imgs" / "b.png", image_bytes(seed=2))
    rows = [
        ["path", "label", "machine_id", "part_no", "captured_at", "upstream_code"],
        ["imgs/a.png", "Short", "M1", "P-100", "2026-11-01T08:00:00", "laserdrill"],
        ["imgs/b.png", "", "M2", "", "", ""],
        ["imgs/missing.png", "Spur", "", "", "", ""],
        ["imgs/a.png", "Spur", "", "", "yesterday", ""],
        ["imgs/b.png", "Alien", "", "", "", ""],
    ]
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    write(tmp_path / "manifest.csv", out.getvalue().encode())
    found = get_importer("csv")(tmp_path / "manifest.csv", CTX)
    loaded, rejected = _load_all(found)
    first = loaded[0].candidate
    assert (first.label, first.machine_id, first.part_no, first.upstream_code) == ("SHORT", "M1", "P-100", "LASERDRILL")
    assert first.captured_at.isoformat() == "2026-11-01T08:00:00+00:00"
    assert loaded[1].candidate.label is None
    reasons = sorted(rejected.values())
    assert len(reasons) == 3
    assert any("not found" in r for r in reasons)
    assert any("not an ISO 8601 time" in r for r in reasons)
    assert any("not in the label mapping" in r for r in reasons)


def test_csv_importer_refuses_a_manifest_without_a_path_column(tmp_path):
    write(tmp_path / "m.csv", b"file,label\na.png,Spur\n")
    with pytest.raises(ArchiveRefused, match="no 'path' column"):
        get_importer("csv")(tmp_path / "m.csv", CTX)


def test_deeppcb_box_lines_that_do_not_parse_are_reasons_not_crashes():
    from ingest.importers.deeppcb_importer import parse_boxes

    rows = parse_boxes("1 2 3 4 5\n1e400 0 5 5 1\n1,2,3,4,6\nx y\n")
    assert rows[0] == ((1, 2, 3, 4), 5) and rows[2] == ((1, 2, 3, 4), 6)
    assert "is not 'x1 y1 x2 y2 type'" in rows[1] and "is not 'x1 y1 x2 y2 type'" in rows[3]


def test_csv_importer_refuses_a_manifest_that_is_not_csv_and_quarantines_times_out_of_range(tmp_path):
    write(tmp_path / "big.csv", b'path,label\n"' + b"x" * 200_000 + b'",Spur\n')
    with pytest.raises(ArchiveRefused, match="not valid CSV"):
        get_importer("csv")(tmp_path / "big.csv", CTX)
    write(tmp_path / "a.png", image_bytes())
    write(tmp_path / "m.csv", b"path,captured_at\na.png,0001-01-01T00:00:00+01:00\n")
    _, rejected = _load_all(get_importer("csv")(tmp_path / "m.csv", CTX))
    assert "not an ISO 8601 time" in rejected["a.png"]


def test_an_annotation_cannot_make_the_importer_read_outside_its_input(tmp_path):
    import json

    secret = write(tmp_path / "secret.png", image_bytes(seed=9))
    doc = {"imagePath": str(secret), "shapes": [{"label": "Spur", "points": [[0, 0], [5, 5]]}]}
    write(tmp_path / "in" / "ann.json", json.dumps(doc).encode())
    loaded, rejected = _load_all(get_importer("labelme")(tmp_path / "in", CTX))
    assert loaded == []
    assert "is absolute: only paths inside the input are read" in next(iter(rejected.values()))


def test_box_sources_obey_the_pixel_limit_and_accepted_modes(tmp_path):
    from aoi.settings import IngestSettings

    ctx = ImportContext(limits=IngestSettings(max_pixels=100_000), labels=LabelMap.load())
    big = image_bytes(size=(400, 400), mode="L", color=(0,))
    labelme_zip(tmp_path / "a.zip")  # the layout; then swap in a source over the limit
    import zipfile

    with zipfile.ZipFile(tmp_path / "a.zip") as zf, zipfile.ZipFile(tmp_path / "b.zip", "w") as out:
        for info in zf.infolist():
            out.writestr(info.filename, big if info.filename.endswith(".png") else zf.read(info))
    loaded, rejected = _load_all(get_importer("labelme")(tmp_path / "b.zip", ctx))
    assert loaded == [] and all("decompression bomb" in r for r in rejected.values())
