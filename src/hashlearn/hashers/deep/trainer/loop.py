"""The training loop: seeded epochs of mini-batches, Adam, the learning-rate schedule, validation
with early stopping and best-epoch restore, a log and checkpoints after every epoch.

Losses
------
The loss follows the :class:`~hashlearn.hashers.deep.losses.base.HashLoss` interface:
``loss.setup(n_train, n_bits, labels, generator)`` once before training (all training labels, on
the CPU; the loss is moved to the training device afterwards), ``loss(outputs, labels, indices)``
per batch on float32 outputs (under mixed precision too; float64 ones for a network built in
double precision, whose inputs are then cast to float64), and ``loss.on_epoch_end(epoch)`` after
each epoch with the 0-based index of the epoch just finished. Parameters of the loss, if any, are
trained with the network's.

Reproducibility
---------------
Given ``random_state``, the batch order, augmentation draws, the loss's ``setup`` generator and
the global torch generator used inside training (dropout) are all seeded; global random state is
left as it was (``torch.random.fork_rng``). On the CPU two runs give bit-identical weights, and a
run interrupted after epoch k and resumed from its checkpoint gives the same weights as an
uninterrupted one. The network's own initialisation is the caller's to seed (DeepHasher does).

Several processes
-----------------
Under ``torchrun`` (or in an initialised ``torch.distributed`` process group) the run trains one
model on all processes, each on its share of every global batch, the loss on the gathered global
batch: see :mod:`~hashlearn.hashers.deep.trainer.distributed`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hashlearn._progress import progress
from hashlearn._validation import check_random_state
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers.deep.losses.base import HashLoss
from hashlearn.hashers.deep.trainer.checkpoint import (
    RunState,
    read_checkpoint,
    restore_checkpoint,
)
from hashlearn.hashers.deep.trainer.config import TrainerConfig, swa_start
from hashlearn.hashers.deep.trainer.data import (
    ArrayDataset,
    BatchSource,
    as_source,
    check_sources,
    resolve_device,
)
from hashlearn.hashers.deep.trainer.distributed import (
    setup_distributed,
)
from hashlearn.hashers.deep.trainer.run import TrainingRun
from hashlearn.hashers.deep.trainer.tensorboard_log import (
    check_tensorboard,
    open_summary_writer,
)

__all__ = ["TrainResult", "Trainer"]


@dataclass
class TrainResult:
    """What a run did. ``history``: one dict per epoch with the keys of ``LOG_COLUMNS``
    (``epoch`` counts from 1; ``val_mAP`` is None without validation data). ``best_epoch``: the
    epoch whose weights the network holds at the end (the best validation mAP, first one on
    ties; the last epoch without validation data). With ``swa``, from the first averaged epoch
    on an epoch's weights are the mean over the averaged epochs up to it; ``averaged_epochs``:
    how many epochs the weights the network holds average (0: none, a single epoch's)."""

    history: list[dict[str, Any]]
    best_epoch: int
    best_val_map: float | None
    stopped_early: bool
    seed: int
    seconds: float
    resumed_from: int = 0
    averaged_epochs: int = 0


class Trainer:
    """Trains a network with a :class:`~hashlearn.hashers.deep.losses.HashLoss`.

    ``Trainer(config).fit(network, loss, train, validation)`` runs the epochs and returns a
    :class:`TrainResult`; the network ends on the training device, in eval mode, holding the
    weights of ``result.best_epoch``. :class:`ArrayDataset` sources are moved to that device.
    """

    def __init__(self, config: TrainerConfig | None = None) -> None:
        self.config = TrainerConfig() if config is None else config
        if not isinstance(self.config, TrainerConfig):
            raise InvalidInputError(f"config must be a TrainerConfig, got {type(config).__name__}")

    def fit(
        self,
        network: nn.Module,
        loss: HashLoss,
        train: BatchSource | tuple[Any, Any],
        validation: BatchSource | tuple[Any, Any] | None = None,
    ) -> TrainResult:
        """Train ``network`` on ``train`` (a batch source, or a tuple ``(images, labels)`` of
        arrays, see :class:`ArrayDataset`); select the epoch on ``validation`` if given.

        Raises
        ------
        InvalidInputError
            Bad data (fewer than 2 training or validation items, label kinds that differ),
            ``patience`` without validation data, a network whose output is not ``(b, n_bits)``,
            a diverging loss (NaN or infinite), or a checkpoint that does not match this run.
        FileFormatError
            A damaged checkpoint.
        HashlearnError
            ``log_dir`` without the ``tensorboard`` package.
        """
        config = self.config
        start = time.perf_counter()
        train = as_source(train, "training images")
        validation = None if validation is None else as_source(validation, "validation images")
        check_sources(train, validation)
        if config.patience is not None and validation is None:
            raise InvalidInputError(
                f"patience={config.patience} (early stopping) needs validation data"
            )
        if config.log_csv is not None and not Path(config.log_csv).parent.is_dir():
            raise InvalidInputError(
                f"log_csv: folder {str(Path(config.log_csv).parent)!r} does not exist"
            )
        if config.log_dir is not None:
            check_tensorboard()
        group, device_name = setup_distributed(config.device)
        device = resolve_device(device_name)
        checkpoint = None
        if config.resume:
            checkpoint = read_checkpoint(Path(config.checkpoint_dir))  # type: ignore[arg-type]
        seed = check_random_state(config.random_state)
        if seed is None:  # a resumed run keeps its seed; a new one draws fresh entropy
            seed = (
                int(checkpoint[0]["seed"])
                if checkpoint is not None
                else int(np.random.SeedSequence().entropy % (2**32))
            )
        seed = group.broadcast(seed)  # one seed, rank 0's, for every process
        for source in (train, validation):
            if isinstance(source, ArrayDataset):
                source.to(device)
        network.to(device)

        cuda_devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda_devices):
            run = TrainingRun(config, network, loss, train, validation, device, seed, group)
            if checkpoint is not None:
                run.state = restore_checkpoint(*checkpoint, run.parts, run.fingerprint)
            resumed_from = run.state.epoch
            if config.log_dir is not None and group.is_main:
                run.writer = open_summary_writer(config.log_dir, resumed_from)
            bar = progress(
                total=config.epochs,
                initial=run.state.epoch,
                desc=config.description,
                unit="epoch",
                disable=not (config.verbose and group.is_main),
                leave=False,
            )
            try:
                while not run.state.finished:
                    row = run.epoch()
                    bar.set_postfix(
                        {k: f"{row[k]:.4f}" for k in ("loss", "val_mAP") if row[k] is not None}
                    )
                    bar.update(1)
            finally:
                bar.close()
                if run.writer is not None:
                    run.writer.close()
                run.finish()  # the network's own layers back (SyncBatchNorm is for training)
            final = run.state.best_network
            if final is None:  # without validation data: the weight average, if any
                final = run.state.average
            if final is not None:
                network.load_state_dict(final)
        network.eval()
        return TrainResult(
            history=run.state.history,
            best_epoch=run.state.best_epoch,
            best_val_map=run.state.best_map,
            stopped_early=run.state.stopped_early,
            seed=seed,
            seconds=time.perf_counter() - start,
            resumed_from=resumed_from,
            averaged_epochs=_averaged_epochs(run.state, self.config),
        )


def _averaged_epochs(state: RunState, config: TrainerConfig) -> int:
    """How many epochs the weights the network ends with average (0: a single epoch's)."""
    start = swa_start(config.swa, config.epochs)
    if start is None or state.average is None or state.best_epoch < start:
        return 0
    return state.best_epoch - start + 1
