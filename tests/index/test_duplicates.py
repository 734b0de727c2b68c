"""Near-duplicates: the self-join against a brute-force scan, the groups against a plain search."""

import csv

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
