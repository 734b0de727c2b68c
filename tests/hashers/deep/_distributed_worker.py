"""One process of the distributed-training tests, in float64 (``torch``'s default dtype is set
before anything is built).

    python _distributed_worker.py train LOSS OUT_DIR [--stop-after K | --resume]
    python _distributed_worker.py gradient LOSS OUT_DIR  # gradient of one global batch
    python _distributed_worker.py carve OUT_DIR        # an unseeded DSH fit with early stopping
    python _distributed_worker.py cli ARGS...          # ``hashlearn ARGS...`` (the CLI's main)

Started with the variables ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
``MASTER_PORT``) it is one process of a distributed run; without them, the one-process run that
the distributed one must equal. ``train`` writes ``rank{RANK}.safetensors`` (the trained network,
the loss's state) and ``rank{RANK}.json`` (the history). ``--stop-after K`` interrupts the run
(every process) at the first step after epoch ``K`` and writes nothing; ``--resume`` continues
from the checkpoint in ``OUT_DIR``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

torch.set_default_dtype(torch.float64)

from hashlearn.datasets import load_dataset  # noqa: E402
from hashlearn.hashers.deep.augment import Augmentation, TwoViews  # noqa: E402
from hashlearn.hashers.deep.backbones import create_backbone  # noqa: E402
from hashlearn.hashers.deep.losses import create_loss  # noqa: E402
from hashlearn.hashers.deep.trainer import ArrayDataset, Trainer, TrainerConfig  # noqa: E402

LOSSES = {
    "dsh": ("dsh", {}),
    "dsdh-memory": ("dsdh", {"memory_pairs": True}),
    "dpsh-memory": ("dpsh", {"memory": True}),
    # two random views of each image (TwoViews), random thresholds, weight averaging
    "cibhash-swa": ("cibhash", {"stochastic": True}),
}


def digits_parts() -> tuple[ArrayDataset, ArrayDataset]:
    """96 training and 40 validation digits (the first 136 of the real 8x8 set)."""
    data = load_dataset("digits")
    X, y = data.X[:136], data.y[:136]
    return ArrayDataset(X[:96], y[:96]), ArrayDataset(X[96:], y[96:])


def train(loss_key: str, out: Path, option: str | None = None, value: str | None = None) -> None:
    """3 epochs of 4 steps (global batches of 25, 25, 25 and 21: uneven shares), with
    augmentation, validation (rank 0) and a checkpoint per epoch (rank 0)."""
    torch.manual_seed(0)
    network = create_backbone("small-cnn", (1, 8, 8), 8)
    name, params = LOSSES[loss_key]
    loss = create_loss(name, 8, **params)
    views = name == "cibhash"
    if views:
        network = TwoViews(network, Augmentation(flip=0.5))
    config = TrainerConfig(
        epochs=3,
        batch_size=25,
        lr=0.01,
        swa=0.5 if views else 0.0,
        augment=not views,
        augment_padding=1,
        device="cpu",
        random_state=7,
        checkpoint_dir=out / "checkpoint",
        log_csv=out / "log.csv",
        resume=option == "--resume",
    )
    if option == "--stop-after":
        forward, calls, stop_at = network.forward, [0], 4 * int(value) + 1  # 4 steps per epoch

        def interrupted(images: torch.Tensor) -> torch.Tensor:
            calls[0] += network.training
            if calls[0] == stop_at:
                raise KeyboardInterrupt
            return forward(images)

        network.forward = interrupted
    train_set, validation = digits_parts()
    try:
        result = Trainer(config).fit(network, loss, train_set, validation)
    except KeyboardInterrupt:
        return
    from safetensors.torch import save_file

    rank = os.environ.get("RANK", "0")
    tensors = {f"network.{k}": v for k, v in network.state_dict().items()}
    tensors.update({f"loss.{k}": v for k, v in loss.state_dict().items() if v is not None})
    save_file({k: v.contiguous() for k, v in tensors.items()}, out / f"rank{rank}.safetensors")
    rows = [{k: row[k] for k in ("epoch", "loss", "lr", "val_mAP")} for row in result.history]
    document = {"history": rows, "best_epoch": result.best_epoch, "seed": result.seed}
    (out / f"rank{rank}.json").write_text(json.dumps(document))


def gradient(loss_key: str, out: Path) -> None:
    """The parameter gradients of one step on a global batch of 25 digits (shares 13 and 12)
    through the trainer's distributed pieces, without an optimizer: ``gradient{RANK}.safetensors``."""
    from safetensors.torch import save_file

    from hashlearn.hashers.deep.trainer.distributed import (
        gather_rows,
        setup_distributed,
        shard,
        shard_sizes,
    )

    group, _ = setup_distributed("cpu")
    torch.manual_seed(0)
    network = create_backbone("small-cnn", (1, 8, 8), 8)
    name, params = LOSSES[loss_key]
    loss = create_loss(name, 8, **params)
    train_set, _ = digits_parts()
    loss.setup(len(train_set), 8, train_set.labels, torch.Generator().manual_seed(1))
    model, _ = group.wrap(network, torch.device("cpu"))
    indices = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(2))[:25]
    images, labels = train_set.get_batch(shard(indices, group))
    sizes = shard_sizes(len(indices), group)
    outputs = gather_rows(model(images.to(torch.float64)), sizes, group)
    value = loss(outputs, gather_rows(labels, sizes, group), indices)
    value.backward()
    grads = {k: p.grad for k, p in network.named_parameters()}
    grads["loss"] = value.detach().reshape(1)
    save_file(grads, out / f"gradient{os.environ.get('RANK', '0')}.safetensors")


def carve(out: Path) -> None:
    """One epoch of DSH without a seed, early stopping on: every rank writes
    ``carve{RANK}.json`` with its record of the carved validation part and its codes."""
    from hashlearn.hashers.deep.methods import DSH

    data = load_dataset("digits")
    X, y = data.X[:120], data.y[:120]
    hasher = DSH(n_bits=8, epochs=1, batch_size=32, device="cpu", verbose=False)
    hasher.set_params(early_stopping=True).fit(X, y)
    document = {"validation": hasher.validation_, "codes": hasher.encode(X).tolist()}
    (out / f"carve{os.environ.get('RANK', '0')}.json").write_text(json.dumps(document))


if __name__ == "__main__":
    if sys.argv[1] == "train":
        train(sys.argv[2], Path(sys.argv[3]), *sys.argv[4:])
    elif sys.argv[1] == "gradient":
        gradient(sys.argv[2], Path(sys.argv[3]))
    elif sys.argv[1] == "carve":
        carve(Path(sys.argv[2]))
    else:
        from hashlearn.cli.main import main

        sys.exit(main(sys.argv[2:]))
