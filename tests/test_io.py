"""hashlearn._io: atomic writes get the permissions of a new file under the user's umask."""

import os
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from hashlearn._io import atomic_write, read_arrays, write_arrays

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


@pytest.fixture
def umask():
    """Set the process umask for one test, and put the old one back."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    with atomic_write(tmp_path / "figure.png") as handle:
        handle.write(b"\x89PNG")
    write_arrays(tmp_path / "codes.npz", codes=np.arange(6, dtype=np.uint8).reshape(3, 2))
    with open(tmp_path / "plain.bin", "wb"):  # what open() gives a new file, for comparison
        pass
    assert mode(tmp_path / "figure.png") == expected == mode(tmp_path / "plain.bin")
    assert mode(tmp_path / "codes.npz") == expected
    assert read_arrays(tmp_path / "codes.npz")["codes"].tolist() == [[0, 1], [2, 3], [4, 5]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codes.npz", "figure.png", "plain.bin"]


def test_replacing_a_file_is_atomic_and_a_failure_leaves_it(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    with pytest.raises(RuntimeError, match="interrupted"), atomic_write(target) as handle:
        handle.write(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]
    with atomic_write(target) as handle:
        handle.write(b"new")
    assert target.read_bytes() == b"new" and mode(target) == 0o644
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_write_errors(tmp_path):
    with pytest.raises(IsADirectoryError, match="it is a directory"), atomic_write(tmp_path):
        pass
    with (
        pytest.raises(FileNotFoundError, match="does not exist"),
        atomic_write(tmp_path / "missing" / "x.bin"),
    ):
        pass


def _aged(path, seconds):
    """Set the modification time of ``path`` ``seconds`` into the past."""
    when = time.time() - seconds
    os.utime(path, (when, when))
    return path


def _leftover(folder, name, age):
    """A temporary file ``name`` last written ``age`` seconds ago."""
    path = folder / name
    path.write_bytes(b"half")
    return _aged(path, age)


def _dead_pid():
    """The id of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_write_removes_the_stale_temporary_files_of_its_target_only(tmp_path):
    """Issue 18 item 13: temporary files of killed writes (up to 320 MB) were never removed."""
    dead, alive, day = _dead_pid(), os.getpid(), 24 * 3600
    stale = [
        _leftover(tmp_path, f".model.safetensors.{dead}-0123abcd.tmp", 120),  # writer gone
        _leftover(tmp_path, ".model.safetensors.89abcdef.tmp", 2 * day),  # no pid, old
        _leftover(tmp_path, f".model.safetensors.{alive}-00000000.tmp", 2 * day),  # untouched
    ]
    kept = [
        _leftover(tmp_path, f".model.safetensors.{alive}-11111111.tmp", 120),  # writer runs
        _leftover(tmp_path, f".model.safetensors.{dead}-22222222.tmp", 5),  # just written
        _leftover(tmp_path, ".model.safetensors.44444444.tmp", 120),  # no pid, recent
        _leftover(tmp_path, f".other.npz.{dead}-33333333.tmp", 2 * day),  # another file's
        _leftover(tmp_path, ".model.safetensors.notours.tmp", 2 * day),  # not our pattern
    ]
    with atomic_write(tmp_path / "model.safetensors") as handle:
        handle.write(b"model")
    assert [path.exists() for path in stale] == [False] * len(stale)
    assert [path.exists() for path in kept] == [True] * len(kept)
    assert (tmp_path / "model.safetensors").read_bytes() == b"model"


def test_a_write_killed_by_sigkill_is_cleaned_by_the_next_one(tmp_path):
    """Issue 18 item 13: kill -9 during a write, then the same write again: no leftover."""
    target = tmp_path / "codes.npz"
    script = (
        "import sys, time\n"
        "from hashlearn._io import atomic_write\n"
        "with atomic_write(sys.argv[1]) as handle:\n"
        "    handle.write(b'x' * 1_000_000); handle.flush()\n"
        "    print('writing', flush=True); time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE, env=env
    )
    try:
        assert child.stdout.readline() == b"writing\n"
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    (leftover,) = tmp_path.iterdir()
    assert leftover.name.startswith(f".codes.npz.{child.pid}-") and leftover.stat().st_size > 0
    _aged(leftover, 120)  # the grace period of a dead writer
    write_arrays(target, codes=np.zeros((2, 2), dtype=np.uint8))
    assert list(tmp_path.iterdir()) == [target]
