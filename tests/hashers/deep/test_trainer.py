"""The deep-hashing trainer: reproducibility, resume, early stopping, validation, schedules, logs."""

import csv
import json
import math
import pathlib
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from hashlearn import create_hasher, load_hasher
from hashlearn.datasets.split import stratified_sample
from hashlearn.evaluation import evaluate_codes
from hashlearn.exceptions import (
    FileFormatError,
    HashlearnError,
    InvalidInputError,
    UnknownNameError,
)
from hashlearn.hashers.deep.backbones import create_backbone
from hashlearn.hashers.deep.losses import DSHLoss
from hashlearn.hashers.deep.methods import DSH
from hashlearn.hashers.deep.trainer import (
    LOG_COLUMNS,
    ArrayDataset,
    Trainer,
    TrainerConfig,
    augment_batch,
    carve_validation,
    scheduled_lr,
    swa_start,
    validation_map,
)
from hashlearn.hashers.deep.trainer import run as trainer_module
from hashlearn.hashers.deep.trainer.checkpoint import run_fingerprint
from hashlearn.hashers.deep.trainer.early_stopping import resolve_early_stopping

FAST = {"n_bits": 8, "epochs": 2, "batch_size": 64, "verbose": False, "device": "cpu"}


@pytest.fixture(scope="module")
def parts(digits_small):
    """Disjoint train (200) / validation (60) / query (40) parts of the 300 digits."""
    X, y = digits_small
    order = np.random.default_rng(1).permutation(len(X))
    train, val, query = order[:200], order[200:260], order[260:]
    return (X[train], y[train]), (X[val], y[val]), (X[query], y[query])


class Spy(nn.Module):
    """Wraps a network; records every input it sees (and in which mode), and can crash on its
    ``crash_at``-th training forward pass, to simulate an interrupted run."""

    def __init__(self, inner: nn.Module, crash_at: int | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.crash_at = crash_at
        self.seen: list[tuple[bool, np.ndarray]] = []
        self.training_calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            self.training_calls += 1
            if self.training_calls == self.crash_at:
                raise RuntimeError("simulated crash")
        self.seen.append((self.training, x.detach().cpu().numpy().copy()))
        return self.inner(x)


class StatefulDSH(DSHLoss):
    """DSH plus every kind of loss state: a buffer written in forward, a buffer drawn from the
    setup generator and redrawn at each epoch end, and extra (non-tensor) state."""

    def __init__(self) -> None:
        super().__init__(margin=16.0)
        self.register_buffer("seen", None)
        self.register_buffer("shift", None)
        self.epochs_done = 0

    def setup(self, n_train, n_bits, labels, generator):
        self.generator = generator
        self.seen = torch.zeros(n_train)
        self.shift = torch.rand(n_bits, generator=generator)

    def forward(self, outputs, labels, indices):
        if self.training:
            self.seen[indices] += 1
        return super().forward(outputs + 0.01 * self.shift, labels, indices)

    def on_epoch_end(self, epoch):
        self.shift = torch.rand(self.shift.shape, generator=self.generator)
        self.epochs_done += 1

    def get_extra_state(self):
        return {"epochs_done": self.epochs_done}

    def set_extra_state(self, state):
        self.epochs_done = state["epochs_done"]


def small_net(seed: int = 0) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_backbone("small-cnn", (1, 8, 8), 8)


def state_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a
    )


def without_timing(history):
    return [
        {k: v for k, v in row.items() if k not in ("seconds", "images_per_s")} for row in history
    ]


def rows(array: np.ndarray) -> set[bytes]:
    return {np.ascontiguousarray(row).tobytes() for row in array}


# -- reproducibility and resume -----------------------------------------------------------------


def test_same_seed_gives_identical_codes_and_history(parts):
    (X, y), (Xv, yv), (Xq, _) = parts
    params = {**FAST, "epochs": 3, "augment": True, "lr_schedule": "cosine", "random_state": 4}
    first = create_hasher("dsh", **params).fit(X, y, X_val=Xv, y_val=yv)
    second = create_hasher("dsh", **params).fit(X, y, X_val=Xv, y_val=yv)
    np.testing.assert_array_equal(first.encode(Xq), second.encode(Xq))
    assert without_timing(first.history_) == without_timing(second.history_)
    other = create_hasher("dsh", **{**params, "random_state": 5}).fit(X, y, X_val=Xv, y_val=yv)
    assert not np.array_equal(first.transform(Xq), other.transform(Xq))


