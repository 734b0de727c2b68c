"""One vocabulary of flags (old spellings kept, with a warning) and errors of one line that say
what is wrong and what to do, exit status 2."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from PIL import Image

from hashlearn import create_hasher
from hashlearn.cli import main
from hashlearn.cli.main import build_parser
from hashlearn.encoding import write_codes
from hashlearn.hashers import load_hasher


def one_line_error(capsys, argv: list[str]) -> str:
    """Run ``argv``; check exit status 2 and one error line on stderr (after the warnings of old
    spellings, if any), and return that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"hashlearn {argv[0]}: error: ")
    return lines[0]


def subcommand(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


# -- the vocabulary --------------------------------------------------------------------------------

ALIASES = [
    # (argv with the old spelling, the same with the new one, destination, value, old, new)
    (["index", "--codes", "c.npy", "--out", "o", "--type", "mih"], "index_type", "mih"),
    (["index", "--codes", "c.npy", "--out", "o", "--features", "f.npy"], "item_features", "f.npy"),
    (["dedup", "--codes", "c.npy", "--index", "linear"], "index_type", "linear"),
    (["search", "--index", "i", "--queries", "q", "--metric", "l2"], "rerank_metric", "l2"),
    (["tune", "--method", "itq", "--grid", "a=1", "--metric", "P@10"], "select_by", "P@10"),
    (["serve", "--model", "m", "--data-dir", "w"], "store", "w"),
]
RENAMED = {
    "--type": "--index-type",
    "--features": "--item-features",
    "--index": "--index-type",
    "--metric": None,  # by command: --rerank-metric in search, --select-by in tune
    "--data-dir": "--store",
}


@pytest.mark.parametrize(("argv", "dest", "value"), ALIASES, ids=lambda v: str(v)[:30])
def test_old_spellings_still_work_and_warn_once(capsys, argv, dest, value):
    old = argv[-2]
    new = RENAMED[old] or {"search": "--rerank-metric", "tune": "--select-by"}[argv[0]]
    args = build_parser().parse_args(argv)
    assert getattr(args, dest) == value
    assert capsys.readouterr().err == f"warning: {old} is deprecated, use {new}\n"
    args = build_parser().parse_args([*argv[:-2], new, value])
    assert getattr(args, dest) == value
    assert capsys.readouterr().err == ""
    helped = subcommand(argv[0]).format_help()
    assert new in helped and f"{old} " not in helped.replace(new, "")


def test_evaluate_takes_a_comma_list_of_cutoffs(capsys):
    base = ["evaluate", "--query-codes", "q", "--query-labels", "l", "--db-codes", "d"]
    base += ["--db-labels", "l"]
    assert build_parser().parse_args([*base, "--ks", "10,100"]).ks == [10, 100]
    assert capsys.readouterr().err == ""
    assert build_parser().parse_args([*base, "-k", "5", "20"]).ks == [5, 20]
    assert capsys.readouterr().err == "warning: -k is deprecated, use --ks\n"
    with pytest.raises(SystemExit):
        build_parser().parse_args([*base, "--ks", "ten"])


@pytest.mark.parametrize(
    "argv",
    [
        ["fit", "--method", "lsh", "--data", "x.npz", "--out", "m"],
        ["encode", "--model", "m", "--data", "x.npz", "--out", "c.npy"],
        ["split", "--out", "parts"],
        ["serve", "--model", "m", "--index", "i"],
        ["benchmark"],
        ["tune", "--method", "itq", "--grid", "a=1"],
        ["report", "--results", "r.json", "--out", "r.html"],
        ["demo"],
    ],
    ids=lambda argv: argv[0],
)
def test_every_command_that_shows_progress_takes_quiet(argv):
    assert build_parser().parse_args([*argv, "--quiet"]).quiet is True
    assert build_parser().parse_args(argv).quiet is False


def test_fit_quiet_silences_deep_training(tmp_path, capsys, digits_small):
    X, y = digits_small
    np.savez(tmp_path / "train.npz", X=X[:100], y=y[:100])
    argv = ["fit", "--method", "dsh", "--bits", "8", "--data", str(tmp_path / "train.npz")]
    argv += ["--param", "epochs=1", "--out", str(tmp_path / "m.safetensors"), "--quiet"]
    assert main(argv) == 0
    assert capsys.readouterr().err == ""  # deep training shows a progress bar unless quiet
    assert load_hasher(tmp_path / "m.safetensors").get_params()["verbose"] is False


# -- serve: --images is the folder to index; the items' pictures are --item-images ----------------


@pytest.fixture
def serve_files(tmp_path):
    for name in ("m.safetensors", "i.hlindex"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "photos").mkdir()
    (tmp_path / "pictures").mkdir()
    return tmp_path


def _serve_sources(argv):
    from hashlearn.cli.serve import _sources

    return _sources(build_parser().parse_args(["serve", *argv]))


def test_serve_images_option_in_its_old_and_new_meanings(serve_files, capsys):
    d = serve_files
    model, index = ["--model", str(d / "m.safetensors")], ["--index", str(d / "i.hlindex")]
    photos, pictures = str(d / "photos"), str(d / "pictures")
    # the folder to encode, index and serve
    assert _serve_sources([*model, "--images", photos]) == (None, None, None, photos)
    assert capsys.readouterr().err == ""
    assert _serve_sources([*model, "--folder", photos]) == (None, None, None, photos)
    assert capsys.readouterr().err == "warning: --folder is deprecated, use --images\n"
    # the pictures of an index's items
    expected = (index[1], pictures, None, None)
    assert _serve_sources([*model, *index, "--item-images", pictures]) == expected
    assert capsys.readouterr().err == ""
    assert _serve_sources([*model, *index, "--images", pictures]) == expected
    err = capsys.readouterr().err
    assert err == "warning: --images beside --index is deprecated, use --item-images\n"
    store = _serve_sources([*model, *index, "--data-dir", str(d / "w")])[2]
    assert store == str(d / "w") and "--data-dir is deprecated, use --store" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "give --index (a built index) or --images DIR (a folder of pictures to index)"),
        (["--folder", "photos", "--index", "i.hlindex"], "give --index (a built index) or"),
        (["--images", "photos", "--folder", "photos"], "give the folder of pictures once"),
        (["--images", "photos", "--item-images", "pictures"], "leave out --item-images"),
        (["--index", "i.hlindex", "--images", "a", "--item-images", "b"], "leave out --images"),
        (["--images", "nowhere"], "nowhere: no such folder"),
        (["--index", "i.hlindex", "--labels", "none.npy"], "none.npy: no such file"),
    ],
)
def test_serve_refuses_what_cannot_be_served(serve_files, capsys, monkeypatch, extra, message):
    monkeypatch.chdir(serve_files)
    err = one_line_error(capsys, ["serve", "--model", "m.safetensors", *extra])
    assert message in err


