"""Broken array files, absurd ``-k`` and bad flags: one line and exit status 2, or a result,
never a traceback or a multi-GB allocation (issue 18, items 8 and 13)."""

from __future__ import annotations

import io
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest

from hashlearn import create_hasher
from hashlearn.cli import main
from hashlearn.cli.main import one_line
from hashlearn.encoding import write_codes

MB = 1 << 20


def one_line_error(capsys, argv: list[str]) -> str:
    """Run ``argv``; check exit status 2 and one error line on stderr; return that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"hashlearn {argv[0]}: error: ")
    return err.strip()


@pytest.fixture
def files(tmp_path):
    """A 16-bit LSH model of 8 features, its codes (``codes.npz``) and an index of them."""
    X = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    hasher = create_hasher("lsh", n_bits=16, random_state=0).fit(X)
    hasher.save(tmp_path / "model.safetensors")
    write_codes(tmp_path / "codes.npz", hasher.encode(X), 16)
    assert (
        main(["index", "--codes", str(tmp_path / "codes.npz"), "--out", str(tmp_path / "i")]) == 0
    )
    return tmp_path


def _npy_with_header(shape: tuple[int, ...], dtype: str, payload: bytes) -> bytes:
    """The bytes of an ``.npy`` file whose header announces ``shape`` and ``dtype``, followed by
    ``payload`` (however short)."""
    out = io.BytesIO()
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue() + payload


def _broken_zlib(codes: np.ndarray) -> bytes:
    """An ``.npz`` of ``savez_compressed`` whose deflate stream of ``codes`` starts with an
    invalid block type."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, codes=codes, n_bits=np.array(16))
    raw = bytearray(buffer.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as archive:
        info = archive.getinfo("codes.npy")
    name_length = int.from_bytes(raw[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_length = int.from_bytes(raw[info.header_offset + 28 : info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_length + extra_length
    raw[start] = 0xFF  # BTYPE 11: reserved, "invalid block type"
    return bytes(raw)


def _codes_files(codes: np.ndarray) -> dict[str, tuple[bytes | dict, str]]:
    """Broken codes files by case: their bytes (or arrays for ``np.savez``), and what the error
    line says."""
    whole = io.BytesIO()
    np.savez(whole, codes=codes, n_bits=np.array(16))
    return {
        "bad zip": (whole.getvalue()[: len(whole.getvalue()) // 2], "File is not a zip file"),
        "bad zlib": (_broken_zlib(codes), "without pickle: Error -3"),
        "n_bits array": ({"codes": codes, "n_bits": np.array([16, 16])}, "n_bits must be one"),
        "n_bits NaN": ({"codes": codes, "n_bits": np.array(np.nan)}, "n_bits must be one"),
        "scalar codes": ({"codes": np.array(3, np.uint8), "n_bits": np.array(16)}, "2-D"),
        "no array": ({}, "has no array 'codes'; it holds no array"),
        "paths of another length": (
            {"codes": codes, "n_bits": np.array(16), "paths": np.array(["a.png"])},
            "paths must be one per code",
        ),
        "huge npy header": (_npy_with_header((10**6, 10**6), "|u1", b"\0" * 64), "truncated"),
        "object array": (
            {"codes": np.array([None, 1], dtype=object), "n_bits": np.array(16)},
            "Python objects",
        ),
    }


READABLE_BY_INFO = (
    "n_bits array",
    "n_bits NaN",
    "scalar codes",
    "paths of another length",
    "no array",
)


def _write(path, content) -> None:
    if isinstance(content, dict):
        with open(path, "wb") as handle:
            np.savez(handle, **content)
    else:
        path.write_bytes(content)


@pytest.mark.parametrize(
    "case",
    [
        "bad zip",
        "bad zlib",
        "n_bits array",
        "n_bits NaN",
        "scalar codes",
        "no array",
        "paths of another length",
        "huge npy header",
        "object array",
    ],
)
@pytest.mark.parametrize("command", ["search", "index", "dedup", "info"])
def test_a_broken_codes_file_is_one_line(files, capsys, case, command):
    """Issue 18, item 8: bad zips and zlib streams, an array or NaN ``n_bits``, scalar codes,
    an ``.npz`` with no array ended in tracebacks (BadZipFile, zlib.error, TypeError,
    ValueError), and an ``.npy`` header announcing 10**12 items in a MemoryError; each is one
    line naming the file, exit 2, with nothing allocated from what a header announces."""
    content, message = _codes_files(np.zeros((40, 2), np.uint8))[case]
    name = "bad.npy" if case == "huge npy header" else "bad.npz"
    path = files / name
    _write(path, content)
    argv = {
        "search": ["search", "--index", str(files / "i"), "--queries", str(path)],
        "index": ["index", "--codes", str(path), "--out", str(files / "out")],
        "dedup": ["dedup", "--codes", str(path), "--bits", "16"],
        "info": ["info", str(path)],
    }[command]
    if command == "info" and case in READABLE_BY_INFO:
        assert main(argv) == 0  # info shows the arrays as they are
        return
    if command == "search" and case == "scalar codes":
        message = "queries must be 2-D"
    tracemalloc.start()
    try:
        err = one_line_error(capsys, argv)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert message in err
    assert peak < 64 * MB


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"X": np.zeros((0, 8), np.float32)}, "X is empty"),
        ({"X": np.array(1.0)}, "X must have 2 to 4 dimensions"),
        ({"Y": np.zeros((3, 8))}, "has no array 'X'; it holds: Y"),
        ({"X": np.full((3, 8), np.nan)}, "NaN or infinite"),
    ],
)
def test_a_broken_features_file_is_one_line(files, capsys, arrays, message):
    """Issue 18, item 8: 0-row, scalar or NaN features and an ``.npz`` without ``X`` given to
    ``encode``: one line, exit 2."""
    np.savez(files / "features.npz", **arrays)
    argv = ["encode", "--model", str(files / "model.safetensors")]
    argv += ["--data", str(files / "features.npz"), "--out", str(files / "o.npy")]
    assert message in one_line_error(capsys, argv)


def test_k_beyond_the_index_allocates_for_the_index_only(files, capsys):
    """Issue 18, items 8 and 13: ``-k 10000000000`` ended in MemoryError, ``-k 20000000`` with
    10 queries allocated 2.5 GB; results are sized by the 40 items of the index."""
    argv = ["search", "--index", str(files / "i"), "--queries", str(files / "codes.npz")]
    tracemalloc.start()
    try:
        assert main([*argv, "-k", "10000000000", "--out", str(files / "hits.npz")]) == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * MB
    with np.load(files / "hits.npz") as hits:
        assert hits["ids"].shape == (40, 40)
    capsys.readouterr()


def test_threads_must_be_at_least_one(files, capsys):
    """Issue 18, item 13: ``--threads 0`` was taken for the default."""
    argv = ["search", "--index", str(files / "i"), "--queries", str(files / "codes.npz")]
    err = one_line_error(capsys, [*argv, "--threads", "0"])
    assert err.endswith("--threads must be at least 1, got 0")


def test_info_on_a_folder_says_it_is_a_folder(files, capsys):
    """Issue 18, item 13: ``info`` on a folder said "file not found"."""
    assert one_line_error(capsys, ["info", str(files)]).endswith(
        f"{files}: is a folder, not a file"
    )


def test_an_error_with_line_breaks_is_printed_on_one_line(files, capsys):
    """Issue 18, item 13: an error message holding line breaks (here a file name) was printed on
    several lines; the CLI joins them."""
    missing = str(files / "two\nlines.npz")
    err = one_line_error(capsys, ["dedup", "--codes", missing])
    assert "two / lines.npz: no such file" in err
    assert one_line("a\r\nb\n\nc \n") == "a / b / c"


def test_a_backbone_of_a_missing_package_is_one_line(files, capsys, monkeypatch, digits_small):
    """Issue 18, item 8: a ``timm:`` / ``torchvision:`` backbone without its package ended in a
    ModuleNotFoundError traceback."""
    X, y = digits_small
    np.savez(files / "digits.npz", X=X, y=y)
    monkeypatch.setitem(sys.modules, "timm", None)  # makes `import timm` fail
    argv = ["fit", "--method", "dsh", "--bits", "8", "--data", str(files / "digits.npz")]
    argv += ["--param", "backbone=timm:resnet18", "--out", str(files / "m.safetensors")]
    err = one_line_error(capsys, argv)
    assert "pip install 'hashlearn[timm]'" in err


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("9" * 5000, "holds an integer of 5,000 digits"),
        ("[" * 5000 + "]" * 5000, "nested deeper than 64 levels"),
        ("1e999", "too large for a float"),
        ("[1,", "is not valid JSON"),
    ],
)
def test_a_param_value_is_read_by_the_bounded_json_reader(files, capsys, value, said):
    """Issue 18, item 8: ``--param`` read its value with ``json.loads``: 5,000 nested brackets
    ended in a RecursionError traceback and a 5,000-digit number echoed itself in the error."""
    argv = ["fit", "--method", "lsh", "--bits", "8", "--data", str(files / "codes.npz")]
    with pytest.raises(SystemExit) as stop:  # argparse's own refusal: usage, then one line
        main([*argv, "--out", str(files / "m"), "--param", f"seed={value}"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("hashlearn fit: error: argument --param: ")
    assert said in last and len(last) < 300
