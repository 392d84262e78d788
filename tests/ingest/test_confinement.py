"""No importer reads outside the input it was given: absolute paths, '..' that climbs out, and symbolic links
(to outside or inside alike) are quarantined by rule, and their bytes are neither read nor kept."""

import builtins
import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from aoi.labels import LabelMap
from aoi.settings import IngestSettings
from aoi.store import ImageStore
from ingest.candidate import ArchiveRefused
from ingest.importers import ImportContext, get_importer
from ingest.pipeline import keep_rejected, read_and_hash
from tests.helpers import board, encode, image_bytes, labelme_zip, mini_deeppcb, write, zip_of

CTX = ImportContext(limits=IngestSettings(), labels=LabelMap.load())


@pytest.fixture
def opened(monkeypatch):
    """Every path the code under test opens (os.open and open), resolved."""
    seen: list[Path] = []
    real_os_open, real_open = os.open, builtins.open

    def spy_os_open(path, *args, **kwargs):
        seen.append(Path(os.fsdecode(path)).resolve())
        return real_os_open(path, *args, **kwargs)

    def spy_open(file, *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)):
            seen.append(Path(os.fsdecode(file)).resolve())
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy_os_open)
    monkeypatch.setattr(builtins, "open", spy_open)
    return seen


def _outside(tmp_path: Path) -> Path:
    """A valid image outside the input folder: were it read, it would be stored or quarantined."""
    return write(tmp_path / "outside" / "secret.png", image_bytes(seed=77))


def _run(found, quarantine: Path):
    loaded, rejected = read_and_hash(found.candidates)
    keep_rejected(rejected, ImageStore(quarantine))
    found.close()
    return loaded, {r.candidate.file: r for r in rejected}


def _read_only_inside(opened: list[Path], folder: Path) -> None:
    folder = folder.resolve()
    strays = [p for p in opened if not p.is_relative_to(folder) and p.suffix in (".png", ".jpg", ".txt", ".json", "")]
    assert strays == [], f"read outside the input: {strays}"


def test_a_manifest_reads_only_inside_its_folder_and_keeps_no_bytes_of_refused_rows(tmp_path, opened):
    secret = _outside(tmp_path)
    folder = tmp_path / "batch"
    write(folder / "imgs" / "a.png", image_bytes(seed=1))
    write(folder / "imgs" / "b.png", image_bytes(seed=2))
    os.symlink(secret, folder / "imgs" / "link_out.png")
    os.symlink(folder / "imgs" / "a.png", folder / "imgs" / "link_in.png")
    os.symlink(secret.parent, folder / "linked_dir")
    rows = {
        str(secret): "absolute",
        "/etc/hostname": "absolute",
        "../outside/secret.png": "leaves the input's folder",
        "imgs/../../outside/secret.png": "leaves the input's folder",
        "..\\outside\\secret.png": "leaves the input's folder",
        "imgs/link_out.png": "symbolic link",
        "imgs/link_in.png": "symbolic link",
        "linked_dir/secret.png": "symbolic link",
        "./": "names no file",
    }
    lines = ["path,label", "imgs/a.png,Spur", "imgs/../imgs/b.png,Spur"] + [f"{p},Spur" for p in rows]
    write(folder / "m.csv", ("\n".join(lines) + "\n").encode())
    opened.clear()
    loaded, rejected = _run(get_importer("csv")(folder / "m.csv", CTX), tmp_path / "quarantine")
    assert sorted(i.candidate.file for i in loaded) == ["imgs/../imgs/b.png", "imgs/a.png"]
    for path, rule in rows.items():
        assert rule in rejected[path].reason, (path, rejected[path].reason)
        assert rejected[path].data is None
        assert not rejected[path].candidate.origin.startswith(str(secret.parent))
    assert not any((tmp_path / "quarantine").rglob("*.png"))
    _read_only_inside(opened, folder)


def test_a_manifest_that_is_a_link_is_refused_whole(tmp_path):
    write(tmp_path / "real" / "a.png", image_bytes())
    write(tmp_path / "real" / "m.csv", b"path\na.png\n")
    os.symlink(tmp_path / "real" / "m.csv", tmp_path / "inbox.csv")
    with pytest.raises(ArchiveRefused, match="symbolic link"):
        get_importer("csv")(tmp_path / "inbox.csv", CTX)