def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(parts, tmp_path):
    (X, y), (Xv, yv), _ = parts
    config = {"epochs": 4, "batch_size": 64, "random_state": 3, "augment": True, "device": "cpu"}
    train, val = (X, y), (Xv, yv)

    reference, reference_loss = Spy(small_net()), StatefulDSH()
    expected = Trainer(TrainerConfig(**config)).fit(reference, reference_loss, train, val)

    # 200 images in batches of 64: 4 batches per epoch; the 10th forward pass is in epoch 3.
    crashed = Spy(small_net(), crash_at=10)
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(TrainerConfig(**config, checkpoint_dir=tmp_path)).fit(
            crashed, StatefulDSH(), train, val
        )
    document = json.loads((tmp_path / "checkpoint.json").read_text())
    assert document["epoch"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint-epoch00002.safetensors",
        "checkpoint.json",
    ]

    resumed, resumed_loss = Spy(small_net(seed=99)), StatefulDSH()  # weights come from the file
    result = Trainer(TrainerConfig(**config, checkpoint_dir=tmp_path, resume=True)).fit(
        resumed, resumed_loss, train, val
    )
    assert result.resumed_from == 2
    assert state_equal(resumed.state_dict(), reference.state_dict())
    assert state_equal(resumed_loss.state_dict(), reference_loss.state_dict())
    assert resumed_loss.epochs_done == reference_loss.epochs_done == 4
    assert without_timing(result.history) == without_timing(expected.history)
    assert result.best_epoch == expected.best_epoch

    # resuming a finished run trains nothing and returns the same network
    again = Spy(small_net(seed=7))
    Trainer(TrainerConfig(**config, checkpoint_dir=tmp_path, resume=True)).fit(
        again, StatefulDSH(), train, val
    )
    assert again.training_calls == 0
    assert state_equal(again.state_dict(), reference.state_dict())


def test_checkpoint_of_another_run_or_damaged_is_refused(parts, tmp_path):
    (X, y), _, _ = parts
    config = {"epochs": 1, "batch_size": 64, "random_state": 0, "device": "cpu"}
    Trainer(TrainerConfig(**config, checkpoint_dir=tmp_path)).fit(
        small_net(), DSHLoss(16.0), (X, y)
    )
    with pytest.raises(InvalidInputError, match=r"different run; lr: checkpoint 0.001, now 0.01"):
        Trainer(TrainerConfig(**config, lr=0.01, checkpoint_dir=tmp_path, resume=True)).fit(
            small_net(), DSHLoss(16.0), (X, y)
        )
    tensors = next(tmp_path.glob("*.safetensors"))
    data = bytearray(tensors.read_bytes())
    data[-3] ^= 0xFF
    tensors.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="SHA-256"):
        Trainer(TrainerConfig(**config, checkpoint_dir=tmp_path, resume=True)).fit(
            small_net(), DSHLoss(16.0), (X, y)
        )


def test_hasher_resume_and_save_load_keep_the_history(parts, tmp_path):
    (X, y), (Xv, yv), (Xq, _) = parts
    params = {**FAST, "random_state": 0, "checkpoint_dir": tmp_path / "ckpt"}
    hasher = DSH(**params).fit(X, y, X_val=Xv, y_val=yv)
    resumed = DSH(**params).fit(X, y, X_val=Xv, y_val=yv, resume=True)
    np.testing.assert_array_equal(resumed.encode(Xq), hasher.encode(Xq))
    assert resumed.history_ == hasher.history_  # read back from the checkpoint, timings included
    hasher.save(tmp_path / "model.safetensors")
    loaded = load_hasher(tmp_path / "model.safetensors")
    assert loaded.history_ == hasher.history_ and loaded.best_epoch_ == hasher.best_epoch_
    assert loaded.loss_history_ == hasher.loss_history_
    assert loaded.get_params()["checkpoint_dir"] == str(tmp_path / "ckpt")
    # without a seed, a resumed run takes the seed of the checkpoint
    unseeded = {**params, "random_state": None, "checkpoint_dir": tmp_path / "unseeded"}
    first = DSH(**unseeded).fit(X, y)
    np.testing.assert_array_equal(
        DSH(**unseeded).fit(X, y, resume=True).encode(Xq), first.encode(Xq)
    )


def test_training_leaves_global_random_state_alone(parts):
    (X, y), (Xv, yv), _ = parts
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    config = TrainerConfig(epochs=1, batch_size=64, augment=True, random_state=0, device="cpu")
    Trainer(config).fit(small_net(), DSHLoss(16.0), (X, y), (Xv, yv))
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())


# -- validation and early stopping --------------------------------------------------------------


