import os

import pytest

from aoi.settings import IngestSettings
from ingest.candidate import ArchiveRefused, BadInput
from ingest.readers import FolderContainer, ZipContainer, open_container, read_file
from tests.helpers import image_bytes, write, zip_bomb, zip_of

LIMITS = IngestSettings(max_file_bytes=1_000_000)


def test_read_file_refuses_what_it_should_with_reasons(tmp_path):
    write(tmp_path / "big.bin", b"\0" * 1_000_001)
    os.symlink(tmp_path / "gone", tmp_path / "dangling")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder.jpg").mkdir()
    cases = {
        "big.bin": "over the limit",
        "dangling": "symbolic link",
        "gone": "not found",
        "fifo": "not a regular file",
        "folder.jpg": "not a regular file",
    }
    for name, reason in cases.items():
        with pytest.raises(BadInput, match=reason):
            read_file(tmp_path / name, LIMITS.max_file_bytes)


def test_folder_members_skip_hidden_files_and_are_sorted(tmp_path):
    for name in ("b/2.png", "a/1.png", ".hidden/x.png", "a/.DS_Store"):
        write(tmp_path / name, b"x")
    assert [m.name for m in FolderContainer(tmp_path, LIMITS).members()] == ["a/1.png", "b/2.png"]


def test_zip_members_that_escape_are_reported_not_read(tmp_path):
    archive = zip_of(
        tmp_path / "in.zip",
        {"ok/a.png": image_bytes(), "../evil.png": b"x", "/abs.png": b"y", "__MACOSX/._a.png": b"z"},
    )
    container = open_container(archive, LIMITS)
    members = {m.name: m.problem for m in container.members()}
    assert members["ok/a.png"] is None
    assert "escapes the archive" in members["../evil.png"]
    assert "escapes the archive" in members["/abs.png"]
    assert "__MACOSX/._a.png" not in members
    assert container.read("ok/a.png") == image_bytes()
    assert not (tmp_path.parent / "evil.png").exists()


def test_zip_bombs_refuse_the_whole_archive(tmp_path):
    with pytest.raises(ArchiveRefused, match="zip bomb: compression ratio"):
        ZipContainer(zip_bomb(tmp_path / "bomb.zip", megabytes=8), LIMITS)
    many = zip_of(tmp_path / "many.zip", {f"{i}.png": b"x" for i in range(20)})
    with pytest.raises(ArchiveRefused, match="zip bomb: 20 members"):
        ZipContainer(many, IngestSettings(zip_max_members=10))
    big = zip_of(tmp_path / "big.zip", {"a.png": os.urandom(200_000)})
    with pytest.raises(ArchiveRefused, match="uncompressed, over the limit"):
        ZipContainer(big, IngestSettings(zip_max_total_bytes=100_000))


def test_not_a_zip_is_refused(tmp_path):
    with pytest.raises(ArchiveRefused, match="neither a folder nor a zip"):
        open_container(write(tmp_path / "x.zip", b"not a zip"), LIMITS)


def test_a_zip_whose_member_names_do_not_decode_is_refused(tmp_path):
    raw = zip_of(tmp_path / "names.zip", {"\u00e9.png": image_bytes()}).read_bytes()
    (tmp_path / "names.zip").write_bytes(raw.replace("\u00e9".encode(), b"\xff\xfe"))
    with pytest.raises(ArchiveRefused, match="not a readable zip archive"):
        ZipContainer(tmp_path / "names.zip", LIMITS)


def test_a_corrupt_member_is_a_reason_not_a_crash(tmp_path):
    payload = b"labelme " * 2000
    raw = zip_of(tmp_path / "c.zip", {"a.json": payload}).read_bytes()
    start = raw.index(b"a.json") + len("a.json")  # the deflate stream follows the local header's name
    broken = raw[: start + 10] + bytes(b ^ 0xFF for b in raw[start + 10 : start + 40]) + raw[start + 40 :]
    (tmp_path / "c.zip").write_bytes(broken)
    container = ZipContainer(tmp_path / "c.zip", IngestSettings(zip_max_ratio=10_000))
    with pytest.raises(BadInput, match="unreadable zip member"):
        container.read("a.json")