# -- errors -----------------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path, digits_small):
    """Real digits, a 12-bit LSH model, its codes (.npy without a width, .npz with it), a 12-bit
    index, a 16-bit model's codes, and a colour photo."""
    from skimage import data

    X, y = digits_small
    np.savez(tmp_path / "train.npz", X=X, y=y)
    lsh12 = create_hasher("lsh", n_bits=12, random_state=0).fit(X)
    lsh16 = create_hasher("lsh", n_bits=16, random_state=0).fit(X)
    lsh12.save(tmp_path / "lsh12.safetensors")
    lsh16.save(tmp_path / "lsh16.safetensors")
    np.save(tmp_path / "c12.npy", lsh12.encode(X))
    write_codes(tmp_path / "c12.npz", lsh12.encode(X), 12)
    np.save(tmp_path / "q16.npy", lsh16.encode(X[:20]))
    write_codes(tmp_path / "q16.npz", lsh16.encode(X[:20]), 16)
    Image.fromarray(data.coffee()).save(tmp_path / "coffee.png")
    return tmp_path


def test_fit_on_a_picture_points_to_a_folder_of_them(files, capsys):
    argv = ["fit", "--method", "itq", "--data", str(files / "coffee.png"), "--out", "m"]
    err = one_line_error(capsys, argv)
    assert err.endswith(
        "coffee.png: not an .npz or .npy array file but a PNG image: for photos, give their "
        "folder with --images DIR"
    )