def test_early_stopping_stops_and_restores_the_best_epoch(parts, monkeypatch):
    (X, y), (Xv, yv), _ = parts
    scores = iter([0.2, 0.6, 0.5, 0.4, 0.9, 0.9])
    monkeypatch.setattr(trainer_module, "validation_map", lambda codes, labels: next(scores))
    config = {"epochs": 6, "batch_size": 64, "random_state": 0, "device": "cpu"}
    network = small_net()
    result = Trainer(TrainerConfig(**config, patience=2)).fit(
        network, DSHLoss(16.0), (X, y), (Xv, yv)
    )
    assert [row["val_mAP"] for row in result.history] == [0.2, 0.6, 0.5, 0.4]
    assert result.stopped_early and result.best_epoch == 2 and result.best_val_map == 0.6
    # the network holds the weights after epoch 2: those of a 2-epoch run
    two_epochs = small_net()
    Trainer(TrainerConfig(**{**config, "epochs": 2})).fit(two_epochs, DSHLoss(16.0), (X, y))
    assert state_equal(network.state_dict(), two_epochs.state_dict())


def test_validation_map_is_leave_one_out_within_the_validation_set():
    rng = np.random.default_rng(0)
    codes = np.packbits(rng.random((40, 5)) < 0.5, axis=1, bitorder="little")  # many ties
    labels = rng.integers(0, 4, 40)
    expected = np.mean(
        [
            evaluate_codes(
                codes[i : i + 1],
                labels[i : i + 1],
                np.delete(codes, i, axis=0),
                np.delete(labels, i),
                ks=None,
                map_at=None,
                radius=None,
            )["mAP"]
            for i in range(len(codes))
        ]
    )
    assert validation_map(codes, labels) == pytest.approx(expected, abs=1e-12)
    assert validation_map(codes, labels, chunk_size=7) == pytest.approx(expected, abs=1e-12)
    multi = rng.random((40, 3)) < 0.4
    expected = np.mean(
        [
            evaluate_codes(
                codes[i : i + 1], multi[i : i + 1], np.delete(codes, i, axis=0),
                np.delete(multi, i, axis=0), ks=None, map_at=None, radius=None,
            )["mAP"]
            for i in range(len(codes))
        ]
    )  # fmt: skip
    assert validation_map(codes, multi) == pytest.approx(expected, abs=1e-12)


def test_reported_validation_map_is_that_of_the_kept_network_on_validation_data(parts):
    (X, y), (Xv, yv), _ = parts
    hasher = DSH(**{**FAST, "epochs": 4}, random_state=0).fit(X, y, X_val=Xv, y_val=yv)
    best = hasher.history_[hasher.best_epoch_ - 1]["val_mAP"]
    assert best == max(row["val_mAP"] for row in hasher.history_)
    assert validation_map(hasher.encode(Xv), yv) == pytest.approx(best, abs=1e-12)


# -- stochastic weight averaging -----------------------------------------------------------------


def test_swa_start_is_the_first_of_the_last_epochs():
    assert swa_start(0.0, 50) is None
    assert swa_start(0.5, 50) == 26  # epochs 26..50: the last 25
    assert swa_start(0.3, 10) == 8  # 3 epochs, not 4 from 0.3 * 10 = 3.0000000000000004
    assert swa_start(1.0, 4) == 1
    assert swa_start(1e-6, 50) == 50  # at least the last epoch


def test_weight_averaging_ends_on_the_mean_of_the_last_epochs(parts):
    (X, y), _, _ = parts
    config = {"batch_size": 64, "random_state": 2, "device": "cpu", "lr": 3e-3}

    def trained(epochs: int, swa: float = 0.0) -> tuple[nn.Module, object]:
        network = small_net()
        result = Trainer(TrainerConfig(**config, epochs=epochs, swa=swa)).fit(
            network, DSHLoss(16.0), (X, y)
        )
        return network, result

    # a constant rate: a 3-epoch run is the first 3 epochs of a 4-epoch one
    after = {e: trained(e)[0].state_dict() for e in (2, 3, 4)}
    averaged, result = trained(4, swa=0.75)  # epochs 2, 3 and 4
    assert result.averaged_epochs == 3 and result.best_epoch == 4
    for key, value in averaged.state_dict().items():
        expected = (after[2][key] + after[3][key] + after[4][key]) / 3
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-6)
    assert not torch.equal(averaged.state_dict()["head.2.weight"], after[4]["head.2.weight"])
    last, result = trained(4, swa=0.1)  # ceil(0.4) = 1 epoch: the last one's weights
    assert result.averaged_epochs == 1
    assert state_equal(last.state_dict(), after[4])


