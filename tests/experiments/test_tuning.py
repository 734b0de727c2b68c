"""Hyper-parameter selection: chosen on validation against train, tested once on the queries."""

import json

import numpy as np
import pytest

import hashlearn.experiments.tuning
from hashlearn import create_hasher, load_dataset, load_hasher
from hashlearn.evaluation import apply_protocol, evaluate_codes
from hashlearn.exceptions import InvalidInputError, UnknownNameError
from hashlearn.experiments import metric_cutoffs, parameter_grid, tune
from hashlearn.hashers import FeatureHasher


def test_parameter_grid_is_every_combination_in_order():
    assert parameter_grid({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
    ]
    for bad in ({}, {"a": []}, {"a": 3}, [("a", [1])]):
        with pytest.raises(InvalidInputError):
            parameter_grid(bad)


def test_selection_metrics_map_to_cutoffs():
    assert metric_cutoffs("mAP") == {"map_at": (), "ks": (), "ndcg_at": ()}
    assert metric_cutoffs("mAP@5") == {"map_at": (5,), "ks": (), "ndcg_at": ()}
    assert metric_cutoffs("P@20") == {"map_at": (), "ks": (20,), "ndcg_at": ()}
    assert metric_cutoffs("NDCG@3") == {"map_at": (), "ks": (), "ndcg_at": (3,)}
    for bad in ("map", "P@0", "P@", "accuracy", 10):
        with pytest.raises(InvalidInputError, match=r"selection metric|must be >= 1"):
            metric_cutoffs(bad)


def test_the_choice_is_made_on_validation_and_tested_once(monkeypatch):
    result = tune("digits", "itq", 12, {"n_iter": [0, 1, 50]}, metric="P@10", verbose=False)
    split = apply_protocol(load_dataset("digits"), "default", 0)
    for trial in result.trials:  # each score: validation queries against the train part
        hasher = create_hasher("itq", n_bits=12, random_state=0, **trial.params)
        hasher.fit(split.train.X, split.train.y)
        expected = evaluate_codes(
            hasher.encode(split.validation.X),
            split.validation.y,
            hasher.encode(split.train.X),
            split.train.y,
            ks=(10,),
            map_at=(),
            radius=None,
        )["P@10"]
        assert trial.score == pytest.approx(expected, abs=1e-12)
    scores = [t.score for t in result.trials]
    assert result.best is result.trials[int(np.argmax(scores))]
    assert [t.params for t in result.trials] == [{"n_iter": n} for n in (0, 1, 50)]
    test = evaluate_codes(
        result.model.encode(split.query.X),
        split.query.y,
        result.model.encode(split.database.X),
        split.database.y,
        ks=(10,),
        map_at=(10,),
        radius=None,
    )
    assert result.test == pytest.approx(test)
    assert result.manifest == split.manifest and result.sizes == split.sizes()
    assert "P@10" in result.definitions and "chosen" in result.table()


def test_the_queries_play_no_part_in_the_choice(monkeypatch):
    """Scramble the query labels: the trials and the choice stay the same, only the test moves."""
    real = hashlearn.experiments.tuning.apply_protocol

    def scrambled(*args, **kwargs):
        split = real(*args, **kwargs)
        split.query.y[:] = np.random.default_rng(1).permutation(split.query.y)
        return split

    grid = {"normalize": [False, True]}
    honest = tune("digits", "lsh", 16, grid, verbose=False)
    monkeypatch.setattr(hashlearn.experiments.tuning, "apply_protocol", scrambled)
    blind = tune("digits", "lsh", 16, grid, verbose=False)
    assert [t.score for t in blind.trials] == [t.score for t in honest.trials]
    assert blind.best.params == honest.best.params
    assert blind.test["mAP"] < honest.test["mAP"]


def test_shallow_methods_on_features_come_back_with_their_extractor():
    result = tune("digits", "lsh", 8, {"center": [True]}, features="hog", verbose=False)
    assert isinstance(result.model, FeatureHasher) and result.model.image_shape_ == (8, 8, 1)
    assert result.features == "hog"


def test_deep_methods_pick_their_epoch_on_the_same_validation_part():
    result = tune(
        "digits",
        "dsh",
        8,
        {"lr": [1e-3, 1e-2]},
        params={"epochs": 2, "batch_size": 128},
        verbose=False,
    )
    assert len(result.trials) == 2 and result.features == "images"
    assert result.model.best_epoch_ in (1, 2)


def test_bad_requests_are_refused_before_fitting():
    with pytest.raises(InvalidInputError, match=r"has no parameter.*bogus"):
        tune("digits", "lsh", 8, {"bogus": [1]}, verbose=False)
    with pytest.raises(InvalidInputError, match=r"has no parameter.*nope"):
        tune("digits", "lsh", 8, {"center": [True]}, params={"nope": 1}, verbose=False)
    with pytest.raises(InvalidInputError, match="no validation part"):
        tune("digits", "lsh", 8, {"center": [True]}, n_validation=0, verbose=False)
    with pytest.raises(UnknownNameError):
        tune("digits", "nope", 8, {"center": [True]}, verbose=False)
    with pytest.raises(InvalidInputError, match="selection metric"):
        tune("digits", "lsh", 8, {"center": [True]}, metric="accuracy", verbose=False)


def test_cli_tune_prints_writes_and_saves(tmp_path, capsys):
    from hashlearn.cli import main

    out, model = tmp_path / "tune.json", tmp_path / "best.safetensors"
    argv = ["tune", "--dataset", "digits", "--method", "agh", "--bits", "12", "--quiet"]
    argv += ["--grid", "n_anchors=[50, 100]", "--select-by", "mAP@10"]
    assert main([*argv, "--out", str(out), "--save-model", str(model)]) == 0
    printed = capsys.readouterr().out
    assert "<- chosen" in printed and "queries against the database" in printed
    saved = json.loads(out.read_text())
    assert [t["params"] for t in saved["trials"]] == [{"n_anchors": 50}, {"n_anchors": 100}]
    assert saved["metric"] == "mAP@10" and "validation" in saved["selection"]
    best = max(saved["trials"], key=lambda t: t["score"])
    assert saved["best"]["params"] == best["params"]
    assert load_hasher(model).get_params()["n_anchors"] == best["params"]["n_anchors"]
    assert main([*argv[:-4], "--grid", "bogus=1,2"]) == 2
    assert "has no parameter" in capsys.readouterr().err
