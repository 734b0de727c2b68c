"""One training run of :class:`~hashlearn.hashers.deep.trainer.Trainer`: its network, loss,
optimizer, generators and state, an epoch of steps over the (global) batches, validation with
early stopping and best-epoch keeping, and the logs (CSV, TensorBoard) and checkpoint after every
epoch.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hashlearn._io import atomic_write
from hashlearn.codes import unpack_bits
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers.deep.losses.base import HashLoss
from hashlearn.hashers.deep.trainer.checkpoint import (
    RunParts,
    RunState,
    run_fingerprint,
    save_checkpoint,
)
from hashlearn.hashers.deep.trainer.config import TrainerConfig, scheduled_lr, swa_start
from hashlearn.hashers.deep.trainer.data import (
    BatchSource,
    apply_augmentation,
    augment_draws,
    batch_indices,
    input_dtype,
    load_batch,
)
from hashlearn.hashers.deep.trainer.distributed import (
    Distributed,
    gather_rows,
    gather_views,
    shard,
    shard_sizes,
)
from hashlearn.hashers.deep.trainer.tensorboard_log import write_epoch
from hashlearn.hashers.deep.trainer.validation import encode_source, validation_map

__all__ = ["LOG_COLUMNS", "TrainingRun", "write_log_csv"]

LOG_COLUMNS = ("epoch", "loss", "lr", "val_mAP", "seconds", "images_per_s")

# Independent random streams derived from one seed (the batch order uses the seed itself, as the
# training loop always has, so results of earlier versions are reproduced).
_STREAM_LOSS = 1
_STREAM_GLOBAL = 2


class TrainingRun:
    """One training run: its network, loss, optimizer, generators and state. Built, and used,
    inside ``fork_rng``: it seeds the global generators."""

    def __init__(
        self,
        config: TrainerConfig,
        network: nn.Module,
        loss: HashLoss,
        train: BatchSource,
        validation: BatchSource | None,
        device: torch.device,
        seed: int,
        group: Distributed,
    ) -> None:
        self.config, self.network, self.loss = config, network, loss
        self.group = group
        self.train, self.validation, self.device = train, validation, device
        (_, h, w), n_bits = _probe(network, train, device)
        self.n_bits = n_bits
        self.padding = (
            max(1, round(min(h, w) / 8))
            if config.augment_padding is None
            else config.augment_padding
        )
        self.seed = seed
        self.fingerprint = run_fingerprint(
            config,
            seed=seed,
            padding=self.padding,
            n_bits=n_bits,
            train=train,
            validation=validation,
            network=network,
            loss=loss,
        )

        torch.random.default_generator.manual_seed(_stream_seed(seed, _STREAM_GLOBAL))
        if device.type == "cuda":
            with torch.cuda.device(device):
                torch.cuda.manual_seed(_stream_seed(seed, _STREAM_GLOBAL))
        self.generators = {
            "order": torch.Generator().manual_seed(seed),
            "loss": torch.Generator().manual_seed(_stream_seed(seed, _STREAM_LOSS)),
        }
        loss.setup(len(train), n_bits, train.labels, self.generators["loss"])
        loss.to(device)
        loss.train()
        parameters = list(network.parameters()) + list(loss.parameters())
        self.optimizer = torch.optim.Adam(
            parameters, lr=config.lr, weight_decay=config.weight_decay
        )
        self.amp = config.amp and device.type == "cuda"
        self.amp_dtype = (
            torch.bfloat16 if self.amp and torch.cuda.is_bf16_supported() else torch.float16
        )
        self.scaler = (
            torch.amp.GradScaler("cuda") if self.amp and self.amp_dtype == torch.float16 else None
        )
        self.dtype = input_dtype(network)
        # the network trained through (DistributedDataParallel in a process group); it shares
        # its parameters with self.network, which is what is validated and saved
        self.model, self.finish = group.wrap(network, device)
        self.state = RunState(finished=False)
        self.parts = RunParts(
            network, loss, self.optimizer, self.scaler, self.generators, self.device
        )
        # the TensorBoard SummaryWriter (rank 0, with config.log_dir), set by the Trainer
        self.writer: Any = None
        # with log_dir: the share of set bits of the training outputs of the last epoch
        self.train_bit_means: np.ndarray | None = None

    # -- one epoch --------------------------------------------------------------------------

    def epoch(self) -> dict[str, Any]:
        """Train one epoch, validate, log, checkpoint; return the epoch's row of the history."""
        config, state = self.config, self.state
        start = time.perf_counter()
        row = self._train_epoch()
        self.loss.on_epoch_end(state.epoch)
        state.epoch += 1
        bit_means = self.train_bit_means
        first = swa_start(config.swa, config.epochs)
        if first is not None and state.epoch >= first:
            _take_into_average(state, self.network, state.epoch - first + 1)
        if self.validation is not None:
            with _holding(self.network, state.average):  # the average, once there is one
                if self.group.is_main:  # rank 0 validates, every process takes its decision
                    codes = encode_source(
                        self.network, self.validation, self.device, config.eval_batch_size
                    )
                    row["val_mAP"] = validation_map(codes, self.validation.labels.numpy())
                    if self.writer is not None:
                        bit_means = unpack_bits(codes, self.n_bits).mean(axis=0)
                row["val_mAP"] = self.group.broadcast(row["val_mAP"])
                better = state.best_map is None or row["val_mAP"] > state.best_map
                if better:
                    state.best_network = _clone_state(self.network)
            if better:
                state.best_map, state.best_epoch, state.since_best = row["val_mAP"], state.epoch, 0
            else:
                state.since_best += 1
            state.stopped_early = (
                config.patience is not None
                and state.since_best >= config.patience
                and state.epoch < config.epochs
            )
        else:
            state.best_epoch = state.epoch
        row["seconds"] = time.perf_counter() - start
        state.history.append({k: row[k] for k in LOG_COLUMNS})
        state.finished = state.stopped_early or state.epoch >= config.epochs
        if config.log_csv is not None and self.group.is_main:
            write_log_csv(Path(config.log_csv), state.history)
        if self.writer is not None:
            write_epoch(self.writer, row, bit_means)
        if config.checkpoint_dir is not None and self.group.is_main:
            save_checkpoint(
                Path(config.checkpoint_dir),
                self.parts,
                state,
                seed=self.seed,
                fingerprint=self.fingerprint,
            )
        self.group.barrier()  # no process runs ahead of rank 0's files
        return row

    def _train_epoch(self) -> dict[str, Any]:
        """One pass over the training data in seeded random batches (no host sync per batch).

        In a process group, each global batch ``indices`` is the one a single process would
        take; this process trains on its share, and the loss sees the gathered global batch
        (see :mod:`~hashlearn.hashers.deep.trainer.distributed`)."""
        config, group, device = self.config, self.group, self.device
        start = time.perf_counter()
        epoch = self.state.epoch
        lr = scheduled_lr(
            config.lr_schedule,
            config.lr,
            epoch,
            config.epochs,
            step_size=config.lr_step_size,
            gamma=config.lr_gamma,
        )
        for param_group in self.optimizer.param_groups:
            param_group["lr"] = lr
        self.model.train()
        generator = self.generators["order"]
        total = torch.zeros((), dtype=torch.float64, device=device)
        # set bits per code bit of the epoch's training outputs, for the TensorBoard log
        ones = None if config.log_dir is None else torch.zeros((), device=device)
        batches = seen = 0
        autocast = (
            torch.autocast(device_type="cuda", dtype=self.amp_dtype)
            if self.amp
            else contextlib.nullcontext()
        )
        views = getattr(self.network, "views", 1)  # outputs per image (view-major rows)
        for indices in batch_indices(len(self.train), config.batch_size, generator, device):
            sizes = shard_sizes(len(indices), group)
            images, labels = load_batch(self.train, shard(indices, group), device, self.dtype)
            if views > 1 and group.active:  # the share's views drawn as for the whole batch
                start = sum(sizes[: group.rank])
                self.network.batch_rows = (start, start + sizes[group.rank], len(indices))
            if config.augment:
                flip, offsets = augment_draws(len(indices), generator, self.padding)
                images = apply_augmentation(
                    images, shard(flip, group), shard(offsets, group), self.padding
                )
            with autocast:
                outputs = self.model(images)
            outputs = gather_views(_loss_dtype(outputs), sizes, group, views)
            labels = gather_rows(labels, sizes, group)
            value = self.loss(outputs, labels, indices)
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(value).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                value.backward()
                self.optimizer.step()
            total += value.detach()
            if ones is not None:
                ones = ones + (outputs.detach() >= 0).sum(dim=0)
            batches += 1
            seen += len(indices)
        if views > 1 and group.active:
            self.network.batch_rows = None  # a later pass on its own draws for its own batch
        mean_loss = total.item() / max(batches, 1)  # the epoch's one synchronisation
        if ones is not None:
            self.train_bit_means = (ones.double() / max(seen, 1)).cpu().numpy()
        seconds = time.perf_counter() - start
        if not math.isfinite(mean_loss):
            raise InvalidInputError(
                f"training diverged: the mean loss of epoch {epoch + 1} is {mean_loss}; "
                f"try a smaller lr (now {config.lr}) or check the data for extreme values"
            )
        return {
            "epoch": epoch + 1,
            "loss": mean_loss,
            "lr": lr,
            "val_mAP": None,
            "images_per_s": seen / max(seconds, 1e-9),
        }