@pytest.mark.parametrize("fmt", ["folder", "labelme", "deeppcb"])
def test_an_input_folder_or_archive_that_is_a_link_is_refused(tmp_path, fmt):
    mini_deeppcb(tmp_path / "real")
    os.symlink(tmp_path / "real", tmp_path / "linked")
    with pytest.raises(ArchiveRefused, match="symbolic link"):
        get_importer(fmt)(tmp_path / "linked", CTX)
    archive = labelme_zip(tmp_path / "lm.zip")
    os.symlink(archive, tmp_path / "linked.zip")
    with pytest.raises(ArchiveRefused, match="symbolic link"):
        get_importer(fmt)(tmp_path / "linked.zip", CTX)


def test_folder_importer_refuses_linked_files_and_folders_inside_and_outside(tmp_path, opened):
    secret = _outside(tmp_path)
    root = tmp_path / "in"
    write(root / "Spur" / "real.png", image_bytes(seed=1))
    os.symlink(secret, root / "Spur" / "out.png")
    os.symlink(root / "Spur" / "real.png", root / "Spur" / "in.png")
    os.symlink(secret.parent, root / "Short")  # a class folder that is a link to outside
    os.symlink(root / "Spur", root / "Open")  # ... and one to inside
    opened.clear()
    loaded, rejected = _run(get_importer("folder")(root, CTX), tmp_path / "quarantine")
    assert [i.candidate.file for i in loaded] == ["Spur/real.png"]
    for name in ("Spur/out.png", "Spur/in.png", "Short", "Open"):
        assert "symbolic link" in rejected[name].reason and rejected[name].data is None
    assert not any((tmp_path / "quarantine").rglob("*.png"))
    _read_only_inside(opened, root)


def _link_member(zf: zipfile.ZipFile, name: str, target: str) -> None:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the mode in external_attr says what the member is
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zf.writestr(info, target)


def test_zip_members_that_are_links_absolute_or_climb_are_quarantined_never_read(tmp_path):
    archive = zip_of(
        tmp_path / "in.zip",
        {
            "Spur/ok.png": image_bytes(seed=1),
            "Spur/../../x.png": image_bytes(seed=2),
            "/Spur/abs.png": image_bytes(seed=3),
        },
    )
    with zipfile.ZipFile(archive, "a") as zf:
        _link_member(zf, "Spur/link.png", "/etc/hostname")
        _link_member(zf, "Short", "../../etc")
        zf.writestr("Short/hostname.png", image_bytes(seed=4))  # a member "under" the link member
    loaded, rejected = _run(get_importer("folder")(archive, CTX), tmp_path / "quarantine")
    assert [i.candidate.file for i in loaded] == ["Spur/ok.png"]
    assert "symbolic link" in rejected["Spur/link.png"].reason
    assert "symbolic link" in rejected["Short"].reason and "symbolic link" in rejected["Short/hostname.png"].reason
    assert "escapes the archive" in rejected["Spur/../../x.png"].reason
    assert "escapes the archive" in rejected["/Spur/abs.png"].reason
    assert all(r.data is None for r in rejected.values())


@pytest.mark.parametrize("container", ["folder", "zip"])
def test_labelme_image_paths_stay_inside_the_input(tmp_path, container, opened):
    secret = _outside(tmp_path)
    png = encode(board(seed=42), fmt="PNG")
    shapes = [{"label": "Spur", "points": [[10, 10], [40, 30]], "shape_type": "rectangle"}]
    refs = {
        "ann/abs.json": (str(secret), "absolute"),
        "ann/win.json": ("C:\\data\\b1.png", "absolute"),
        "ann/climb.json": ("../../outside/secret.png", "leaves the input's folder"),
        "ann/ok.json": ("../boards/b1.png", None),
    }
    members = {name: json.dumps({"imagePath": ref, "shapes": shapes}).encode() for name, (ref, _) in refs.items()}
    members["boards/b1.png"] = png
    if container == "zip":
        source = zip_of(tmp_path / "in" / "lm.zip", members)
    else:
        for name, data in members.items():
            write(tmp_path / "in" / name, data)
        source = tmp_path / "in"
    opened.clear()
    loaded, rejected = _run(get_importer("labelme")(source, CTX), tmp_path / "quarantine")
    assert [i.candidate.parent_file for i in loaded] == ["boards/b1.png"]
    for name, (_, rule) in refs.items():
        if rule:
            assert rule in rejected[name].reason and rejected[name].data is None
    _read_only_inside(opened, tmp_path / "in")


