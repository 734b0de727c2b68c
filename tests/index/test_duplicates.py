"""Near-duplicates: the self-join against a brute-force scan, the groups against a plain search."""

import csv
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _reference import range_search
from hashlearn.exceptions import InvalidInputError
from hashlearn.index import (
    DuplicatePairs,
    group_pairs,
    near_duplicate_pairs,
    near_duplicates,
    write_groups_csv,
    write_pairs_csv,
)


def brute_pairs(codes, ids, radius):
    """Every (distance, first, second) with first < second, from the reference's self-join."""
    lims, distances, found = range_search(codes, ids, codes, radius)
    out = []
    for i, first in enumerate(ids.tolist()):
        for j in range(lims[i], lims[i + 1]):
            if first < found[j]:
                out.append((int(distances[j]), first, int(found[j])))
    return sorted(out)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 100),
    st.integers(1, 60),
    st.integers(0, 3),
    st.integers(0, 2**31 - 1),
    st.sampled_from(["mih", "linear", "hash-table"]),
)
def test_pairs_equal_a_brute_force_scan(n_bits, n, radius, seed, index):
    rng = np.random.default_rng(seed)
    n_bytes = (n_bits + 7) // 8
    codes = rng.integers(0, 256, size=(n, n_bytes), dtype=np.uint8)
    if n_bits % 8:
        codes[:, -1] &= (1 << (n_bits % 8)) - 1
    # plant near-duplicates: copies of some rows with a bit or two flipped
    copies = codes[rng.integers(0, n, size=n // 2)].copy()
    for row in copies:
        for bit in rng.integers(0, n_bits, size=rng.integers(0, 3)):
            row[bit // 8] ^= np.uint8(1 << (bit % 8))
    codes = np.concatenate([codes, copies])
    ids = rng.permutation(10 * len(codes))[: len(codes)].astype(np.int64)
    radius = min(radius, n_bits)
    pairs = near_duplicate_pairs(codes, n_bits, radius, ids=ids, index=index)
    found = list(zip(pairs.distances.tolist(), pairs.first.tolist(), pairs.second.tolist()))
    assert found == brute_pairs(codes, ids, radius)
    assert (pairs.first < pairs.second).all() and pairs.radius == radius


def components_by_search(pairs):
    """Groups by repeated breadth-first search over the pair list."""
    neighbours = {}
    for a, b in zip(pairs.first.tolist(), pairs.second.tolist()):
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    seen, groups = set(), []
    for start in sorted(neighbours):
        if start in seen:
            continue
        group, frontier = {start}, [start]
        while frontier:
            for other in neighbours[frontier.pop()] - group:
                group.add(other)
                frontier.append(other)
        seen |= group
        groups.append(sorted(group))
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def test_groups_join_chains_and_keep_apart_what_is_apart():
    pairs = DuplicatePairs(
        first=np.array([1, 7, 2, 40]),
        second=np.array([2, 9, 3, 41]),
        distances=np.zeros(4, dtype=np.int32),
        radius=0,
    )
    groups = group_pairs(pairs)
    assert [g.tolist() for g in groups] == [[1, 2, 3], [7, 9], [40, 41]]
    empty = DuplicatePairs(np.array([], np.int64), np.array([], np.int64), np.array([]), 1)
    assert group_pairs(empty) == []


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), max_size=40))
def test_groups_are_the_connected_components(edges):
    edges = [(min(a, b), max(a, b)) for a, b in edges if a != b]
    first = np.array([a for a, _ in edges], dtype=np.int64)
    second = np.array([b for _, b in edges], dtype=np.int64)
    pairs = DuplicatePairs(first, second, np.zeros(len(edges), np.int32), 0)
    assert [g.tolist() for g in group_pairs(pairs)] == components_by_search(pairs)


def test_bad_requests():
    codes = np.zeros((3, 1), np.uint8)
    with pytest.raises(InvalidInputError, match="approximate"):
        near_duplicate_pairs(codes, 8, 1, index="multi-table")
    with pytest.raises(InvalidInputError, match="radius must be <= 8"):
        near_duplicate_pairs(codes, 8, 9)
    with pytest.raises(InvalidInputError):
        near_duplicate_pairs(codes, 8, 1, ids=[0, 0, 1])


def test_groups_and_pairs_are_written_as_csv(tmp_path):
    codes = np.array([[0b0001], [0b0011], [0b1111_0000], [0b0111], [0b1111_0001]], np.uint8)
    pairs = near_duplicate_pairs(codes, 8, 1, ids=[10, 11, 12, 13, 14])
    groups = group_pairs(pairs)
    write_groups_csv(tmp_path / "groups.csv", groups, {10: "a.png", 12: "c.png"})
    write_pairs_csv(tmp_path / "pairs.csv", pairs)
    with open(tmp_path / "groups.csv", newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["group", "size", "id", "path"],
            ["0", "3", "10", "a.png"],
            ["0", "3", "11", ""],
            ["0", "3", "13", ""],
            ["1", "2", "12", "c.png"],
            ["1", "2", "14", ""],
        ]
    with open(tmp_path / "pairs.csv", newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["first", "second", "distance"],
            ["10", "11", "1"],
            ["11", "13", "1"],
            ["12", "14", "1"],
        ]