def _loss_dtype(outputs: torch.Tensor) -> torch.Tensor:
    """Outputs as the loss takes them: half-precision ones (mixed precision) as float32,
    float32 and float64 ones as they are."""
    if outputs.dtype in (torch.float32, torch.float64):
        return outputs
    return outputs.float()


def _stream_seed(seed: int, stream: int) -> int:
    """A seed of its own for random stream ``stream`` of a run seeded ``seed``."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0] >> 1)


def _probe(
    network: nn.Module, source: BatchSource, device: torch.device
) -> tuple[tuple[int, int, int], int]:
    """``(c, h, w)`` of the images and the number of outputs per image, from one image in eval
    mode (changes no state)."""
    was_training = network.training
    network.eval()
    with torch.no_grad():
        images, _ = source.get_batch(torch.zeros(1, dtype=torch.int64))
        outputs = network(images.to(device, input_dtype(network)))
    network.train(was_training)
    if outputs.ndim != 2 or outputs.shape[0] != 1:
        raise InvalidInputError(
            f"the network must map (b, c, h, w) images to (b, n_bits) outputs; one image gave "
            f"shape {tuple(outputs.shape)}"
        )
    c, h, w = images.shape[1:]
    return (int(c), int(h), int(w)), int(outputs.shape[1])


def _clone_state(network: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in network.state_dict().items()}


def _take_into_average(state: RunState, network: nn.Module, count: int) -> None:
    """Fold the network's present state into ``state.average``, making it the running mean of
    ``count`` epochs (floating-point tensors; the others keep the latest value)."""
    if state.average is None:
        state.average = _clone_state(network)
        return
    for key, value in network.state_dict().items():
        mean = state.average[key]
        if mean.is_floating_point():
            mean.add_(value.detach() - mean, alpha=1.0 / count)
        else:
            mean.copy_(value)


@contextlib.contextmanager
def _holding(network: nn.Module, weights: dict[str, torch.Tensor] | None) -> Iterator[None]:
    """The network holds ``weights`` inside the block and its own again after it (nothing
    changes when ``weights`` is None)."""
    if weights is None:
        yield
        return
    own = _clone_state(network)
    network.load_state_dict(weights)
    try:
        yield
    finally:
        network.load_state_dict(own)


def write_log_csv(path: Path, history: Sequence[dict[str, Any]]) -> None:
    """Rewrite the CSV log at ``path`` (atomically): a header of ``LOG_COLUMNS``, a row per epoch."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LOG_COLUMNS)
    for row in history:
        writer.writerow(["" if row[k] is None else repr(row[k]) for k in LOG_COLUMNS])
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue().encode())