def test_an_index_given_as_a_model_is_named_an_index(files, capsys):
    index = str(files / "i.hlindex")
    assert main(["index", "--codes", str(files / "c12.npz"), "--out", index]) == 0
    capsys.readouterr()
    argv = ["encode", "--model", index, "--data", str(files / "train.npz"), "--out", "c.npy"]
    err = one_line_error(capsys, argv)
    assert (
        f"{index}: this is a hashlearn index, not a hashlearn model: give the .safetensors" in err
    )
    argv = ["search", "--index", str(files / "lsh12.safetensors"), "--queries", index]
    err = one_line_error(capsys, argv)
    assert "this is a safetensors file (a model?), not a hashlearn index file" in err


def test_an_unknown_index_parameter_names_the_valid_ones(files, capsys):
    argv = ["index", "--codes", str(files / "c12.npz"), "--out", str(files / "x.hlindex")]
    err = one_line_error(capsys, [*argv, "--index-type", "mih", "--param", "m=99"])
    assert err.endswith(
        "the mih index has no parameter m: it takes n_substrings (`hashlearn index --help` "
        "describes each index type)"
    )
    err = one_line_error(capsys, [*argv, "--param", "key_bits=4"])
    assert "the linear index has no parameter key_bits: it takes no parameters" in err
    err = one_line_error(capsys, [*argv, "--index-type", "multi-table", "--param", "m=1"])
    assert "it takes n_tables " in err
    assert not (files / "x.hlindex").exists()


EVALUATE = ["evaluate", "--query-codes", "{d}/c12.npy", "--query-labels", "{d}/train.npz"]
EVALUATE += ["--db-codes", "{d}/c12.npy", "--db-labels", "{d}/train.npz"]
MISSING_FILE_COMMANDS = [
    ["fit", "--method", "lsh", "--data", "{m}", "--out", "o"],
    ["encode", "--model", "{m}", "--data", "{d}/train.npz", "--out", "o.npy"],
    ["encode", "--model", "{d}/lsh12.safetensors", "--data", "{m}", "--out", "o.npy"],
    ["index", "--codes", "{m}", "--bits", "12", "--out", "o"],
    ["index", "--codes", "{d}/c12.npy", "--model", "{m}", "--out", "o"],
    ["index", "--codes", "{d}/c12.npz", "--ids", "{m}", "--out", "o"],
    ["index", "--codes", "{d}/c12.npz", "--item-features", "{m}", "--out", "o"],
    ["search", "--index", "{m}", "--queries", "{d}/c12.npy"],
    ["search", "--index", "{d}/i.hlindex", "--queries", "{m}"],
    ["search", "--index", "{d}/i.hlindex", "--queries", "{d}/c12.npy", "--rerank", "{m}"],
    ["dedup", "--codes", "{m}"],
    ["dedup", "--codes", "{d}/c12.npy", "--model", "{m}"],
    [*EVALUATE[:2], "{m}", *EVALUATE[3:]],
    [*EVALUATE[:-1], "{m}"],
    ["info", "{m}"],
    ["report", "--results", "{m}", "--out", "r.html"],
    ["benchmark", "--config", "{m}"],
    ["robustness", "--model", "{m}", "--images", "{d}"],
    ["serve", "--model", "{m}", "--index", "{d}/i.hlindex"],
    ["serve", "--model", "{d}/lsh12.safetensors", "--index", "{m}"],
    [
        "serve",
        "--model",
        "{d}/lsh12.safetensors",
        "--index",
        "{d}/i.hlindex",
        "--token-file",
        "{m}",
    ],
]


@pytest.mark.parametrize("argv", MISSING_FILE_COMMANDS, ids=lambda a: " ".join(a[:3])[:40])
def test_a_missing_file_reads_the_same_in_every_command(files, capsys, argv):
    assert (
        main(["index", "--codes", str(files / "c12.npz"), "--out", str(files / "i.hlindex")]) == 0
    )
    capsys.readouterr()
    missing = str(files / "absent.file")
    err = one_line_error(capsys, [a.format(m=missing, d=files) for a in argv])
    assert err.endswith(f"error: {missing}: no such file")


