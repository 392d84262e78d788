import os
import subprocess
import time

import pytest

from aoi.store import _HOST, ImageStore, sha256_of


def test_put_is_idempotent_and_content_addressed(tmp_path):
    store = ImageStore(tmp_path / "store")
    digest = store.put(b"abc")
    assert digest == sha256_of(b"abc")
    assert store.put(b"abc") == digest
    assert store.get(digest) == b"abc"
    assert store.path_for(digest).relative_to(store.root).parts == (digest[:2], digest)
    assert list(store.digests()) == [digest]
    assert list((store.root / "tmp").iterdir()) == []


def test_bytes_are_kept_exactly(tmp_path):
    store = ImageStore(tmp_path, fsync=False)
    data = bytes(range(256)) * 10
    assert store.get(store.put(data)) == data


def test_a_wrong_digest_is_refused(tmp_path):
    with pytest.raises(ValueError, match="mismatch"):
        ImageStore(tmp_path).put(b"abc", sha256_of(b"abd"))
    with pytest.raises(ValueError):
        ImageStore(tmp_path).path_for("../../etc/passwd")


def test_a_truncated_file_left_by_a_crash_is_rewritten(tmp_path):
    store = ImageStore(tmp_path)
    digest = sha256_of(b"full content")
    store.path_for(digest).parent.mkdir(parents=True)
    store.path_for(digest).write_bytes(b"full")
    store.put(b"full content")
    assert store.get(digest) == b"full content"


def test_sweep_removes_temporary_files_of_dead_writers_and_old_ones(tmp_path):
    store = ImageStore(tmp_path)
    (tmp_path / "tmp").mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    mine, host = os.getpid(), _HOST
    old, live, orphan, remote = (
        tmp_path / "tmp" / f"abc.{h}.{pid}.{n}.part"
        for n, (h, pid) in enumerate([(host, mine), (host, mine), (host, dead.pid), ("otherhost", dead.pid)])
    )
    for path in (old, live, orphan, remote):
        path.write_bytes(b"x")
    past = time.time() - 7200
    os.utime(old, (past, past))
    assert store.sweep_temp(3600) == 2
    assert live.exists() and not old.exists() and not orphan.exists()
    assert remote.exists(), "a writer on another host is judged by age only"
    assert store.temp_count() == 2


@pytest.mark.parametrize("fsync", [True, False])
def test_put_many_stores_a_chunk_and_skips_what_is_there(tmp_path, fsync):
    store = ImageStore(tmp_path, fsync=fsync)
    first = store.put(b"a")
    digests = store.put_many([(b"a", None), (b"b", sha256_of(b"b")), (b"c", None)])
    assert digests[0] == first and sorted(store.digests()) == sorted(digests)
    assert list((tmp_path / "tmp").iterdir()) == []
    with pytest.raises(ValueError, match="mismatch"):
        store.put_many([(b"d", None), (b"e", sha256_of(b"x"))])
    assert list((tmp_path / "tmp").iterdir()) == [], "a failed chunk leaves no temporary files"
