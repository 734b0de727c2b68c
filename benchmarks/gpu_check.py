"""Deep hashing on the GPU against the CPU: the same codes on most items, and images per second.

Trains DSH (``small-cnn``, 12 bits, batches of 128, Adam, seed 0) on the mnist5k training split
(3500 images of 28x28) for ``--epochs`` epochs on the CPU and, when CUDA is present, on the GPU,
in float32 without mixed precision and with TF32 off, so that both do the same arithmetic up to
the order of sums. Then encodes the database split (4500 images) with each model and prints:

- the share of database items whose codes are identical on both devices, and the share of
  bits that agree (training is chaotic: sums taken in another order drift apart over the steps,
  so a few items near a hyperplane change sides); the check fails (exit 1) when fewer than
  ``--min-share`` of the items agree;
- the mAP of the query split against the database, for each device;
- training throughput (images/s, the median over epochs; the first GPU epoch pays for start-up).

Without CUDA it says so and exits 0 after the CPU part. About a minute on 2 CPU cores; under 5
minutes on a GPU machine.

    bash benchmarks/gpu_check.sh [--epochs 6] [--min-share 0.5] [--dataset mnist5k] [--device cuda]

``--device cpu`` compares two CPU runs (all codes identical: a check of the script itself).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

from hashlearn import create_hasher
from hashlearn.codes import unpack_bits
from hashlearn.datasets import default_split, load_dataset
from hashlearn.evaluation import evaluate_codes


def train(split, device: str, epochs: int):
    """A DSH model trained on ``device``; returns it and its median images/s over epochs."""
    hasher = create_hasher(
        "dsh",
        n_bits=12,
        epochs=epochs,
        batch_size=128,
        random_state=0,
        device=device,
        amp=False,
        verbose=False,
    )
    start = time.perf_counter()
    hasher.fit(split.train.X, split.train.y)
    seconds = time.perf_counter() - start
    speed = statistics.median(row["images_per_s"] for row in hasher.history_)
    return hasher, speed, seconds


def report(name: str, hasher, speed: float, seconds: float, split) -> np.ndarray:
    codes = hasher.encode(split.database.X)
    scores = evaluate_codes(
        hasher.encode(split.query.X), split.query.y, codes, split.database.y, ks=(), radius=None
    )
    print(
        f"{name:4s} train {seconds:6.1f} s   {speed:9.0f} images/s   "
        f"final loss {hasher.history_[-1]['loss']:.4f}   query mAP {scores['mAP']:.4f}"
    )
    return codes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--min-share", type=float, default=0.5)
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument(
        "--device", default="cuda", help="the device compared with the CPU (cpu: a self-check)"
    )
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    split = default_split(load_dataset(args.dataset), random_state=0)
    print(
        f"DSH, small-cnn, 12 bits, {args.epochs} epochs on {args.dataset} "
        f"({len(split.train.y)} training images); torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads"
    )
    cpu_model, cpu_speed, cpu_seconds = train(split, "cpu", args.epochs)
    cpu_codes = report("cpu", cpu_model, cpu_speed, cpu_seconds, split)
    if args.device.startswith("cuda"):
        if not torch.cuda.is_available():
            print("no CUDA device on this machine: the GPU part was not run (the CPU part passed)")
            return 0
        print(f"gpu: {torch.cuda.get_device_name(torch.device(args.device))}")
    gpu_model, gpu_speed, gpu_seconds = train(split, args.device, args.epochs)
    gpu_codes = report(
        "gpu" if args.device.startswith("cuda") else args.device,
        gpu_model,
        gpu_speed,
        gpu_seconds,
        split,
    )
    same_items = float(np.mean(np.all(cpu_codes == gpu_codes, axis=1)))
    same_bits = float(np.mean(unpack_bits(cpu_codes, 12) == unpack_bits(gpu_codes, 12)))
    print(
        f"codes identical on {same_items:.1%} of {len(cpu_codes)} database items "
        f"({same_bits:.2%} of bits); {args.device}/cpu speed {gpu_speed / cpu_speed:.1f}x"
    )
    if same_items < args.min_share:
        print(f"FAILED: fewer than {args.min_share:.0%} of the items have the same code")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
