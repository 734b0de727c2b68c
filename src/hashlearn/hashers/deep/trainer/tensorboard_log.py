"""TensorBoard event files of a run (``TrainerConfig(log_dir=...)``), one point per epoch.

Scalars, at step = epoch (from 1):

- ``train/loss``: the mean training loss of the epoch; ``train/lr``: its learning rate;
  ``train/images_per_s`` and ``train/seconds``: its speed and duration;
- ``validation/mAP``: the leave-one-out validation mAP (with validation data only);
- ``codes/bit_imbalance``: ``mean_k |p_k - 1/2|`` over the bits ``k``, where ``p_k`` is the share
  of codes with bit ``k`` set: 0 when every bit splits the codes in half, 1/2 when every bit is
  constant. ``p_k`` is measured on the validation codes (eval mode, after the epoch) when there
  is validation data, else on the signs of the training outputs of the epoch's batches (train
  mode, as they were computed);

and the histogram ``codes/bit_means`` of the ``p_k``. Written by rank 0 of a distributed run;
a resumed run appends to the same folder and drops events of epochs it trains again
(``purge_step``). Needs the ``tensorboard`` package (``pip install 'hashlearn[tensorboard]'``);
read the folder with ``tensorboard --logdir DIR``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from hashlearn.exceptions import HashlearnError

__all__ = [
    "TENSORBOARD_EXTRA",
    "bit_imbalance",
    "check_tensorboard",
    "open_summary_writer",
    "write_epoch",
]

TENSORBOARD_EXTRA = "pip install 'hashlearn[tensorboard]'"


def check_tensorboard() -> None:
    """Raise HashlearnError naming the extra to install when ``tensorboard`` is missing."""
    _summary_writer_class()


def _summary_writer_class() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch raises it when the tensorboard package is not installed
        raise HashlearnError(
            f"log_dir (TensorBoard logs) needs the 'tensorboard' package, which is not "
            f"installed: {TENSORBOARD_EXTRA} (or: pip install tensorboard)"
        ) from None
    return SummaryWriter


def open_summary_writer(log_dir: str | os.PathLike[str], resumed_from: int = 0) -> Any:
    """A ``SummaryWriter`` on ``log_dir`` (created if missing); after ``resumed_from`` epochs of
    a resumed run, events at later steps left by the interrupted run are purged."""
    writer_class = _summary_writer_class()
    purge_step = resumed_from + 1 if resumed_from else None
    return writer_class(log_dir=os.fspath(log_dir), purge_step=purge_step)


def bit_imbalance(bit_means: np.ndarray) -> float:
    """``mean_k |p_k - 1/2|`` of the shares ``p_k`` of codes with bit ``k`` set, in [0, 1/2]."""
    return float(np.abs(np.asarray(bit_means, dtype=np.float64) - 0.5).mean())


def write_epoch(writer: Any, row: dict[str, Any], bit_means: np.ndarray | None) -> None:
    """The scalars of one epoch's ``row`` of the history, and the bit statistics of its codes."""
    step = int(row["epoch"])
    writer.add_scalar("train/loss", row["loss"], step)
    writer.add_scalar("train/lr", row["lr"], step)
    writer.add_scalar("train/images_per_s", row["images_per_s"], step)
    writer.add_scalar("train/seconds", row["seconds"], step)
    if row["val_mAP"] is not None:
        writer.add_scalar("validation/mAP", row["val_mAP"], step)
    if bit_means is not None:
        writer.add_scalar("codes/bit_imbalance", bit_imbalance(bit_means), step)
        writer.add_histogram("codes/bit_means", np.asarray(bit_means, np.float64), step)
    writer.flush()