def test_weight_averaging_is_validated_and_kept_as_the_best_epoch(parts):
    (X, y), (Xv, yv), _ = parts
    hasher = DSH(**{**FAST, "epochs": 4, "swa": 1.0}, random_state=0).fit(X, y, X_val=Xv, y_val=yv)
    best = hasher.history_[hasher.best_epoch_ - 1]["val_mAP"]
    assert best == max(row["val_mAP"] for row in hasher.history_)
    # the network holds the average of epochs 1..best, the weights that were validated
    assert validation_map(hasher.encode(Xv), yv) == pytest.approx(best, abs=1e-12)


def test_resumed_weight_averaging_is_bit_identical(parts, tmp_path):
    (X, y), _, _ = parts
    config = {"epochs": 4, "batch_size": 64, "random_state": 3, "device": "cpu", "swa": 0.75}
    reference = Spy(small_net())
    Trainer(TrainerConfig(**config)).fit(reference, DSHLoss(16.0), (X, y))
    # 4 batches per epoch: the 14th forward pass is in epoch 4, after 2 epochs averaged
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(TrainerConfig(**config, checkpoint_dir=tmp_path)).fit(
            Spy(small_net(), crash_at=14), DSHLoss(16.0), (X, y)
        )
    document = json.loads((tmp_path / "checkpoint.json").read_text())
    held = load_file(tmp_path / document["tensors_file"])
    assert document["epoch"] == 3 and any(key.startswith("average.") for key in held)
    resumed = Spy(small_net(seed=5))
    Trainer(TrainerConfig(**config, checkpoint_dir=tmp_path, resume=True)).fit(
        resumed, DSHLoss(16.0), (X, y)
    )
    assert state_equal(resumed.state_dict(), reference.state_dict())
    # a checkpoint of the same run without averaging is another run
    with pytest.raises(InvalidInputError, match=r"different run; swa: checkpoint 0\.75, now None"):
        Trainer(TrainerConfig(**{**config, "swa": 0.0}, checkpoint_dir=tmp_path, resume=True)).fit(
            Spy(small_net()), DSHLoss(16.0), (X, y)
        )


def test_fingerprint_without_averaging_is_that_of_earlier_versions(parts):
    (X, y), _, _ = parts
    train = ArrayDataset(X, y)
    common = dict(seed=0, padding=1, n_bits=8, train=train, validation=None)
    plain = run_fingerprint(TrainerConfig(), network=small_net(), loss=DSHLoss(16.0), **common)
    assert "swa" not in plain  # checkpoints written before weight averaging still resume
    averaged = run_fingerprint(
        TrainerConfig(swa=0.5), network=small_net(), loss=DSHLoss(16.0), **common
    )
    assert averaged["swa"] == 0.5


def test_training_sees_only_the_arrays_passed_to_fit(parts):
    (X, y), (Xv, yv), (Xq, _) = parts

    class SpyDSH(DSH):
        def _build_network(self, image_shape):
            return Spy(super()._build_network(image_shape))

    hasher = SpyDSH(**FAST, random_state=0).fit(X, y, X_val=Xv, y_val=yv)
    spy = hasher.net_
    train_rows = rows(hasher._to_tensor(X[..., None]).numpy())
    val_rows = rows(hasher._to_tensor(Xv[..., None]).numpy())
    query_rows = rows(hasher._to_tensor(Xq[..., None]).numpy())
    fed_in_training = set().union(*(rows(x) for training, x in spy.seen if training))
    fed_in_eval = set().union(*(rows(x) for training, x in spy.seen if not training))
    assert fed_in_training == train_rows  # every training image, nothing else
    assert val_rows <= fed_in_eval <= train_rows | val_rows  # validation encoded (+ one probe)
    assert not query_rows & (fed_in_training | fed_in_eval)


# -- early stopping without given validation data ------------------------------------------------


def test_carved_validation_is_stratified_disjoint_and_seeded():
    y = np.repeat([0, 1, 2], [50, 30, 20])  # 100 labels
    train, val = carve_validation(y, 0.1, seed=4)
    # 10 validation items, each class its exact share: 5, 3, 2
    assert np.bincount(y[val]).tolist() == [5, 3, 2]
    assert np.bincount(y[train]).tolist() == [45, 27, 18]
    assert not set(train) & set(val) and sorted([*train, *val]) == list(range(100))
    assert list(val) == sorted(val) and val.dtype == train.dtype == np.int64
    # what the docstring promises: stratified_sample with numpy's default_rng(seed)
    expected = np.sort(stratified_sample(np.random.default_rng(4), np.arange(100), y, 10))
    np.testing.assert_array_equal(val, expected)
    np.testing.assert_array_equal(carve_validation(y, 0.1, seed=4)[1], val)
    assert not np.array_equal(carve_validation(y, 0.1, seed=5)[1], val)
    # at least 2 validation items; at least 2 left to train on
    assert len(carve_validation(y[:10], 0.01, seed=0)[1]) == 2
    with pytest.raises(InvalidInputError, match="leaves 1 to train on"):
        carve_validation(y[:3], 0.5, seed=0)
    multi = np.eye(3)[y]  # indicators: a uniform draw of 10 rows
    assert len(carve_validation(multi, 0.1, seed=4)[1]) == 10