@pytest.mark.parametrize(
    "argv",
    [
        ["fit", "--method", "itq", "--images", "{m}", "--out", "o"],
        ["encode", "--model", "{d}/lsh12.safetensors", "--images", "{m}", "--out", "o.npz"],
        ["robustness", "--model", "{d}/lsh12.safetensors", "--images", "{m}"],
        ["serve", "--model", "{d}/lsh12.safetensors", "--images", "{m}"],
    ],
    ids=lambda a: a[0],
)
def test_a_missing_folder_reads_the_same_in_every_command(files, capsys, argv):
    missing = str(files / "absent")
    err = one_line_error(capsys, [a.format(m=missing, d=files) for a in argv])
    assert err.endswith(f"error: {missing}: no such folder")


def test_an_unreadable_picture_points_to_skip_unreadable(files, capsys, digits_small):
    X, _ = digits_small
    folder = files / "digits"
    folder.mkdir()
    for number in range(3):
        Image.fromarray((X[number].reshape(8, 8) * 255 / X.max()).astype(np.uint8)).save(
            folder / f"{number}.png"
        )
    (folder / "notes.png").write_text("a text file named .png")
    argv = ["encode", "--model", str(files / "lsh12.safetensors"), "--images", str(folder)]
    argv += ["--image-shape", "8x8", "--quiet", "--out", str(files / "d.npz")]
    err = one_line_error(capsys, argv)
    assert "'notes.png'" in err and "the file is text, not a PNG or JPEG image" in err
    assert err.endswith("give --skip-unreadable (skip_unreadable=True)")
    assert main([*argv, "--skip-unreadable"]) == 0
    assert "3 codes of 12 bits" in capsys.readouterr().out


def test_queries_of_another_width_are_named_with_both_widths(files, capsys):
    index = str(files / "i.hlindex")
    assert main(["index", "--codes", str(files / "c12.npz"), "--out", index]) == 0
    capsys.readouterr()
    search = ["search", "--index", index, "--queries"]
    err = one_line_error(capsys, [*search, str(files / "q16.npz")])  # its width is recorded
    assert err.endswith(
        "16-bit queries, 12-bit index; encode the queries with the model that made the index"
    )
    err = one_line_error(capsys, [*search, str(files / "q16.npy")])  # told by its bits
    assert "16-bit queries, 12-bit index: the queries have bits set beyond bit 12" in err
    np.save(files / "q24.npy", np.zeros((2, 3), np.uint8))
    err = one_line_error(capsys, [*search, str(files / "q24.npy")])  # told by its bytes
    assert "3-byte queries, 12-bit index: the queries are 3 bytes wide" in err
    assert main([*search, str(files / "c12.npz"), "-k", "1"]) == 0


def test_index_takes_the_code_length_from_the_codes_or_the_model_never_a_guess(files, capsys):
    out = str(files / "x.hlindex")
    npy = ["index", "--codes", str(files / "c12.npy"), "--out", out]
    err = one_line_error(capsys, npy)
    assert err.endswith(
        "c12.npy does not record the code length (2 bytes per code hold up to 16 bits): give "
        "--model MODEL (the model that made the codes) or --bits N"
    )
    assert not (files / "x.hlindex").exists()
    for argv in ([*npy, "--model", str(files / "lsh12.safetensors")], [*npy, "--bits", "12"]):
        assert main(argv) == 0
        assert "300 codes of 12 bits" in capsys.readouterr().out
    assert main(["index", "--codes", str(files / "c12.npz"), "--out", out]) == 0
    assert "300 codes of 12 bits" in capsys.readouterr().out
    npz = ["index", "--codes", str(files / "c12.npz"), "--out", out]
    err = one_line_error(capsys, [*npz, "--model", str(files / "lsh16.safetensors")])
    assert "c12.npz holds 12-bit codes, but the model" in err and "makes 16-bit codes" in err
    err = one_line_error(capsys, [*npz, "--bits", "16"])
    assert "c12.npz holds 12-bit codes, not 16-bit ones: leave out --bits" in err
    err = one_line_error(capsys, ["dedup", "--codes", str(files / "c12.npy")])
    assert "give --model MODEL (the model that made the codes) or --bits N" in err
