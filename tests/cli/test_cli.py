import subprocess
import sys

import numpy as np
import pytest

from hashlearn.cli import main


@pytest.fixture
def data_dir(tmp_path, digits_small):
    X, y = digits_small
    np.savez(tmp_path / "train.npz", X=X[:200], y=y[:200])
    np.savez(tmp_path / "database.npz", X=X[:250], y=y[:250])
    np.savez(tmp_path / "query.npz", X=X[250:], y=y[250:])
    return tmp_path


@pytest.mark.parametrize(
    ("method", "params"),
    [("lsh", []), ("dsh", ["--param", "epochs=3", "--param", "verbose=false"])],
)
def test_pipeline_fit_encode_index_search_evaluate(data_dir, capsys, method, params):
    d = data_dir
    assert (
        main(
            [
                "fit",
                "--method",
                method,
                "--bits",
                "16",
                "--data",
                str(d / "train.npz"),
                "--seed",
                "0",
                "--out",
                str(d / "m.safetensors"),
                *params,
            ]
        )
        == 0
    )
    for part in ("database", "query"):
        assert (
            main(
                [
                    "encode",
                    "--model",
                    str(d / "m.safetensors"),
                    "--data",
                    str(d / f"{part}.npz"),
                    "--out",
                    str(d / f"{part}_codes.npy"),
                ]
            )
            == 0
        )
    codes = np.load(d / "database_codes.npy")
    assert codes.shape == (250, 2) and codes.dtype == np.uint8
    assert (
        main(
            [
                "index",
                "--codes",
                str(d / "database_codes.npy"),
                "--model",
                str(d / "m.safetensors"),
                "--out",
                str(d / "db.hlindex"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "search",
                "--index",
                str(d / "db.hlindex"),
                "--queries",
                str(d / "query_codes.npy"),
                "-k",
                "5",
                "--out",
                str(d / "hits.npz"),
            ]
        )
        == 0
    )
    hits = np.load(d / "hits.npz")
    assert hits["ids"].shape == (50, 5) and hits["distances"].shape == (50, 5)
    assert (
        main(
            [
                "search",
                "--index",
                str(d / "db.hlindex"),
                "--queries",
                str(d / "query_codes.npy"),
                "--radius",
                "1",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--query-codes",
                str(d / "query_codes.npy"),
                "--query-labels",
                str(d / "query.npz"),
                "--db-codes",
                str(d / "database_codes.npy"),
                "--db-labels",
                str(d / "database.npz"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "mAP" in out and "P@10" in out and "NDCG@10" in out
    evaluate = ["evaluate", "--query-codes", str(d / "query_codes.npy"), "--query-labels"]
    evaluate += [str(d / "query.npz"), "--db-codes", str(d / "database_codes.npy")]
    evaluate += ["--db-labels", str(d / "database.npz"), "--ties", "average", "--ks", "5"]
    assert main(evaluate) == 0
    out = capsys.readouterr().out
    assert "mAP@5" in out and "tie" in out


def test_split_writes_every_part(tmp_path, capsys):
    assert main(["split", "--dataset", "digits", "--out", str(tmp_path)]) == 0
    sizes = {
        p: len(np.load(tmp_path / f"{p}.npz")["y"])
        for p in ("query", "database", "train", "validation")
    }
    assert sizes == {"query": 180, "database": 1617, "train": 1300, "validation": 200}
    assert "manifest" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["fit", "--method", "nope", "--data", "{d}/train.npz", "--out", "{d}/m"],
            "unknown hasher 'nope'",
        ),
        (
            ["fit", "--method", "lsh", "--data", "{d}/missing.npz", "--out", "{d}/m"],
            "missing.npz: no such file",
        ),
        (
            ["fit", "--method", "lsh", "--bits", "0", "--data", "{d}/train.npz", "--out", "{d}/m"],
            "n_bits must be >= 1",
        ),
        (
            ["encode", "--model", "{d}/train.npz", "--data", "{d}/train.npz", "--out", "{d}/c.npy"],
            "train.npz: this is an .npz array file, not a hashlearn model",
        ),
        (
            ["search", "--index", "{d}/train.npz", "--queries", "{d}/train.npz"],
            "train.npz: this is an .npz array file, not a hashlearn index",
        ),
    ],
)
def test_errors_are_one_clear_line(data_dir, capsys, argv, message):
    assert main([a.format(d=data_dir) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_help_runs_as_a_program():
    out = subprocess.run(
        [sys.executable, "-m", "hashlearn.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for command in ("demo", "fit", "encode", "index", "search", "evaluate"):
        assert command in out.stdout


@pytest.mark.parametrize(
    ("index_type", "params"),
    [
        ("linear", []),
        ("hash-table", ["--param", "key_bits=16"]),
        ("multi-table", ["--param", "n_tables=2"]),
        ("mih", ["--param", "n_substrings=3"]),
        ("faiss", ["--param", 'kind="flat"']),
    ],
)
def test_index_types_search_like_the_linear_index(tmp_path, capsys, index_type, params):
    if index_type == "faiss":
        pytest.importorskip("faiss")
    from hashlearn.index import LinearIndex

    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, size=(300, 4), dtype=np.uint8)
    queries = codes[:20].copy()
    queries[:, 0] ^= 1  # near duplicates
    np.save(tmp_path / "db.npy", codes)
    np.save(tmp_path / "q.npy", queries)
    index_file = str(tmp_path / f"{index_type}.hlindex")
    argv = ["index", "--codes", str(tmp_path / "db.npy"), "--index-type", index_type, *params]
    assert main([*argv, "--bits", "32", "--out", index_file]) == 0
    assert f"{index_type} index of 300 codes of 32 bits" in capsys.readouterr().out
    reference = LinearIndex(32)
    reference.add(codes)
    for query_args, key in ((["--radius", "9"], "ids"), (["-k", "1"], "ids")):
        out = str(tmp_path / "hits.npz")
        search = ["search", "--index", index_file, "--queries", str(tmp_path / "q.npy")]
        assert main([*search, *query_args, "--threads", "1", "--mmap", "--out", out]) == 0
        assert "queries/s" in capsys.readouterr().out
        hits = np.load(out)
        if query_args[0] == "--radius":
            lims, D, I = reference.range_search(queries, 9)
            np.testing.assert_array_equal(hits["lims"], lims)
        else:
            D, I = reference.search(queries, 1)  # the near duplicate, in every index type
        np.testing.assert_array_equal(hits[key], I)
        np.testing.assert_array_equal(hits["distances"], D)


def test_index_rejects_unknown_type_and_parameters(tmp_path, capsys):
    np.save(tmp_path / "db.npy", np.zeros((3, 2), dtype=np.uint8))
    base = ["index", "--codes", str(tmp_path / "db.npy"), "--bits", "16"]
    base += ["--out", str(tmp_path / "x.hlindex")]
    with pytest.raises(SystemExit):
        main([*base, "--index-type", "nope"])
    assert main([*base, "--index-type", "mih", "--param", "bogus=1"]) != 0
    assert "the mih index has no parameter bogus: it takes n_substrings" in capsys.readouterr().err
    assert main([*base, "--index-type", "multi-table", "--param", "n_tables=3"]) != 0
    assert "multiple of n_tables" in capsys.readouterr().err
    assert not (tmp_path / "x.hlindex").exists()


@pytest.mark.parametrize(
    ("index_type", "params", "probe", "metric"),
    [
        ("hash-table", [], [], "cosine"),  # items within 2 bits
        ("hash-table", ["--param", "key_bits=8"], ["--probe-radius", "3"], "l2"),
        ("multi-table", ["--param", "n_tables=2"], ["--probe-radius", "1"], "cosine"),
    ],
)
def test_search_reranks_by_the_stored_features(tmp_path, capsys, index_type, params, probe, metric):
    from hashlearn import create_hasher
    from hashlearn.datasets import load_dataset
    from hashlearn.index import load_index

    data = load_dataset("digits")
    X = data.X.reshape(len(data.X), -1)
    db_X, q_X = X[:1500], X[1500:1530]
    hasher = create_hasher("lsh", n_bits=16, random_state=0).fit(db_X)
    np.save(tmp_path / "db.npy", hasher.encode(db_X))
    np.save(tmp_path / "q.npy", hasher.encode(q_X))
    np.save(tmp_path / "db_X.npy", db_X)
    np.savez(tmp_path / "q_X.npz", X=q_X)
    index_file = str(tmp_path / "t.hlindex")
    argv = ["index", "--codes", str(tmp_path / "db.npy"), "--index-type", index_type, *params]
    argv += ["--bits", "16", "--item-features", str(tmp_path / "db_X.npy"), "--out", index_file]
    assert main(argv) == 0
    assert "and 64 features each" in capsys.readouterr().out
    search = ["search", "--index", index_file, "--queries", str(tmp_path / "q.npy"), "-k", "5"]
    search += ["--rerank", str(tmp_path / "q_X.npz"), "--rerank-metric", metric, *probe]
    assert main([*search, "--out", str(tmp_path / "hits.npz")]) == 0
    hits = np.load(tmp_path / "hits.npz")
    radius = int(probe[1]) if probe else (2 if index_type == "hash-table" else 0)
    index = load_index(index_file)
    D, I = index.search_rerank(hasher.encode(q_X), q_X, 5, radius, metric=metric)
    np.testing.assert_array_equal(hits["ids"], I)
    np.testing.assert_array_equal(hits["distances"], D)
    assert (I[:, 0] >= 0).all() and D.dtype == np.float32


def test_rerank_needs_features_and_a_table_index(tmp_path, capsys):
    np.save(tmp_path / "db.npy", np.zeros((3, 2), dtype=np.uint8))
    np.save(tmp_path / "f.npy", np.ones((3, 4), dtype=np.float32))
    base = ["index", "--codes", str(tmp_path / "db.npy"), "--bits", "16"]
    linear = str(tmp_path / "l.hlindex")
    assert main([*base, "--item-features", str(tmp_path / "f.npy"), "--out", linear]) == 2
    assert "linear index keeps no features" in capsys.readouterr().err
    assert not (tmp_path / "l.hlindex").exists()
    assert main([*base, "--index-type", "hash-table", "--out", linear]) == 0
    search = ["search", "--index", linear, "--queries", str(tmp_path / "db.npy")]
    assert main([*search, "--rerank", str(tmp_path / "f.npy")]) == 2
    assert "keeps no item features" in capsys.readouterr().err
    assert main([*search, "--rerank", str(tmp_path / "f.npy"), "--radius", "2"]) == 2
    assert "give -k, not --radius" in capsys.readouterr().err
    assert main([*search, "--probe-radius", "2"]) == 2
    assert "give --rerank too" in capsys.readouterr().err


def test_npz_codes_carry_their_code_length_to_the_index(data_dir, capsys):
    d = data_dir
    model, codes = str(d / "lsh12.safetensors"), str(d / "db.npz")
    fit = ["fit", "--method", "lsh", "--bits", "12", "--data", f"{d}/train.npz"]
    assert main([*fit, "--out", model]) == 0
    assert main(["encode", "--model", model, "--data", f"{d}/database.npz", "--out", codes]) == 0
    saved = np.load(codes)
    assert int(saved["n_bits"]) == 12 and saved["codes"].shape == (250, 2)
    capsys.readouterr()
    assert main(["index", "--codes", codes, "--out", str(d / "db.hlindex")]) == 0
    assert "250 codes of 12 bits" in capsys.readouterr().out  # not 16 = 8 x 2 bytes


def test_list_names_everything_a_command_takes(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for section in ("hashers:", "features (chain with +", "datasets:", "protocols:", "indexes:"):
        assert section in out
    for name in ("ksh", "gist", "mnist5k", "cifar10-1", "mih"):
        assert f"\n  {name} " in out


def test_info_describes_models_indexes_and_arrays(data_dir, capsys):
    d = data_dir
    model, codes, index = str(d / "m.safetensors"), str(d / "c.npz"), str(d / "i.hlindex")
    fit = ["fit", "--method", "itq", "--bits", "12", "--data", f"{d}/train.npz"]
    assert main([*fit, "--features", "hog", "--out", model]) == 0
    assert main(["encode", "--model", model, "--data", f"{d}/database.npz", "--out", codes]) == 0
    assert main(["index", "--codes", codes, "--index-type", "mih", "--out", index]) == 0
    capsys.readouterr()
    assert main(["info", model, index, codes]) == 0
    out = capsys.readouterr().out
    assert "itq model, 12 bits" in out and "format version 2" in out
    assert "input: images 8x8x1, through the features below" in out and '"name": "hog"' in out
    assert "MultiIndexHashingIndex index" in out and "250 items, 12 bits" in out
    assert "codes: uint8 (250, 2)" in out and "n_bits: 12" in out
    (d / "notes.txt").write_text("hello, world")
    assert main(["info", str(d / "notes.txt")]) == 2
    assert "none of what hashlearn writes" in capsys.readouterr().err


def test_info_without_files_names_the_kernel_variant(capsys):
    from hashlearn.codes.kernels import kernel_variant

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"Hamming kernel: {kernel_variant()} (this CPU runs: " in out and "CPU: " in out


def test_a_closed_pipe_is_not_an_error():
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before anything is written
    try:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # block-buffered
        out = subprocess.run(
            [sys.executable, "-m", "hashlearn.cli", "list"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
    finally:
        os.close(write_end)
    assert out.returncode == 141 and out.stderr == ""
