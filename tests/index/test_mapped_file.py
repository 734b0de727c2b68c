"""A memory-mapped index whose file changes under it: refused with a clear error, never SIGBUS
(issue 18, item 11). Each case runs in a child process, so that a crash is seen as one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hashlearn.index import IndexFileChangedError, LinearIndex, create_index, load_index

_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from hashlearn.index import IndexFileChangedError, load_index

    path, how = sys.argv[1], sys.argv[2]
    queries = np.zeros((4, 32), np.uint8)
    if how == "service":
        from fastapi.testclient import TestClient
        from hashlearn.serve import create_app, open_service

        service = open_service(sys.argv[3], path, data_dir=sys.argv[4], mmap=True)
        client = TestClient(create_app(service))
        ask = lambda: client.post("/search", json={"code_hex": "00" * 32, "k": 3})
        first = ask()
        assert first.status_code == 200, first.text
        print("ready", flush=True)
        sys.stdin.readline()
        answer = ask()
        print("status", answer.status_code, answer.json()["error"], flush=True)
        sys.exit(0)
    index = load_index(path, mmap=True)
    before = index.search(queries, 5)
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        after = index.search(queries, 5)
        index.range_search(queries, 3)
    except IndexFileChangedError as exc:
        print("refused", exc, flush=True)
        sys.exit(3)
    same = all(np.array_equal(a, b) for a, b in zip(before, after))
    print("searched", "same" if same else "different", flush=True)
    """
)


def _run_child(tmp_path, change, *extra: str) -> tuple[int, str]:
    """Start the child on ``tmp_path / "index"``, let it map and search the file, apply
    ``change(path)``, let it search again; its exit status and output."""
    path = tmp_path / "index"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        ready = child.stdout.readline()
        assert ready.strip() == "ready", ready + child.stderr.read()
        change(path)
        out, err = child.communicate("go\n", timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    return child.returncode, out + err


def _index_file(tmp_path, index_type: str = "linear") -> None:
    rng = np.random.default_rng(0)
    index = create_index(index_type, 256)
    index.add(rng.integers(0, 256, size=(20_000, 32), dtype=np.uint8))  # 800 KB of codes
    index.save(tmp_path / "index")


def _truncate(path) -> None:
    os.truncate(path, 4096)


def _copy_over_in_place(path) -> None:
    """What ``cp other.hlindex index`` does: the same file, truncated, then written again."""
    other = path.with_name("other")
    index = LinearIndex(256)
    index.add(np.full((10, 32), 7, np.uint8))
    index.save(other)
    with open(path, "r+b") as handle:
        handle.truncate(0)
        handle.write(other.read_bytes())


@pytest.mark.parametrize("index_type", ["linear", "mih", "hash-table"])
@pytest.mark.parametrize(
    "change", [_truncate, _copy_over_in_place], ids=["truncated", "copied over"]
)
def test_a_file_changed_in_place_is_refused_not_a_crash(tmp_path, index_type, change):
    """Issue 18, item 11: ``serve --mmap`` died of SIGBUS when its index file was truncated or
    copied over in place; the next search is refused with an error naming the change."""
    _index_file(tmp_path, index_type)
    status, output = _run_child(tmp_path, change, "search")
    assert status != -signal.SIGBUS, "the child died of SIGBUS"
    assert status == 3, output
    assert "the memory-mapped index file was" in output and "load the index again" in output


def test_a_file_replaced_by_a_rename_keeps_being_served(tmp_path):
    """Issue 18, item 11: a new file renamed over the mapped one (as hashlearn writes files)
    leaves the mapped file intact: the index keeps answering from what it loaded."""
    _index_file(tmp_path)

    def replace(path) -> None:
        index = LinearIndex(256)
        index.add(np.full((10, 32), 7, np.uint8))
        index.save(path)  # a temporary file renamed over the path

    status, output = _run_child(tmp_path, replace, "search")
    assert status == 0 and "searched same" in output, output


def test_the_service_answers_503_when_its_mapped_index_is_truncated(tmp_path):
    """Issue 18, item 11: the service over a memory-mapped index whose file is truncated answers
    503 with the reason, and keeps running."""
    from hashlearn import create_hasher

    _index_file(tmp_path)
    X = np.random.default_rng(1).normal(size=(300, 8)).astype(np.float32)
    create_hasher("lsh", n_bits=256, random_state=0).fit(X).save(tmp_path / "m.safetensors")
    status, output = _run_child(
        tmp_path, _truncate, "service", str(tmp_path / "m.safetensors"), str(tmp_path / "store")
    )
    assert status == 0, output
    assert "status 503" in output and "truncated from" in output


def test_the_check_itself(tmp_path):
    """The watch in one process, without touching a changed map: size and modification time."""
    _index_file(tmp_path)
    index = load_index(tmp_path / "index", mmap=True)
    os.utime(tmp_path / "index", ns=(0, 0))  # same size, another modification time
    with pytest.raises(IndexFileChangedError, match="rewritten in place"):
        index.ids  # noqa: B018 - reading the ids checks the file
    in_memory = load_index(tmp_path / "index")  # not mapped: nothing to watch
    assert in_memory.ntotal == 20_000
