import csv
import json

import pytest

from hashlearn.cli import main
from hashlearn.exceptions import FileFormatError, InvalidInputError, UnknownNameError
from hashlearn.experiments import load_config, run_benchmark, run_config, summarize
from hashlearn.hashers import load_hasher


def test_benchmark_rows_are_complete_and_reproducible():
    kwargs = dict(features="pixels", verbose=False)
    rows = run_benchmark("digits", ["lsh", "itq"], [8, 16], [0, 1], **kwargs)
    assert [(r.method, r.n_bits, r.seed) for r in rows] == [
        (m, b, s) for s in (0, 1) for m in ("lsh", "itq") for b in (8, 16)
    ]
    assert all(0 < r.mAP <= 1 and 0 <= r.metrics["P@10"] <= 1 and r.fit_s >= 0 for r in rows)
    assert list(rows[0].metrics) == [
        "mAP",
        "mAP@10",
        "P@10",
        "R@10",
        "P@100",
        "R@100",
        "NDCG@10",
        "P@r2",
        "R@r2",
    ]
    assert {r.manifest for r in rows if r.seed == 0} != {r.manifest for r in rows if r.seed == 1}
    again = run_benchmark("digits", ["lsh", "itq"], [8, 16], [0, 1], **kwargs)

    def measured(row):  # everything but the timings
        return row.metrics, row.curves["pr"], row.curves["radius"]["P@10"], row.manifest

    assert [measured(r) for r in rows] == [measured(r) for r in again]
    table = summarize(rows)
    assert "8 bits" in table and "16 bits" in table and "±" in table
    with pytest.raises(InvalidInputError, match="unknown metric"):
        summarize(rows, "P@11")


def test_unknown_method_fails_before_any_work():
    with pytest.raises(UnknownNameError, match="unknown hasher 'itk'"):
        run_benchmark("digits", ["lsh", "itk"], [8], [0], verbose=False)


