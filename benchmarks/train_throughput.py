"""Training throughput of hashlearn's Trainer against a bare PyTorch loop.

Both train the same network (``small-cnn``, 12 bits) with the same loss (DSH, margin 24) and Adam
on the same data (the mnist5k training split, 3500 images of 28x28, standardised), in batches of
128, on the CPU with 2 threads by default. Runs alternate (bare, trainer, bare, trainer...) so that
both see the same machine load; each run is a fresh network trained for ``--epochs`` epochs, timed
from the start of the call to its end (data preparation included for both). Throughput is
training images per second; the ratio trainer / bare should be >= 0.9. The median and the
best run of each are printed (on a shared machine, the best is the least disturbed).

    python benchmarks/train_throughput.py [--repeats 5] [--epochs 1] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from hashlearn.datasets import default_split, load_dataset
from hashlearn.hashers.deep.backbones import create_backbone
from hashlearn.hashers.deep.losses import DSHLoss
from hashlearn.hashers.deep.trainer import ArrayDataset, Trainer, TrainerConfig

N_BITS = 12
BATCH_SIZE = 128


def make_network(in_shape: tuple[int, int, int], seed: int) -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_backbone("small-cnn", in_shape, N_BITS)


def bare_loop(
    X: np.ndarray, y: np.ndarray, mean: np.ndarray, std: np.ndarray, epochs: int, device: str
) -> float:
    """The loop a user would write by hand; returns the seconds it took."""
    start = time.perf_counter()
    inputs = torch.from_numpy((X - mean) / std).permute(0, 3, 1, 2).contiguous().to(device)
    labels = torch.from_numpy(y).to(device)
    net = make_network(tuple(inputs.shape[1:]), seed=0).to(device)
    loss_fn = DSHLoss(margin=2.0 * N_BITS)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    n = len(inputs)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator).to(device)
        for begin in range(0, n, BATCH_SIZE):
            idx = order[begin : begin + BATCH_SIZE]
            loss = loss_fn(net(inputs[idx]), labels[idx], idx)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def trainer_run(
    X: np.ndarray, y: np.ndarray, mean: np.ndarray, std: np.ndarray, epochs: int, device: str
) -> float:
    start = time.perf_counter()
    data = ArrayDataset(X, y, mean=mean, std=std)
    net = make_network(data.image_shape, seed=0)
    config = TrainerConfig(epochs=epochs, batch_size=BATCH_SIZE, random_state=0, device=device)
    Trainer(config).fit(net, DSHLoss(margin=2.0 * N_BITS), data)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each loop (default 5)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per run (default 1)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    split = default_split(load_dataset("mnist5k"), random_state=0)
    X = split.train.X[..., None].astype(np.float32)
    y = split.train.y.astype(np.int64)
    mean = X.mean(axis=(0, 1, 2)).astype(np.float32)
    std = np.maximum(X.std(axis=(0, 1, 2)), 1e-6).astype(np.float32)
    images = len(X) * args.epochs
    print(
        f"{len(X)} images {X.shape[1:]}, batch {BATCH_SIZE}, {args.epochs} epoch(s) per run, "
        f"{args.threads} threads, device {args.device}, torch {torch.__version__}"
    )

    trainer_run(X[:512], y[:512], mean, std, 1, args.device)  # warm-up of both code paths
    bare_loop(X[:512], y[:512], mean, std, 1, args.device)
    bare_rates, trainer_rates = [], []
    for repeat in range(args.repeats):
        runs = [("bare", bare_loop), ("trainer", trainer_run)]
        if repeat % 2:
            runs.reverse()
        for name, run in runs:
            rate = images / run(X, y, mean, std, args.epochs, args.device)
            (bare_rates if name == "bare" else trainer_rates).append(rate)
            print(f"  run {repeat + 1} {name:8s} {rate:8.1f} images/s")
    for label, pick in (("median", statistics.median), ("best", max)):
        bare, ours = pick(bare_rates), pick(trainer_rates)
        print(
            f"{label:6s}: bare loop {bare:7.1f} images/s, Trainer {ours:7.1f} images/s, "
            f"ratio {ours / bare:.3f}"
        )


if __name__ == "__main__":
    main()