def test_labelme_refuses_a_linked_image_rather_than_falling_back_to_its_embedded_copy(tmp_path):
    import base64

    secret = _outside(tmp_path)
    doc = {
        "imagePath": "b1.png",
        "imageData": base64.b64encode(encode(board(seed=1), fmt="PNG")).decode(),
        "shapes": [{"label": "Spur", "points": [[10, 10], [40, 30]]}],
    }
    write(tmp_path / "in" / "b1.json", json.dumps(doc).encode())
    os.symlink(secret, tmp_path / "in" / "b1.png")
    loaded, rejected = _run(get_importer("labelme")(tmp_path / "in", CTX), tmp_path / "quarantine")
    assert loaded == []
    assert "symbolic link" in rejected["b1.png#box0"].reason


def test_deeppcb_layout_with_links_quarantines_them_and_reads_nothing_through_them(tmp_path, opened):
    root = tmp_path / "in"
    mini_deeppcb(root)
    elsewhere = tmp_path / "elsewhere"
    mini_deeppcb(elsewhere)
    group = root / "PCBData" / "group10000"
    images = group / "10000"
    (images / "10000000_test.jpg").unlink()
    os.symlink(elsewhere / "PCBData" / "group10000" / "10000" / "10000000_test.jpg", images / "10000000_test.jpg")
    (group / "10000_not" / "10000002.txt").unlink()
    os.symlink(
        elsewhere / "PCBData" / "group10000" / "10000_not" / "10000002.txt", group / "10000_not" / "10000002.txt"
    )
    os.symlink(elsewhere / "PCBData" / "group10000", root / "PCBData" / "group20000")  # a whole linked group
    opened.clear()
    loaded, rejected = _run(get_importer("deeppcb")(root, CTX), tmp_path / "quarantine")
    reasons = {name: r.reason for name, r in rejected.items()}
    assert "symbolic link" in reasons["PCBData/group10000/10000_not/10000002.txt"]
    assert "symbolic link" in reasons["PCBData/group20000"]
    assert "symbolic link" in reasons["PCBData/group10000/10000/10000000_test.jpg#box0"]
    assert all(not i.candidate.parent_file.startswith("PCBData/group20000") for i in loaded)
    assert {i.candidate.group_key for i in loaded} == {"deeppcb:10000000", "deeppcb:10000001"}
    _read_only_inside(opened, root)


def test_the_retrain_inbox_cannot_smuggle_a_linked_manifest_or_batch(tmp_path, settings):
    """The retrain flow ingests what it finds in the inbox by itself: a link there is refused like any input."""
    from monitoring.retraining import inbox_batches

    secret = _outside(tmp_path)
    write(tmp_path / "elsewhere" / "m.csv", f"path,label\n{secret},Spur\n".encode())
    inbox = settings.inbox_dir / "gray"
    inbox.mkdir(parents=True)
    os.symlink(tmp_path / "elsewhere" / "m.csv", inbox / "week-48.csv")
    os.symlink(secret.parent, inbox / "week-49")
    write(inbox / "week-50.csv", f"path,label\n{secret},Spur\n../../outside/secret.png,Spur\n".encode())
    batches = dict(inbox_batches(settings, "gray"))
    for path, fmt in batches.items():
        if Path(path).name == "week-50.csv":
            loaded, rejected = _run(get_importer(fmt)(Path(path), CTX), tmp_path / "quarantine")
            assert loaded == [] and len(rejected) == 2 and all(r.data is None for r in rejected.values())
        else:
            with pytest.raises(ArchiveRefused, match="symbolic link"):
                get_importer(fmt)(Path(path), CTX)
    assert len(batches) == 3


def test_a_file_whose_name_holds_a_backslash_is_still_read(tmp_path):
    write(tmp_path / "in" / "Spur" / "a\\b.png", image_bytes(seed=3))
    loaded, rejected = _run(get_importer("folder")(tmp_path / "in", CTX), tmp_path / "quarantine")
    assert [i.candidate.file for i in loaded] == ["Spur/a\\b.png"] and rejected == {}