def test_benchmark_command_writes_csv_and_json(tmp_path, capsys):
    assert (
        main(
            [
                "benchmark",
                "--dataset",
                "digits",
                "--features",
                "hog",
                "--methods",
                "lsh,pcah",
                "--bits",
                "8,12",
                "--seeds",
                "2",
                "--out",
                str(tmp_path),
                "--quiet",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "lsh" in out and "pcah" in out and "12 bits" in out
    with open(tmp_path / "benchmark-digits-hog.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 2 * 2 and {r["features"] for r in rows} == {"hog"}
    document = json.loads((tmp_path / "benchmark-digits-hog.json").read_text())
    assert document["config"]["bits"] == [8, 12] and "mAP" in document["metrics"]
    assert len(document["results"]) == 8


def test_benchmark_name_sets_the_file_names(tmp_path, capsys):
    assert (
        main(
            [
                "benchmark",
                "--dataset",
                "digits",
                "--methods",
                "lsh",
                "--bits",
                "8",
                "--seeds",
                "1",
                "--out",
                str(tmp_path),
                "--name",
                "lsh-only",
                "--quiet",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lsh-only.csv", "lsh-only.json"]


def test_curves_match_the_metrics():
    (row,) = run_benchmark("digits", ["itq"], [8], [0], verbose=False, radius_curve=3)
    pr = row.curves["pr"]
    assert pr["radius"] == list(range(9))
    assert pr["precision"][2] == pytest.approx(row.metrics["P@r2"], abs=1e-12)
    assert pr["recall"][2] == pytest.approx(row.metrics["R@r2"], abs=1e-12)
    assert pr["recall"][-1] == pytest.approx(1.0)  # every item is within radius n_bits
    curve = row.curves["radius"]
    assert curve["radius"] == [0, 1, 2, 3]
    assert all(a <= b for a, b in zip(curve["candidates"], curve["candidates"][1:]))
    assert all(0 <= p <= 1 for p in curve["P@10"]) and min(curve["query_ms"]) > 0


def test_yaml_config_labels_and_tables(tmp_path):
    path = tmp_path / "bench.yaml"
    path.write_text(
        """
dataset: digits
protocol: default
features: pixels
methods:
  - lsh
  - {method: lsh, label: lsh-4-tables, tables: 4}
  - {method: itq, label: itq-20, params: {n_iter: 20}}
bits: [8]
seeds: 1
metrics: {ks: [5], map_at: [10], ndcg_at: [], radius: 1, ties: average}
radius_curve: 0
"""
    )
    config = load_config(path)
    assert [m.label for m in config.methods] == ["lsh", "lsh-4-tables", "itq-20"]
    assert config.methods[2].params == {"n_iter": 20} and config.ties == "average"
    rows = run_config(config, verbose=False)
    assert [r.method for r in rows] == ["lsh", "lsh-4-tables", "itq-20"]
    assert rows[1].tables == 4 and rows[1].hasher == "lsh" and rows[1].n_bits == 8
    assert rows[1].curves["pr"]["radius"] == list(range(33))  # 4 tables x 8 bits
    assert list(rows[0].metrics) == ["mAP", "mAP@10", "P@5", "R@5", "P@r1", "R@r1"]
    # four tables of random hyperplanes rank better than one
    assert rows[1].metrics["mAP@10"] > rows[0].metrics["mAP@10"]
    assert "radius" not in rows[0].curves
    # overrides win over the file
    assert load_config(path, bits=[16], seeds=[3]).bits == (16,)


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("- a list\n", FileFormatError, "mapping"),
        ("dataset: digits\nbits: [8]\n", FileFormatError, "methods"),
        ("dataset: digits\nmethods: [lsh]\nbits: [8]\nties: random\n", InvalidInputError, "ties"),
        ("dataset: digits\nmethods: [lsh]\nbits: [8]\nprotocl: x\n", InvalidInputError, "protocl"),
        (
            "dataset: digits\nmethods: [{method: lsh, tabels: 2}]\nbits: [8]\n",
            InvalidInputError,
            "tabels",
        ),
        ("dataset: digits\nmethods: [lsh, lsh]\nbits: [8]\n", InvalidInputError, "unique"),
        (
            "dataset: digits\nmethods: [lsh]\nbits: [8]\nprotocol: cifar99\n",
            UnknownNameError,
            "cifar99",
        ),
        ("dataset: [unclosed\n", FileFormatError, "YAML"),
        (
            "dataset: digits\nmethods: [{method: lsh, grid: {bogus: [1]}}]\nbits: [8]\n",
            InvalidInputError,
            "no parameter",
        ),
        (
            "dataset: digits\nmethods: [{method: lsh, grid: {center: []}}]\nbits: [8]\n",
            InvalidInputError,
            "non-empty list",
        ),
        (
            "dataset: digits\nmethods: [{method: lsh, tables: 2, grid: {center: [true]}}]\n"
            "bits: [8]\n",
            InvalidInputError,
            "one table",
        ),
        (
            "dataset: digits\nmethods: [{method: lsh, grid: {center: [true]}}]\nbits: [8]\n"
            "select_by: accuracy\n",
            InvalidInputError,
            "selection metric",
        ),
        (
            "dataset: digits\nmethods: [lsh]\nbits: [8]\nmethod_grids: {itq: {n_iter: [1]}}\n",
            InvalidInputError,
            "not among the methods",
        ),
    ],
)
def test_bad_configs(tmp_path, text, error, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(error, match=match):
        load_config(path)


def test_results_document_schema(tmp_path, capsys):
    config = tmp_path / "bench.yaml"
    config.write_text("dataset: digits\nmethods: [lsh]\nbits: [8, 12]\nseeds: 2\nradius_curve: 2\n")
    models = tmp_path / "models"
    args = ["benchmark", "--config", str(config), "--out", str(tmp_path), "--quiet"]
    assert main([*args, "--save-models", str(models)]) == 0
    assert sorted(p.name for p in models.iterdir()) == [
        f"lsh-{b}bits-seed{s}.safetensors" for b in (12, 8) for s in (0, 1)
    ]
    document = json.loads((tmp_path / "benchmark-digits-pixels.json").read_text())
    assert document["schema"] == 2
    assert document["protocol"]["name"] == "default" and set(document["protocol"]["manifest"]) == {
        "0",
        "1",
    }
    assert document["protocol"]["sizes"]["query"] == 180
    assert {"mAP", "mAP@10", "P@10", "NDCG@10", "P@r2", "query_ms", "curves.pr"} <= set(
        document["metrics"]
    )
    assert {"hashlearn", "numpy", "torch"} <= set(document["versions"])
    assert document["timings"]["total_s"] > 0
    first = document["results"][0]
    assert first["model_path"] == str(models / "lsh-8bits-seed0.safetensors")
    assert load_hasher(first["model_path"]).n_bits == 8
    assert first["curves"]["radius"]["radius"] == [0, 1, 2]
    assert len(first["curves"]["pr"]["precision"]) == 9
    with open(tmp_path / "benchmark-digits-pixels.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and float(rows[0]["NDCG@10"]) > 0
    # a CLI flag overrides the file
    assert (
        main(
            [
                "benchmark",
                "--config",
                str(config),
                "--bits",
                "8",
                "--seeds",
                "1",
                "--out",
                str(tmp_path),
                "--name",
                "small",
                "--quiet",
            ]
        )
        == 0
    )
    assert len(json.loads((tmp_path / "small.json").read_text())["results"]) == 1


def test_deep_benchmark_reproduces_exactly_on_cpu():
    kwargs = dict(
        method_params={"dsh": {"epochs": 1, "device": "cpu", "batch_size": 64}},
        verbose=False,
        radius_curve=2,
    )
    first = run_benchmark("digits", ["dsh"], [8], [0], **kwargs)
    again = run_benchmark("digits", ["dsh"], [8], [0], **kwargs)
    assert first[0].metrics == again[0].metrics
    assert first[0].curves["pr"] == again[0].curves["pr"]


def test_a_grid_is_chosen_on_validation_per_seed_and_code_length(tmp_path, capsys):
    from hashlearn import create_hasher, load_dataset
    from hashlearn.evaluation import apply_protocol, evaluate_codes

    path = tmp_path / "bench.yaml"
    path.write_text(
        """
dataset: digits
methods:
  - {method: ksh, label: ksh-tuned, grid: {n_anchors: [20, 200]}, params: {n_labeled: 600}}
bits: [8, 16]
seeds: 2
select_by: P@10
radius_curve: 0
"""
    )
    config = load_config(path)
    assert config.methods[0].grid == {"n_anchors": [20, 200]} and config.select_by == "P@10"
    rows = run_config(config, verbose=False)
    data = load_dataset("digits")
    for row in rows:
        assert [t["params"] for t in row.trials] == [{"n_anchors": 20}, {"n_anchors": 200}]
        best = max(row.trials, key=lambda t: t["score"])
        assert row.chosen == best["params"]
        # the row's test figures are those of the chosen parameters, fitted directly
        split = apply_protocol(data, "default", row.seed)
        hasher = create_hasher(
            "ksh", n_bits=row.n_bits, random_state=row.seed, n_labeled=600, **row.chosen
        ).fit(split.train.X, split.train.y)
        metrics = evaluate_codes(
            hasher.encode(split.query.X),
            split.query.y,
            hasher.encode(split.database.X),
            split.database.y,
            ks=(10,),
            map_at=(),
            radius=None,
        )
        assert row.metrics["P@10"] == pytest.approx(metrics["P@10"], abs=1e-12)
    argv = ["benchmark", "--config", str(path), "--bits", "8", "--seeds", "1", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--name", "grid"]) == 0
    assert "chosen on the validation part by P@10" in capsys.readouterr().out
    with open(tmp_path / "out" / "grid.csv") as handle:
        (row,) = list(csv.DictReader(handle))
    assert json.loads(row["chosen"]) in ({"n_anchors": 20}, {"n_anchors": 200})
    document = json.loads((tmp_path / "out" / "grid.json").read_text())
    assert len(document["results"][0]["trials"]) == 2
    argv = ["benchmark", "--methods", "lsh", "--bits", "8", "--seeds", "1", "--quiet"]
    assert main([*argv, "--grid", "lsh.normalize=false,true", "--out", str(tmp_path)]) == 0
    assert "lsh 8 bits seed 0: normalize=" in capsys.readouterr().out


def test_baselines_are_exact_search_on_the_features(tmp_path):
    from hashlearn.datasets import load_dataset
    from hashlearn.evaluation import apply_protocol, evaluate_features
    from hashlearn.experiments import make_config
    from hashlearn.features import create_features
    from hashlearn.report.results import group_rows, metric_table

    config = make_config(
        "digits", ["lsh"], [8, 16], 1, features="hog", baselines=["cosine"], radius_curve=0
    )
    rows = run_config(config, verbose=False)
    assert [(r.method, r.n_bits) for r in rows] == [
        ("lsh", 8),
        ("lsh", 16),
        ("exact-cosine", 8),
        ("exact-cosine", 16),
    ]
    split = apply_protocol(load_dataset("digits"), "default", 0)
    extractor = create_features("hog").fit(split.train.X)
    expected = evaluate_features(
        extractor.transform(split.query.X),
        split.query.y,
        extractor.transform(split.database.X),
        split.database.y,
        metric="cosine",
        ks=config.ks,
        map_at=config.map_at,
    )
    assert rows[2].metrics == rows[3].metrics == pytest.approx(expected)
    assert rows[2].tables == 0 and rows[2].hasher == "" and rows[2].features == "hog"
    # exact search beats 8-bit LSH, and the report never marks the reference as best
    assert rows[2].metrics["mAP@10"] > rows[0].metrics["mAP@10"]
    document = {"results": [{**r.__dict__} for r in rows]}
    table = metric_table(group_rows(document), "mAP@10")
    assert table.cells[("lsh", 8)].best and not table.cells[("exact-cosine", 8)].best
    with pytest.raises(InvalidInputError, match="unknown baseline"):
        make_config("digits", ["lsh"], [8], 1, baselines=["hamming"])


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"methods": [{"method": "lsh", "grid": {"n_bits": [8, 16]}}]}, "bits and seeds"),
        ({"method_params": {"lsh": {"random_state": 3}}}, "bits and seeds"),
        ({"methods": [{"method": "lsh", "grid": [1, 2]}]}, "must map parameter names"),
        ({"method_grids": ["lsh"]}, "method_grids must map"),
        (
            {"methods": [{"method": "lsh", "grid": {"center": [True]}}], "n_validation": 0},
            "leaves none",
        ),
        ({"baselines": ["cosine"], "ties": "average"}, "use ties: position"),
        (
            {"methods": [{"method": "dsh", "params": {"preset": "papr"}}]},
            r"'dsh' has no preset 'papr'; available: paper",
        ),
        (
            {"methods": ["lsh", {"method": "csq", "grid": {"preset": [None, "authors"]}}]},
            r"'csq' has no preset 'authors'; available: paper",
        ),
    ],
)
def test_configs_that_would_fail_mid_run_fail_first(options, match):
    from hashlearn.experiments import make_config

    methods = options.pop("methods", ["lsh"])
    extra = {k: options.pop(k) for k in ("method_params", "method_grids") if k in options}
    with pytest.raises(InvalidInputError, match=match):
        make_config("digits", methods, [8], 1, **extra, **options)


def test_a_single_baseline_name_is_one_baseline():
    from hashlearn.experiments import make_config

    assert make_config("digits", ["lsh"], [8], 1, baselines="cosine").baselines == ("cosine",)


def test_method_groups_and_method_key_settings():
    from hashlearn.experiments import (
        deep_methods,
        expand_methods,
        method_grids_from,
        method_params_from,
    )
    from hashlearn.hashers import get_hasher_class, list_hashers

    assert expand_methods("all") == list_hashers()
    shallow = expand_methods("shallow")
    assert "lsh" in shallow and "ksh" in shallow and "dsh" not in shallow
    assert shallow == [m for m in list_hashers() if get_hasher_class(m).input_kind == "features"]
    assert expand_methods(" lsh, ,dsh ") == ["lsh", "dsh"] == expand_methods(["lsh", "dsh"])
    assert deep_methods(["lsh", "dsh", "csq"]) == ["dsh", "csq"]
    settings = [("lsh.normalize", False), ("deep.epochs", 3), ("dsh.epochs", 5)]
    assert method_params_from(settings, ["lsh", "dsh", "csq"]) == {
        "lsh": {"normalize": False},
        "dsh": {"epochs": 5},
        "csq": {"epochs": 3},
    }
    assert method_params_from([("deep.epochs", 3)]) == {}  # no methods: no deep ones
    assert method_grids_from([("ksh.n_anchors", [10]), ("ksh.n_anchors", [20, 30])]) == {
        "ksh": {"n_anchors": [10, 20, 30]}
    }
    with pytest.raises(InvalidInputError, match=r"--param takes METHOD.KEY=VALUE, got 'epochs'"):
        method_params_from([("epochs", 3)], what="--param")
    with pytest.raises(InvalidInputError, match=r"a method grid takes METHOD.KEY=V1,V2,\.\.\."):
        method_grids_from([("n_anchors", [1])])


def test_benchmark_config_fills_the_defaults_or_reads_a_file(tmp_path):
    from hashlearn.experiments import benchmark_config, expand_methods

    config = benchmark_config(methods=None, dataset=None, seeds=None, features="hog")
    assert (config.dataset, config.bits, config.seeds) == (
        "mnist5k",
        (8, 12, 16, 32, 64),
        (0, 1, 2),
    )
    assert [m.method for m in config.methods] == expand_methods("shallow")
    assert config.features == "hog"
    config = benchmark_config(
        methods="lsh,dsh", bits=[8], seeds=1, method_params={"dsh": {"epochs": 2}}
    )
    assert [(m.method, m.params) for m in config.methods] == [("lsh", {}), ("dsh", {"epochs": 2})]
    path = tmp_path / "b.yaml"
    path.write_text(
        "dataset: digits\nmethods: [lsh, itq]\nbits: [8]\nmethod_params: {itq: {n_iter: 5}}\n"
    )
    config = benchmark_config(path, bits=[16], radius=None)
    assert (config.dataset, config.bits, config.radius) == ("digits", (16,), 2)
    assert [(m.method, m.params) for m in config.methods] == [("lsh", {}), ("itq", {"n_iter": 5})]
    config = benchmark_config(path, methods=["itq"], method_params={})  # empty: the file's stand
    assert [(m.method, m.params) for m in config.methods] == [("itq", {"n_iter": 5})]
    # a given setting beats the file's, a method entry's own params included
    path.write_text(
        "dataset: digits\nbits: [8]\nmethods:\n  - {method: itq, params: {n_iter: 20}}\n"
        "  - {method: itq, label: itq-b, params: {n_iter: 30}}\n"
    )
    config = benchmark_config(path, method_params={"itq": {"n_iter": 1}})
    assert [(m.label, m.params) for m in config.methods] == [
        ("itq", {"n_iter": 1}),
        ("itq-b", {"n_iter": 1}),
    ]
    assert [m.params for m in benchmark_config(path).methods] == [{"n_iter": 20}, {"n_iter": 30}]


def test_results_are_saved_by_name_and_summarised(tmp_path):
    from hashlearn.experiments import format_benchmark, make_config, results_name, save_results

    config = make_config("digits", ["lsh"], [8], 1, radius_curve=0)
    rows = run_config(config, verbose=False)
    assert results_name(config) == "benchmark-digits-pixels"
    assert results_name(config, "mine") == "mine"
    paths = save_results(rows, config, tmp_path / "out", total_s=1.5)
    assert paths == (
        str(tmp_path / "out" / "benchmark-digits-pixels.csv"),
        str(tmp_path / "out" / "benchmark-digits-pixels.json"),
    )
    assert json.loads((tmp_path / "out" / "benchmark-digits-pixels.json").read_text())[
        "timings"
    ] == {"total_s": 1.5}
    text = format_benchmark(rows, config)
    lines = text.split("\n")
    assert lines[0].startswith("digits, protocol default (manifest ")
    assert lines[0].endswith("pixels features, 1 seed(s); mean ± std over seeds; ties by position")
    assert summarize(rows, "mAP") in text and summarize(rows, "P@10") in text
    assert text.endswith("\n") and "chosen on the validation part" not in text


def test_the_documented_yaml_example_is_a_valid_config(tmp_path):
    # the YAML block of hashlearn.experiments.config's docstring, as a user would copy it
    from hashlearn.experiments import config as config_module

    doc = config_module.__doc__
    start = doc.index("::\n\n") + 4
    block = doc[start : doc.index("\n\n", start)]
    lines = block.splitlines()
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    path = tmp_path / "example.yaml"
    path.write_text("\n".join(line[indent:] for line in lines) + "\n", encoding="utf-8")
    config = load_config(path)
    assert [m.label for m in config.methods] == ["lsh", "lsh-8-tables", "dsh-a0.005", "ksh"]
    dsh = config.methods[2]
    assert dsh.params == {"epochs": 20, "loss_params": {"alpha": 0.005}}
    assert config.bits == (8, 12, 16) and config.seeds == (0, 1, 2)
    # the example's form is the one that works: a loss weight at the top level is refused
    path.write_text(
        "dataset: mnist5k\nmethods: [{method: dsh, params: {alpha: 0.005}}]\nbits: [12]\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidInputError, match=r"no parameter.*alpha.*loss_params"):
        load_config(path)


def test_precision_convention_reaches_the_rows_and_curves_stop_at_the_code_length(tmp_path):
    from hashlearn.experiments import make_config, metric_definitions

    rows = {
        conv: run_benchmark(
            "digits",
            ["lsh"],
            [12],
            [0],
            features="pixels",
            verbose=False,
            precision_convention=conv,
            radius_curve=0,
        )[0]
        for conv in ("per-query", "pooled")
    }
    for row in rows.values():
        assert row.curves["pr"]["radius"] == list(range(13))  # 12 bits: radii 0 .. 12
    # every item lies within radius 12: both conventions give the share of relevant pairs
    assert rows["pooled"].curves["pr"]["precision"][-1] == pytest.approx(
        rows["per-query"].curves["pr"]["precision"][-1]
    )
    assert "pooled" in metric_definitions((), (), (), 2, "position", "pooled")["P@r2"]
    with pytest.raises(InvalidInputError, match="precision_convention must be one of"):
        make_config("digits", ["lsh"], [8], 1, precision_convention="weiss")