def test_auto_early_stopping_needs_1000_labelled_images():
    assert resolve_early_stopping("auto", 999, labelled=True) is False
    assert resolve_early_stopping("auto", 1000, labelled=True) is True
    assert resolve_early_stopping("auto", 10_000, labelled=False) is False  # no label, no mAP
    assert resolve_early_stopping(True, 10, labelled=True) is True
    assert resolve_early_stopping(False, 10_000, labelled=True) is False
    with pytest.raises(InvalidInputError, match="early_stopping=True needs labels"):
        resolve_early_stopping(True, 10_000, labelled=False)
    with pytest.raises(InvalidInputError, match="must be True, False or 'auto', got 'on'"):
        resolve_early_stopping("on", 10_000, labelled=True)


def test_early_stopping_trains_on_the_rest_and_keeps_the_best_validation_epoch(
    digits_small, monkeypatch
):
    X, y = digits_small  # 300 digits, 30 per class
    scores = iter([0.2, 0.6, 0.5, 0.4, 0.3, 0.3, 0.3, 0.9])
    monkeypatch.setattr(trainer_module, "validation_map", lambda codes, labels: next(scores))

    class SpyDSH(DSH):
        def _build_network(self, image_shape):
            return Spy(super()._build_network(image_shape))

    params = {**FAST, "epochs": 8, "random_state": 3}
    hasher = SpyDSH(**params, early_stopping=True).fit(X, y)
    train, val = carve_validation(y, 0.1, seed=3)
    assert np.bincount(y[val]).tolist() == [3] * 10  # stratified: 3 of each digit
    # patience 5 by default: 5 epochs without beating epoch 2's 0.6 stop the run after epoch 7
    assert [row["val_mAP"] for row in hasher.history_] == [0.2, 0.6, 0.5, 0.4, 0.3, 0.3, 0.3]
    assert hasher.best_epoch_ == 2 and hasher.best_val_map_ == 0.6
    assert hasher.early_stopping_ is True
    assert hasher.validation_ == {
        "source": "split",
        "n_train": 270,
        "n_validation": 30,
        "fraction": 0.1,
        "seed": 3,
        "patience": 5,
        "stopped_early": True,
    }
    # trained on the 270 other digits only; the 30 carved ones were only encoded
    fed_in_training = set().union(*(rows(x) for training, x in hasher.net_.seen if training))
    fed_in_eval = set().union(*(rows(x) for training, x in hasher.net_.seen if not training))
    assert fed_in_training == rows(hasher._to_tensor(X[train][..., None]).numpy())
    assert rows(hasher._to_tensor(X[val][..., None]).numpy()) <= fed_in_eval
    # the same as training on the carved parts given explicitly, with patience 5
    scores = iter([0.2, 0.6, 0.5, 0.4, 0.3, 0.3, 0.3, 0.9])
    explicit = DSH(**params, patience=5).fit(X[train], y[train], X_val=X[val], y_val=y[val])
    np.testing.assert_array_equal(hasher.transform(X), explicit.transform(X))
    assert explicit.validation_["source"] == "X_val" and explicit.early_stopping_ is False


def test_auto_is_off_for_small_data_and_explicit_validation_keeps_all_epochs(parts):
    (X, y), (Xv, yv), _ = parts
    plain = DSH(**FAST, random_state=0).fit(X, y)  # 200 images: "auto" leaves it off
    assert plain.early_stopping_ is False and plain.best_val_map_ is None
    assert plain.validation_ == {
        "source": "none",
        "n_train": 200,
        "n_validation": 0,
        "fraction": None,
        "seed": None,
        "patience": None,
        "stopped_early": False,
    }
    assert plain.best_epoch_ == 2 and [row["val_mAP"] for row in plain.history_] == [None] * 2
    assert np.array_equal(
        DSH(**FAST, random_state=0, early_stopping=False).fit(X, y).transform(X), plain.transform(X)
    )
    given = DSH(**{**FAST, "epochs": 3}, random_state=0).fit(X, y, X_val=Xv, y_val=yv)
    assert len(given.history_) == 3  # no default patience with X_val, as before
    assert given.validation_["n_validation"] == 60 and given.validation_["patience"] is None
    assert given.best_val_map_ == given.history_[given.best_epoch_ - 1]["val_mAP"]


