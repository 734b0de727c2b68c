"""Distributed training on torch.distributed (gloo, 2 processes on 127.0.0.1) equals one process
on the same global batches: weights, loss state, history, checkpoints and the saved model."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hashlearn.hashers.deep.trainer.distributed import (
    Distributed,
    gather_rows,
    setup_distributed,
    shard,
    shard_sizes,
)

pytest.importorskip("safetensors")
if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("this torch has no torch.distributed with gloo", allow_module_level=True)

from safetensors.numpy import load_file as load_numpy
from safetensors.torch import load_file

WORKER = Path(__file__).with_name("_distributed_worker.py")
SRC = Path(__file__).resolve().parents[3] / "src"
TOLERANCE = 1e-10


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env.update(variables)
    return env


def run_processes(args: list[str], world_size: int, cwd: Path) -> list[subprocess.CompletedProcess]:
    """Run the worker with ``args`` as ``world_size`` processes of one gloo group (the variables
    torchrun sets), or as one plain process when ``world_size`` is 0."""
    if world_size == 0:
        commands = [(environment(), [sys.executable, str(WORKER), *args])]
    else:
        port = str(free_port())
        commands = [
            (
                environment(
                    RANK=str(rank),
                    LOCAL_RANK=str(rank),
                    WORLD_SIZE=str(world_size),
                    MASTER_ADDR="127.0.0.1",
                    MASTER_PORT=port,
                ),
                [sys.executable, str(WORKER), *args],
            )
            for rank in range(world_size)
        ]
    processes = [
        subprocess.Popen(
            command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for env, command in commands
    ]
    results = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=120)
            results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    return results


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(np.asarray(a[k], float) - np.asarray(b[k], float)))) for k in a)


def checkpoint_tensors(directory: Path) -> dict[str, torch.Tensor]:
    document = json.loads((directory / "checkpoint.json").read_text())
    tensors = load_file(directory / document["tensors_file"])
    return {k: v for k, v in tensors.items() if not k.startswith("rng.")}


@pytest.fixture(scope="module")
def one_process_dsh(tmp_path_factory) -> Path:
    """The one-process DSH run of the worker (its output folder), shared by two tests."""
    out = tmp_path_factory.mktemp("one-dsh")
    run_processes(["train", "dsh", str(out)], 0, out)
    return out


# -- the pieces --------------------------------------------------------------------------------


def test_shares_cover_the_global_batch_in_order():
    batch = torch.arange(25)
    groups = [Distributed(rank, 2) for rank in range(2)]
    assert shard_sizes(25, groups[0]) == [13, 12]
    assert torch.equal(torch.cat([shard(batch, g) for g in groups]), batch)
    assert shard_sizes(3, Distributed(0, 4)) == [1, 1, 1, 0]
    assert shard(batch, Distributed()) is batch


def test_batchnorm_swap_shares_the_tensors_and_is_undone():
    """On GPUs the trainer swaps BatchNorm for SyncBatchNorm holding the same tensors (so
    training updates the network's own) and puts the originals back afterwards."""
    from torch import nn

    from hashlearn.hashers.deep.backbones import create_backbone
    from hashlearn.hashers.deep.trainer.distributed import _swap_batchnorm

    network = create_backbone("small-resnet", (1, 8, 8), 8)
    before = {k: v.data_ptr() for k, v in network.state_dict().items()}
    originals = [m for m in network.modules() if isinstance(m, nn.BatchNorm2d)]
    swapped = _swap_batchnorm(network)
    assert len(originals) == len(swapped) == 15  # 1 stem, 2 per block x 6, 2 shortcuts
    assert {id(original) for _, _, original in swapped} == {id(m) for m in originals}
    assert not any(type(m) is nn.BatchNorm2d for m in network.modules())
    assert {k: v.data_ptr() for k, v in network.state_dict().items()} == before
    for parent, name, original in swapped:
        setattr(parent, name, original)
    assert [m for m in network.modules() if isinstance(m, nn.BatchNorm2d)] == originals


def test_one_process_needs_no_process_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    group, device = setup_distributed("cpu")
    assert (group.rank, group.world_size, group.active, device) == (0, 1, False, "cpu")
    rows = torch.ones(3, 2, requires_grad=True)
    assert gather_rows(rows, [3], group) is rows
    assert group.broadcast({"a": 1}) == {"a": 1}


def test_incomplete_torchrun_environment_is_a_clear_error(monkeypatch):
    from hashlearn.exceptions import InvalidInputError

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(InvalidInputError, match="MASTER_ADDR, MASTER_PORT not set"):
        setup_distributed("cpu")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(InvalidInputError, match="WORLD_SIZE must be an integer"):
        setup_distributed("cpu")


# -- two processes against one -----------------------------------------------------------------


def test_two_processes_compute_the_gradient_of_one(tmp_path):
    """DDP averages the ranks' gradients and the gather's backward sums the outputs' gradient
    over the ranks: together, the gradient of one process on the global batch (not 1/2 or 2x
    of it: Adam, nearly scale-invariant, would hide such a factor from the weight tests)."""
    run_processes(["gradient", "dsh", str(tmp_path)], 0, tmp_path)
    reference = load_file(tmp_path / "gradient0.safetensors")
    (tmp_path / "two").mkdir()
    run_processes(["gradient", "dsh", str(tmp_path / "two")], 2, tmp_path)
    assert min(float(v.abs().max()) for v in reference.values()) > 1e-4  # all non-zero
    for rank in (0, 1):
        gradients = load_file(tmp_path / "two" / f"gradient{rank}.safetensors")
        assert max_difference(gradients, reference) < 1e-12


@pytest.mark.parametrize("loss", ["dsh", "dsdh-memory", "cibhash-swa"])
def test_two_processes_train_the_weights_of_one(loss, tmp_path, one_process_dsh):
    """3 epochs x 4 steps (global batches 25, 25, 25, 21; shares 13/12 and 11/10), augmentation,
    validation and checkpoints: both ranks end with the one-process weights and loss state
    (DSDH: the memory of all outputs, the discrete codes, the classifier; CIBHash: two random
    views of each image drawn as for the whole batch, outputs gathered view by view, random
    thresholds, the weights of epochs 2-3 averaged), and rank 0's last checkpoint holds the
    one-process one."""
    one, two = tmp_path / "one", tmp_path / "two"
    if loss == "dsh":
        one = one_process_dsh
    else:
        one.mkdir()
        run_processes(["train", loss, str(one)], 0, tmp_path)
    two.mkdir()
    run_processes(["train", loss, str(two)], 2, tmp_path)

    reference = load_file(one / "rank0.safetensors")
    assert all(v.dtype == torch.float64 for k, v in reference.items() if k.startswith("network."))
    for rank in (0, 1):
        trained = load_file(two / f"rank{rank}.safetensors")
        assert max_difference(trained, reference) < TOLERANCE
    if loss == "dsdh-memory":  # the memory was written: every training item was seen
        assert bool((reference["loss.memory"].abs().sum(dim=1) > 0).all())
        assert set(reference["loss.codes"].unique().tolist()) == {-1.0, 1.0}
    last = checkpoint_tensors(one / "checkpoint")
    assert max_difference(checkpoint_tensors(two / "checkpoint"), last) < TOLERANCE
    assert json.loads((two / "rank1.json").read_text())["seed"] == 7

    histories = [
        json.loads((d / f"rank{r}.json").read_text()) for d, r in [(one, 0), (two, 0), (two, 1)]
    ]
    losses = [row["loss"] for row in histories[0]["history"]]
    assert len(set(losses)) == 3  # it trained: the mean loss changed from epoch to epoch
    for history in histories[1:]:
        assert history["best_epoch"] == histories[0]["best_epoch"]
        for row, expected in zip(history["history"], histories[0]["history"], strict=True):
            assert row["val_mAP"] == expected["val_mAP"]  # rank 0's, broadcast
            assert row["loss"] == pytest.approx(expected["loss"], abs=TOLERANCE)
    assert not (two / "rank1" / "log.csv").exists()
    assert (two / "log.csv").read_text().count("\n") == 4  # header + 3 epochs, by rank 0


def test_distributed_resume_continues_the_one_process_run(tmp_path, one_process_dsh):
    """A checkpoint written by a 2-process run resumes in one process (the global batches do not
    depend on the number of processes) to the weights of an uninterrupted run."""
    one, two = one_process_dsh, tmp_path / "two"
    two.mkdir()
    run_processes(["train", "dsh", str(two), "--stop-after", "2"], 2, tmp_path)
    assert json.loads((two / "checkpoint" / "checkpoint.json").read_text())["epoch"] == 2
    run_processes(["train", "dsh", str(two), "--resume"], 0, tmp_path)
    assert (
        max_difference(load_file(two / "rank0.safetensors"), load_file(one / "rank0.safetensors"))
        < TOLERANCE
    )


def test_unseeded_early_stopping_carves_the_same_part_on_every_rank(tmp_path):
    """Without random_state each process would draw its own seed: rank 0's is broadcast, so
    both ranks set the same validation images aside and end with the same network."""
    run_processes(["carve", str(tmp_path)], 2, tmp_path)
    ranks = [json.loads((tmp_path / f"carve{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["validation"]["source"] == "split"
    assert ranks[0]["validation"]["n_validation"] == 12  # 10% of 120
    assert ranks[0] == ranks[1]


def test_torchrun_fit_saves_the_model_of_one_process(tmp_path):
    """``torchrun --nproc_per_node=2 -m hashlearn fit`` (here the worker, which sets float64
    first, then runs the CLI): rank 0 writes the model file and prints; rank 1 is silent and
    writes nothing; the model equals the one-process model."""
    data = tmp_path / "train.npz"
    from hashlearn.datasets import load_dataset

    digits = load_dataset("digits")
    np.savez(data, X=digits.X[:120], y=digits.y[:120])
    common = ["--method", "dsh", "--bits", "8", "--data", str(data), "--seed", "3"]
    params = ["--param", "epochs=2", "--param", "batch_size=32", "--param", 'device="cpu"']
    one = run_processes(["cli", "fit", *common, *params, "--out", "one.safetensors"], 0, tmp_path)
    (tmp_path / "two").mkdir()
    port = str(free_port())
    torchrun = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
        "--master_addr=127.0.0.1", f"--master_port={port}", str(WORKER),
        "cli", "fit", *common, *params, "--out", "two.safetensors",
    ]  # fmt: skip
    result = subprocess.run(
        torchrun, cwd=tmp_path / "two", env=environment(), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("fitted") == 1  # rank 0 only
    assert "fitted" in one[0].stdout
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == ["two.safetensors"]
    reference = load_numpy(tmp_path / "one.safetensors")
    model = load_numpy(tmp_path / "two" / "two.safetensors")
    networks = [{k: v for k, v in m.items() if k.startswith("net.")} for m in (reference, model)]
    assert networks[0] and all(v.dtype == np.float64 for v in networks[0].values())
    assert max_difference(*networks) < TOLERANCE
