"""hashlearn._io: atomic writes get the permissions of a new file under the user's umask."""

import os
import stat
import sys

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