def test_early_stopping_record_is_saved_and_older_models_load(digits_small, tmp_path):
    X, y = digits_small
    hasher = DSH(**FAST, random_state=1, early_stopping=True, validation_fraction=0.2).fit(X, y)
    assert hasher.validation_["n_validation"] == 60 and hasher.validation_["fraction"] == 0.2
    hasher.save(tmp_path / "model.safetensors")
    loaded = load_hasher(tmp_path / "model.safetensors")
    assert loaded.validation_ == hasher.validation_
    assert loaded.early_stopping_ is True and loaded.best_epoch_ == hasher.best_epoch_
    assert loaded.best_val_map_ == hasher.best_val_map_ is not None
    assert loaded.get_params()["early_stopping"] is True
    fixture = pathlib.Path(__file__).parents[2] / "fixtures" / "v0_1_0" / "dsh12.safetensors"
    old = load_hasher(fixture)  # written by 0.1.0: nothing recorded, nothing carved
    assert old.validation_ is None and old.early_stopping_ is False and old.best_val_map_ is None
    assert old.get_params()["early_stopping"] is False


def test_bad_early_stopping_parameters_are_rejected(parts):
    (X, y), _, _ = parts
    with pytest.raises(InvalidInputError, match=r"validation_fraction must be in \(0, 1\)"):
        DSH(**FAST, validation_fraction=1.0).fit(X, y)
    with pytest.raises(InvalidInputError, match="early_stopping must be True, False or 'auto'"):
        DSH(**FAST, early_stopping="yes").fit(X, y)
    with pytest.raises(InvalidInputError, match=r"or early_stopping=True .* X has 200\)"):
        DSH(**FAST, patience=3).fit(X, y)


# -- schedules, logs, augmentation ----------------------------------------------------------------


def test_lr_schedules_give_the_expected_sequence(parts):
    lr = 1e-3
    assert [scheduled_lr("constant", lr, e, 5) for e in range(5)] == [lr] * 5
    assert [scheduled_lr("step", lr, e, 5, step_size=2, gamma=0.5) for e in range(5)] == [
        lr, lr, lr / 2, lr / 2, lr / 4
    ]  # fmt: skip
    assert [scheduled_lr("step", lr, e, 6, gamma=0.1) for e in range(6)] == pytest.approx(
        [lr, lr, lr / 10, lr / 10, lr / 100, lr / 100]
    )
    assert [scheduled_lr("cosine", lr, e, 4) for e in range(4)] == pytest.approx(
        [lr, lr * (1 + math.sqrt(0.5)) / 2, lr / 2, lr * (1 - math.sqrt(0.5)) / 2]
    )
    with pytest.raises(UnknownNameError, match="unknown lr_schedule 'linear'"):
        scheduled_lr("linear", lr, 0, 5)

    (X, y), _, _ = parts
    base = {"epochs": 3, "batch_size": 64, "random_state": 0, "device": "cpu"}
    result = Trainer(TrainerConfig(**base, lr_schedule="step", lr_step_size=1, lr_gamma=1e-9)).fit(
        decayed := small_net(), DSHLoss(16.0), (X, y)
    )
    assert [row["lr"] for row in result.history] == pytest.approx([1e-3, 1e-12, 1e-21])
    # the optimizer really uses it: after epoch 1 the weights hardly move any more
    one_epoch = small_net()
    Trainer(TrainerConfig(**{**base, "epochs": 1})).fit(one_epoch, DSHLoss(16.0), (X, y))
    for key, value in one_epoch.state_dict().items():
        torch.testing.assert_close(decayed.state_dict()[key], value, rtol=0, atol=1e-7)


def test_csv_log_is_written_atomically_with_the_history(parts, tmp_path, monkeypatch):
    (X, y), (Xv, yv), _ = parts
    written = []
    original = trainer_module.atomic_write

    def recording_atomic_write(path):
        written.append(str(path))
        return original(path)

    monkeypatch.setattr(trainer_module, "atomic_write", recording_atomic_write)
    path = tmp_path / "log.csv"
    hasher = DSH(**{**FAST, "epochs": 3}, random_state=0, log_csv=path).fit(
        X, y, X_val=Xv, y_val=yv
    )
    assert written == [str(path)] * 3  # rewritten through atomic_write after every epoch
    assert [p.name for p in tmp_path.iterdir()] == ["log.csv"]  # no temporary file left
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == LOG_COLUMNS
        logged = list(reader)
    assert [int(row["epoch"]) for row in logged] == [1, 2, 3]
    for row, expected in zip(logged, hasher.history_):
        for key in LOG_COLUMNS[1:]:
            assert float(row[key]) == expected[key]  # repr round-trips floats exactly
    DSH(**FAST, random_state=0, log_csv=path).fit(X, y)
    with open(path, newline="") as handle:
        assert [row["val_mAP"] for row in csv.DictReader(handle)] == ["", ""]