def test_dedup_command_writes_groups_with_paths(tmp_path, capsys):
    from hashlearn.cli import main

    codes = np.array([[0b0000_0001], [0b0000_0011], [0b1111_0000], [0b0000_0111], [0xFF]], np.uint8)
    np.savez(
        tmp_path / "c.npz",
        codes=codes,
        n_bits=np.array(8),
        ids=np.array([10, 11, 12, 13, 14]),
        paths=np.array(["a.png", "b.png", "c.png", "d.png", "e.png"]),
    )
    out, pairs = tmp_path / "groups.csv", tmp_path / "pairs.csv"
    argv = ["dedup", "--codes", str(tmp_path / "c.npz"), "--radius", "1"]
    assert main([*argv, "--out", str(out), "--pairs", str(pairs)]) == 0
    printed = capsys.readouterr().out
    assert "5 codes of 8 bits: 2 pairs within 1 bits, 1 groups holding 3 items" in printed
    assert "group 0: a.png, b.png, d.png" in printed
    with open(out) as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["group"], r["id"], r["path"]) for r in rows] == [
        ("0", "10", "a.png"),
        ("0", "11", "b.png"),
        ("0", "13", "d.png"),
    ]
    with open(pairs) as handle:
        assert list(csv.reader(handle)) == [
            ["first", "second", "distance"],
            ["10", "11", "1"],
            ["11", "13", "1"],
        ]
    np.save(tmp_path / "c.npy", codes)
    argv = ["dedup", "--codes", str(tmp_path / "c.npy"), "--radius", "0"]
    assert main(argv) == 2  # an .npy does not say how many of its 8 bits per code are used
    assert "give --model MODEL (the model that made the codes) or --bits N" in (
        capsys.readouterr().err
    )
    assert main([*argv, "--bits", "8"]) == 0
    assert "0 pairs within 0 bits, 0 groups" in capsys.readouterr().out


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 50),
    st.integers(1, 8),
    st.integers(0, 3),
    st.integers(1, 40),
    st.integers(0, 2**31 - 1),
    st.sampled_from(["mih", "linear", "hash-table"]),
)
def test_grouped_duplicates_equal_a_brute_force_scan(
    n_bits, n, n_distinct, radius, chunk, seed, index
):
    """Issue 18, item 10: identical codes are grouped before the search; the pairs counted,
    streamed in chunks of any size and grouped equal the brute-force self-join."""
    rng = np.random.default_rng(seed)
    n_bytes = (n_bits + 7) // 8
    distinct = rng.integers(0, 256, size=(n_distinct, n_bytes), dtype=np.uint8)
    if n_bits % 8:
        distinct[:, -1] &= (1 << (n_bits % 8)) - 1
    codes = distinct[rng.integers(0, n_distinct, size=n)]  # many exact copies
    ids = rng.permutation(5 * n)[:n].astype(np.int64)
    radius = min(radius, n_bits)
    expected = brute_pairs(codes, ids, radius)
    found = near_duplicates(codes, n_bits, radius, ids=ids, index=index)
    assert found.n_pairs == len(expected)
    streamed = list(found.iter_pairs(chunk))
    rows = [
        (d, a, b)
        for part in streamed
        for d, a, b in zip(part.distances.tolist(), part.first.tolist(), part.second.tolist())
    ]
    assert rows == expected
    pairs = near_duplicate_pairs(codes, n_bits, radius, ids=ids, index=index)
    assert [g.tolist() for g in found.groups()] == [g.tolist() for g in group_pairs(pairs)]


def test_streamed_pairs_come_in_bounded_chunks(tmp_path):
    """Issue 18, item 10: the pairs of 300 identical codes (44,850) come in chunks of about the
    size asked for, and the streamed CSV equals the one of the pairs held at once."""
    codes = np.zeros((300, 2), np.uint8)
    codes[250:, 0] = 1  # 50 more, one bit away
    found = near_duplicates(codes, 16, 1)
    assert found.n_pairs == 250 * 249 // 2 + 50 * 49 // 2 + 250 * 50
    sizes = [len(part) for part in found.iter_pairs(1000)]
    assert sum(sizes) == found.n_pairs and max(sizes) <= 1000 + 300
    write_pairs_csv(tmp_path / "streamed.csv", found)
    write_pairs_csv(tmp_path / "held.csv", found.pairs())
    assert (tmp_path / "streamed.csv").read_bytes() == (tmp_path / "held.csv").read_bytes()


_DEDUP_CHILD = textwrap.dedent(
    """
    import resource, sys, numpy as np
    from hashlearn.cli import main
    n = 20_000
    rng = np.random.default_rng(0)
    same = np.zeros((n, 8), np.uint8)  # one code, 20,000 times
    mixed = rng.integers(0, 256, (n, 8), dtype=np.uint8)
    mixed[: n // 2] = mixed[n // 2 + rng.integers(0, 50, n // 2)]  # 50 codes copied 10,000 times
    for name, codes in (("same", same), ("mixed", mixed)):
        np.savez(f"{sys.argv[1]}/{name}.npz", codes=codes, n_bits=np.array(64))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for name in ("same", "mixed"):
        folder = sys.argv[1]
        argv = ["dedup", "--codes", f"{folder}/{name}.npz", "--out", f"{folder}/{name}.csv"]
        assert main(argv) == 0
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print("GROWN_KB", grown)
    """
)


def test_dedup_of_many_identical_codes_is_fast_and_small(tmp_path):
    """Issue 18, item 10: 20,000 identical codes took 1.6 GB per 5,000 and ended in MemoryError
    (pairs quadratic in the copies); grouped first, 20,000 copies (and a mix) take seconds and
    a few MB over the interpreter's start."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", _DEDUP_CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (
        "20,000 codes of 64 bits: 199,990,000 pairs within 2 bits, 1 groups holding 20,000 items"
        in done.stdout
    )
    grown_kb = int(done.stdout.split("GROWN_KB")[1])
    assert grown_kb < 150_000, f"dedup grew the peak RSS by {grown_kb} kB"
    with open(tmp_path / "same.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 20_000 and {r["size"] for r in rows} == {"20000"}
