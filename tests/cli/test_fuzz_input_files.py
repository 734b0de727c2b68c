"""Fuzzing the array files the CLI reads: real codes and features files, mutated (bits flipped,
bytes overwritten, truncated), given to ``search``, ``index``, ``dedup``, ``encode`` and
``info``. Every run ends with exit status 0, or 2 and one error line; never a traceback, and
never an allocation beyond a small budget (issue 18, item 8: "782 of 2,465 runs ended in an
unexpected exception, 14 took over 2 GB")."""

from __future__ import annotations

import contextlib
import io
import random
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hashlearn import create_hasher
from hashlearn.cli import main
from hashlearn.encoding import write_codes

BUDGET = 64 << 20
"""Most bytes one run may allocate (traced by tracemalloc: Python objects and numpy arrays)."""

CODES_SEEDS = ("codes.npz", "codes.npy", "compressed.npz", "images.npz")
FEATURES_SEEDS = ("features.npy", "features.npz")


@dataclass(frozen=True)
class Outcome:
    status: int | None  # None: an exception escaped
    error: str  # the stderr of the run, or the escaped exception
    peak: int  # bytes allocated at the peak, over what was allocated before the run


def make_seeds(folder: Path) -> None:
    """Small real input files in ``folder``: a 16-bit LSH model, its index, codes and features
    files of each layout the CLI reads."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 8)).astype(np.float32)
    hasher = create_hasher("lsh", n_bits=16, random_state=0).fit(X)
    hasher.save(folder / "model.safetensors")
    codes = hasher.encode(X)
    write_codes(folder / "codes.npz", codes, 16)
    np.save(folder / "codes.npy", codes)
    np.savez_compressed(folder / "compressed.npz", codes=codes, n_bits=np.array(16))
    np.savez(
        folder / "images.npz",
        codes=codes,
        n_bits=np.array(16),
        ids=np.arange(100, 140),
        paths=np.array([f"{i}.png" for i in range(40)]),
        root=np.array(str(folder)),
    )
    np.save(folder / "features.npy", X)
    np.savez(folder / "features.npz", X=X, y=np.arange(40) % 4)
    assert main(["index", "--codes", str(folder / "codes.npz"), "--out", str(folder / "i")]) == 0


def commands(folder: Path, seed: str, mutant: Path) -> list[list[str]]:
    """The commands that read a file like ``seed``, given ``mutant`` instead."""
    m, out = str(mutant), str(folder / "out")
    if seed in FEATURES_SEEDS:
        model = str(folder / "model.safetensors")
        return [["encode", "--model", model, "--data", m, "--out", f"{out}.npy"], ["info", m]]
    return [
        ["search", "--index", str(folder / "i"), "--queries", m, "-k", "5"],
        ["index", "--codes", m, "--bits", "16", "--out", f"{out}.hlindex"],
        ["dedup", "--codes", m, "--bits", "16", "--radius", "1"],
        ["info", m],
    ]


def mutate(data: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    """``data`` with ``edits`` applied: ``("flip", position, bit)``, ``("byte", position,
    value)``, ``("cut", length, 0)`` (positions and lengths wrap around the data)."""
    out = bytearray(data)
    for kind, where, value in edits:
        if not out:
            break
        if kind == "flip":
            out[where % len(out)] ^= 1 << (value % 8)
        elif kind == "byte":
            out[where % len(out)] = value % 256
        else:
            del out[where % len(out) :]
    return bytes(out)


def run(argv: list[str]) -> Outcome:
    """Run the CLI in this process; what it returned, said on stderr, and allocated."""
    err = io.StringIO()
    tracemalloc.start()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                status = main(argv)
            except SystemExit as exc:  # argparse
                status = exc.code if isinstance(exc.code, int) else 2
            except BaseException as exc:  # what the test is looking for
                return Outcome(None, f"{type(exc).__name__}: {exc}", 0)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return Outcome(status, err.getvalue(), peak)


def acceptable(argv: list[str], outcome: Outcome) -> bool:
    """Exit 0, or exit 2 with one line ``hashlearn COMMAND: error: ...``; within the budget."""
    if outcome.status is None or outcome.peak > BUDGET:
        return False
    if outcome.status == 0:
        return True
    lines = outcome.error.splitlines()
    return (
        outcome.status == 2
        and len(lines) == 1
        and lines[0].startswith(f"hashlearn {argv[0]}: error: ")
    )


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    make_seeds(folder)
    return folder


EDITS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "flip", "byte", "cut"]),
        st.one_of(st.integers(0, 160), st.integers(0, 2**20)),  # the headers more often
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=6,
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.sampled_from(CODES_SEEDS + FEATURES_SEEDS), edits=EDITS, which=st.integers(0, 3))
def test_mutated_input_files_end_in_a_result_or_one_line(seeds, seed, edits, which):
    """Issue 18, item 8: a mutated codes or features file, given to each command that reads
    it, ends in exit 0, or exit 2 with one error line; never a traceback, nor more than 64 MB."""
    mutant = seeds / f"mutant-{seed}"
    mutant.write_bytes(mutate((seeds / seed).read_bytes(), edits))
    options = commands(seeds, seed, mutant)
    argv = options[which % len(options)]
    outcome = run(argv)
    assert acceptable(argv, outcome), (argv, edits, outcome)


def fuzz_counts(folder: Path, runs: int, rng: random.Random) -> dict[str, int]:
    """``runs`` random mutants through random commands: how many ended in exit 0, in exit 2
    with one line, and otherwise (for the figures of issue 18)."""
    counts = {"runs": 0, "exit 0": 0, "exit 2": 0, "other": 0}
    for _ in range(runs):
        seed = rng.choice(CODES_SEEDS + FEATURES_SEEDS)
        edits = [
            (
                rng.choice(["flip", "flip", "byte", "cut"]),
                rng.randrange(160) if rng.random() < 0.5 else rng.randrange(2**20),
                rng.randrange(256),
            )
            for _ in range(rng.randint(1, 6))
        ]
        mutant = folder / f"mutant-{seed}"
        mutant.write_bytes(mutate((folder / seed).read_bytes(), edits))
        argv = rng.choice(commands(folder, seed, mutant))
        outcome = run(argv)
        counts["runs"] += 1
        if not acceptable(argv, outcome):
            counts["other"] += 1
        else:
            counts[f"exit {outcome.status}"] += 1
    return counts