def test_tensorboard_event_files_hold_the_history_and_bit_balance(parts, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from hashlearn.codes import unpack_bits

    (X, y), (Xv, yv), _ = parts
    hasher = DSH(**{**FAST, "epochs": 3}, random_state=0, log_dir=tmp_path / "tb")
    hasher.fit(X, y, X_val=Xv, y_val=yv)
    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    assert set(events.Tags()["scalars"]) == {
        "train/loss",
        "train/lr",
        "train/images_per_s",
        "train/seconds",
        "validation/mAP",
        "codes/bit_imbalance",
    }
    assert events.Tags()["histograms"] == ["codes/bit_means"]

    def logged(tag):
        return [(e.step, e.value) for e in events.Scalars(tag)]

    for tag, column in [("train/loss", "loss"), ("train/lr", "lr"), ("validation/mAP", "val_mAP")]:
        expected = [(row["epoch"], pytest.approx(row[column], rel=1e-6)) for row in hasher.history_]
        assert logged(tag) == expected  # float32 in the event file
    # the bit balance of the kept epoch is that of the validation codes of the kept network
    shares = unpack_bits(hasher.encode(Xv), 8).mean(axis=0)  # hand: share of 1s per bit
    imbalance = dict(logged("codes/bit_imbalance"))[hasher.best_epoch_]
    assert imbalance == pytest.approx(np.abs(shares - 0.5).mean(), abs=1e-6)
    assert 0 <= imbalance <= 0.5

    # without validation data: the balance of the training outputs, still in [0, 1/2]
    DSH(**FAST, random_state=0, log_dir=tmp_path / "plain").fit(X, y)
    plain = EventAccumulator(str(tmp_path / "plain")).Reload()
    assert "validation/mAP" not in plain.Tags()["scalars"]
    assert [e.step for e in plain.Scalars("codes/bit_imbalance")] == [1, 2]
    assert all(0 <= e.value <= 0.5 for e in plain.Scalars("codes/bit_imbalance"))


def test_fit_command_writes_tensorboard_logs_of_deep_methods_only(parts, tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from hashlearn.cli import main

    (X, y), _, _ = parts
    np.savez(tmp_path / "train.npz", X=X, y=y)
    argv = ["fit", "--data", str(tmp_path / "train.npz"), "--bits", "8", "--quiet"]
    deep = ["--method", "dsh", "--param", "epochs=1", "--log-dir", str(tmp_path / "tb")]
    assert main([*argv, *deep, "--out", str(tmp_path / "m.safetensors")]) == 0
    assert any(path.name.startswith("events.out.tfevents") for path in (tmp_path / "tb").iterdir())
    shallow = ["--method", "lsh", "--log-dir", str(tmp_path / "tb2")]
    assert main([*argv, *shallow, "--out", str(tmp_path / "l.safetensors")]) == 2
    assert "'lsh' is not one" in capsys.readouterr().err


def test_tensorboard_missing_is_a_clear_error_before_training(parts, tmp_path, monkeypatch):
    (X, y), _, _ = parts
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(HashlearnError, match=r"pip install 'hashlearn\[tensorboard\]'"):
        DSH(**FAST, random_state=0, log_dir=tmp_path / "tb").fit(X, y)
    assert not (tmp_path / "tb").exists()


def test_augmentation_is_seeded_crop_and_flip():
    images = torch.arange(64 * 3 * 6 * 5, dtype=torch.float32).reshape(64, 3, 6, 5)
    first = augment_batch(images, torch.Generator().manual_seed(0), padding=2)
    again = augment_batch(images, torch.Generator().manual_seed(0), padding=2)
    other = augment_batch(images, torch.Generator().manual_seed(1), padding=2)
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert first.shape == images.shape

    flipped = augment_batch(images, torch.Generator().manual_seed(0), padding=0)
    same = [torch.equal(a, b) for a, b in zip(flipped, images)]
    mirrored = [torch.equal(a, b.flip(-1)) for a, b in zip(flipped, images)]
    assert all(s or m for s, m in zip(same, mirrored)) and 10 < sum(mirrored) < 54

    padded = nn.functional.pad(images, (2, 2, 2, 2))
    for out, source in zip(first, padded):
        windows = [
            source[:, dy : dy + 6, dx : dx + 5] for dy in range(5) for dx in range(5)
        ]  # every crop offset, plain or mirrored
        assert any(torch.equal(out, w) or torch.equal(out, w.flip(-1)) for w in windows)


def test_augmentation_applies_only_when_asked(parts):
    (X, y), _, _ = parts
    dataset_rows = rows(ArrayDataset(X, y).images.numpy())
    for augment in (False, True):
        spy = Spy(small_net())
        config = TrainerConfig(
            epochs=1, batch_size=64, augment=augment, augment_padding=1, random_state=0,
            device="cpu",
        )  # fmt: skip
        Trainer(config).fit(spy, DSHLoss(16.0), ArrayDataset(X, y))
        fed = set().union(*(rows(x) for training, x in spy.seen if training))
        assert (fed <= dataset_rows) is not augment


# -- bad parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"epochs": 0}, InvalidInputError, "epochs must be >= 1"),
        ({"batch_size": 1}, InvalidInputError, "batch_size must be >= 2"),
        ({"lr": 0.0}, InvalidInputError, "lr must be > 0"),
        ({"lr_schedule": "warmup"}, UnknownNameError, "unknown lr_schedule 'warmup'; available"),
        ({"lr_step_size": 0}, InvalidInputError, "lr_step_size must be >= 1"),
        ({"patience": 0}, InvalidInputError, "patience must be >= 1"),
        ({"amp": "yes"}, InvalidInputError, "amp must be True or False"),
        ({"augment": 1}, InvalidInputError, "augment must be True or False"),
        ({"resume": True}, InvalidInputError, "resume=True needs a checkpoint_dir"),
        ({"random_state": -1}, InvalidInputError, "random_state must be >= 0"),
        ({"swa": -0.1}, InvalidInputError, "swa must be >= 0"),
        ({"swa": 1.5}, InvalidInputError, "swa must be <= 1"),
        ({"swa": "half"}, InvalidInputError, "swa must be a number"),
        ({"swa": float("nan")}, InvalidInputError, "swa must be finite"),
    ],
)
def test_bad_trainer_parameters_are_rejected(params, error, match):
    with pytest.raises(error, match=match):
        TrainerConfig(**params)


def test_bad_fit_arguments_are_rejected(parts, tmp_path):
    (X, y), (Xv, yv), _ = parts
    with pytest.raises(InvalidInputError, match="epochs must be >= 1"):
        DSH(**{**FAST, "epochs": 0}).fit(X, y)
    with pytest.raises(UnknownNameError, match="unknown lr_schedule"):
        DSH(**FAST, lr_schedule="linear").fit(X, y)
    with pytest.raises(InvalidInputError, match=r"patience=2 .* needs validation data"):
        DSH(**FAST, patience=2).fit(X, y)
    with pytest.raises(InvalidInputError, match="both X_val and y_val"):
        DSH(**FAST).fit(X, y, X_val=Xv)
    with pytest.raises(InvalidInputError, match="X_val has images of shape"):
        DSH(**FAST).fit(X, y, X_val=Xv[:, :4, :4], y_val=yv)
    with pytest.raises(InvalidInputError, match="y_val has shape"):
        DSH(**FAST).fit(X, y, X_val=Xv, y_val=np.eye(10)[yv])
    with pytest.raises(InvalidInputError, match="backbone_params must be a dict"):
        DSH(**FAST, backbone_params=[("hidden", 8)]).fit(X, y)
    with pytest.raises(InvalidInputError, match=r"folder .* does not exist"):
        DSH(**FAST, log_csv=tmp_path / "missing" / "log.csv").fit(X, y)
    with pytest.raises(InvalidInputError, match="training diverged: the mean loss of epoch 1"):
        DSH(**FAST, lr=1e12).fit(X, y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_mixed_precision_training_on_cuda(parts):
    (X, y), (Xv, yv), (Xq, _) = parts
    expected = torch.cuda.get_rng_state()
    for amp in (True, False):
        hasher = DSH(**{**FAST, "epochs": 3, "device": "auto", "amp": amp}, random_state=0)
        hasher.fit(X, y, X_val=Xv, y_val=yv)
        assert next(hasher.net_.parameters()).device.type == "cpu"
        assert hasher.history_[-1]["loss"] < hasher.history_[0]["loss"]
        assert hasher.encode(Xq).shape == (len(Xq), 1)
    assert torch.equal(torch.cuda.get_rng_state(), expected)
