"""The training loop of every deep hasher: seeded mini-batches, Adam, a learning-rate schedule,
validation mAP with early stopping and best-epoch restore, checkpoints that resume bit for bit.

    trainer = Trainer(TrainerConfig(epochs=30, batch_size=128, random_state=0))
    result = trainer.fit(network, loss, ArrayDataset(X, y), validation=ArrayDataset(X_val, y_val))

Data
----
Training and validation data are *batch sources* (:class:`BatchSource`): anything with
``__len__``, ``labels`` (all labels, on the CPU) and ``get_batch(indices) -> (images, labels)``.
:class:`ArrayDataset` is the in-memory one; an image-folder reader only has to follow the same
protocol. The trainer sees nothing but the sources it is given: in particular it never sees a
query set, so model selection cannot leak test data.

Losses
------
The loss follows the :class:`~hashlearn.hashers.deep.losses.HashLoss` interface:
``loss.setup(n_train, n_bits, labels, generator)`` once before training (all training labels, on
the CPU; the loss is moved to the training device afterwards), ``loss(outputs, labels, indices)``
per batch on float32 outputs (under mixed precision too), and ``loss.on_epoch_end(epoch)`` after
each epoch with the 0-based index of the epoch just finished. Parameters of the loss, if any, are
trained with the network's.

Validation mAP
--------------
After each epoch the validation images are encoded and every validation item is used as a query
against *the other validation items* (leave-one-out: each query is removed from its own ranking),
ranked by Hamming distance with ties by position, relevance = shared label, full-ranking mAP as
:func:`hashlearn.evaluation.average_precision` defines it. We chose this over "validation queries
against training codes" because it is a function of held-out data only: training codes are fitted
to their own labels, so a database of them rewards memorisation, and its score would depend on
the training set as well as on the model. Leave-one-out mAP measures what retrieval needs, that
unseen items of the same label land close to each other, and costs one encoding of the
validation set per epoch instead of one of the training set.

Reproducibility
---------------
Given ``random_state``, the batch order, augmentation draws, the loss's ``setup`` generator and
the global torch generator used inside training (dropout) are all seeded; global random state is
left as it was (``torch.random.fork_rng``). On the CPU two runs give bit-identical weights, and a
run interrupted after epoch k and resumed from its checkpoint gives the same weights as an
uninterrupted one. The network's own initialisation is the caller's to seed (DeepHasher does).

Checkpoints
-----------
With ``checkpoint_dir``, after every epoch the trainer writes ``checkpoint-epochNNNNN.safetensors``
(network, best network, optimizer and loss tensors, random generator states as uint8 tensors) and
then ``checkpoint.json`` (epoch, history, early-stopping state, configuration fingerprint, SHA-256
of the tensor file), each atomically; the JSON file is the commit point, so a crash between the
two writes leaves the previous checkpoint valid. Nothing is pickled and nothing is read with
``torch.load``. A loss's state is its ``state_dict()``: buffers, and ``get_extra_state()`` if it
defines one (saved as JSON). State kept in plain attributes is not checkpointed.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from hashlearn._io import atomic_write
from hashlearn._validation import (
    check_float,
    check_images,
    check_int,
    check_labels,
    check_random_state,
)
from hashlearn.codes import pack_signs
from hashlearn.codes.ranking import average_precision, hamming_ranking, relevance_matrix
from hashlearn.exceptions import FileFormatError, InvalidInputError, UnknownNameError

if TYPE_CHECKING:
    from hashlearn.hashers.deep.losses import HashLoss

__all__ = [
    "LOG_COLUMNS",
    "LR_SCHEDULES",
    "ArrayDataset",
    "BatchSource",
    "TrainResult",
    "Trainer",
    "TrainerConfig",
    "augment_batch",
    "resolve_device",
    "scheduled_lr",
    "standardize",
    "validation_map",
]

LR_SCHEDULES = ("constant", "cosine", "step")
LOG_COLUMNS = ("epoch", "loss", "lr", "val_mAP", "seconds", "images_per_s")
CHECKPOINT_FORMAT = "hashlearn.checkpoint"
CHECKPOINT_FORMAT_VERSION = 1
CHECKPOINT_JSON = "checkpoint.json"
_CHECKPOINT_TENSORS = "checkpoint-epoch{:05d}.safetensors"

# Independent random streams derived from one seed (the batch order uses the seed itself, as the
# training loop always has, so results of earlier versions are reproduced).
_STREAM_LOSS = 1
_STREAM_GLOBAL = 2


# --------------------------------------------------------------------------------------------
# devices, schedules, augmentation, validation metric
# --------------------------------------------------------------------------------------------


def resolve_device(device: str) -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; otherwise any torch device string."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidInputError(
            f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:i]'"
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(f"device {device!r} was asked for but CUDA is not available")
    return resolved


def scheduled_lr(
    schedule: str,
    lr: float,
    epoch: int,
    epochs: int,
    *,
    step_size: int | None = None,
    gamma: float = 0.1,
) -> float:
    """Learning rate of (0-based) ``epoch`` out of ``epochs``; it is constant within an epoch.

    - ``"constant"``: ``lr``.
    - ``"cosine"``: ``lr (1 + cos(pi epoch / epochs)) / 2``, from ``lr`` towards 0 (Loshchilov
      & Hutter, "SGDR", ICLR 2017, without restarts).
    - ``"step"``: ``lr gamma ** (epoch // step_size)``; ``step_size=None`` means
      ``max(1, epochs // 3)``, two decays over a run.
    """
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
    if schedule == "step":
        size = max(1, epochs // 3) if step_size is None else step_size
        return lr * gamma ** (epoch // size)
    raise UnknownNameError(
        f"unknown lr_schedule {schedule!r}; available: {', '.join(LR_SCHEDULES)}"
    )


def augment_batch(images: torch.Tensor, generator: torch.Generator, padding: int) -> torch.Tensor:
    """Random crop with zero padding, then random horizontal flip, per image of a batch.

    Each image of ``images`` ``(b, c, h, w)`` is padded by ``padding`` pixels of zeros on every
    side (zero is the mean colour of standardised images), cropped back to ``h x w`` at an offset
    drawn uniformly from ``[0, 2 padding]^2``, and mirrored left-right with probability 1/2. All
    draws come from ``generator`` (a CPU generator): 1 uniform and 2 integers per image. Returns a
    new tensor; ``images`` is not modified.
    """
    b, c, h, w = images.shape
    flip = torch.rand(b, generator=generator) < 0.5
    offsets = torch.randint(0, 2 * padding + 1, (b, 2), generator=generator)
    device = images.device
    padded = nn.functional.pad(images, (padding, padding, padding, padding))
    rows = offsets[:, :1] + torch.arange(h)  # (b, h)
    cols = offsets[:, 1:] + torch.arange(w)  # (b, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    rows, cols = rows.to(device), cols.to(device)
    batch = torch.arange(b, device=device)[:, None, None, None]
    channel = torch.arange(c, device=device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


def validation_map(
    codes: np.ndarray, labels: np.ndarray, *, chunk_size: int | None = None
) -> float:
    """Leave-one-out mAP of a validation set against itself.

    Every item is a query against the ``n - 1`` others: the full Hamming ranking of the set
    (:func:`hashlearn.evaluation.hamming_ranking`, ties by position) with the query itself
    removed, relevance by shared label (:func:`hashlearn.evaluation.relevance_matrix`), average
    precision over that ranking (:func:`hashlearn.evaluation.average_precision`), mean over
    queries (queries with no relevant item count as 0).

    Parameters
    ----------
    codes : numpy.ndarray of dtype uint8 and shape (n, n_bytes)
        Packed codes, ``n >= 2``.
    labels : array-like of shape (n,) or (n, n_classes)
        Class labels or multi-label indicators.
    chunk_size : int or None
        Queries ranked at once; None keeps the temporaries around 64 MiB.

    Returns
    -------
    float in [0, 1]
    """
    n = len(codes)
    if n < 2:
        raise InvalidInputError(f"validation mAP needs at least 2 items, got {n}")
    labels = np.asarray(labels)
    if len(labels) != n:
        raise InvalidInputError(f"{len(labels)} validation labels for {n} codes")
    rows = chunk_size or max(1, (64 * 2**20) // (24 * n))
    total = 0.0
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        _, order = hamming_ranking(codes[start:stop], codes)
        others = order != np.arange(start, stop)[:, None]
        order = order[others].reshape(stop - start, n - 1)
        relevant = np.take_along_axis(relevance_matrix(labels[start:stop], labels), order, axis=1)
        total += float(average_precision(relevant).sum())
    return total / n


def standardize(
    images: np.ndarray, mean: np.ndarray | None, std: np.ndarray | None
) -> torch.Tensor:
    """``(n, h, w, c)`` float32 -> ``(n, c, h, w)`` float32 tensor, ``(x - mean) / std`` per channel
    when ``mean`` and ``std`` (``(c,)`` float32) are given."""
    if mean is not None and std is not None:
        images = (images - mean) / std
    return (
        torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
        .permute(0, 3, 1, 2)
        .contiguous()
    )


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


@runtime_checkable
class BatchSource(Protocol):
    """What the trainer reads data through; arrays and image folders alike.

    ``labels``: all labels, a CPU tensor, ``(n,)`` int64 class labels or ``(n, c)`` float32
    multi-label indicators (the losses' ``setup`` needs them all, and validation ranks by them).
    ``get_batch(indices)``: ``indices`` a ``(b,)`` int64 tensor of positions, on the training
    device (the CPU or a GPU: a source that reads from disk calls ``indices.tolist()``); returns
    images ``(b, c, h, w)`` float32 and their labels, on any device (the trainer moves them).
    """

    @property
    def labels(self) -> torch.Tensor: ...

    def __len__(self) -> int: ...

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


class ArrayDataset:
    """Images and labels held in memory as tensors (on the CPU until :meth:`to` moves them).

    Parameters
    ----------
    images : array-like of shape (n, h, w) or (n, h, w, c)
        Float images; stored as ``(n, c, h, w)`` float32, standardised when ``mean``/``std`` given.
    labels : array-like of shape (n,) or (n, n_classes)
        Integer class labels, or multi-label 0/1 indicators (stored as float32).
    mean, std : numpy.ndarray of shape (c,), optional
        Per-channel standardisation; both or neither.
    """

    def __init__(
        self,
        images: Any,
        labels: Any,
        *,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        name: str = "images",
    ) -> None:
        array = check_images(images, name)
        y = check_labels(labels, len(array), f"labels of {name}")
        self.images = standardize(array, mean, std)
        self._labels = torch.from_numpy(y if y.ndim == 1 else y.astype(np.float32))
        self._device_labels = self._labels

    @property
    def labels(self) -> torch.Tensor:
        return self._labels

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(c, h, w)``."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def __len__(self) -> int:
        return len(self.images)

    def to(self, device: torch.device) -> ArrayDataset:
        """Move images and batch labels to ``device`` (``labels`` stays on the CPU); returns self."""
        self.images = self.images.to(device)
        self._device_labels = self._labels.to(device)
        return self

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        indices = indices.to(self.images.device, non_blocking=True)
        # Indexing (not index_select) keeps the strides of the stored tensor; for one channel,
        # those are the ones the network was always trained with (conv kernels round by layout).
        return self.images[indices], self._device_labels[indices]


# --------------------------------------------------------------------------------------------
# configuration and result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainerConfig:
    """Settings of a training run; checked when built (bad values raise InvalidInputError,
    an unknown schedule name UnknownNameError).

    Parameters
    ----------
    epochs : int >= 1
        Passes over the training data (fewer when early stopping ends the run).
    batch_size : int >= 2
        Mini-batch size; a last batch of a single sample is skipped (pairwise losses need 2).
    lr, weight_decay : float
        Adam's learning rate (> 0) and L2 weight decay (>= 0).
    lr_schedule : {"constant", "cosine", "step"}
        Per-epoch learning rate, see :func:`scheduled_lr`; ``lr_step_size`` and ``lr_gamma``
        parametrise ``"step"``.
    patience : int >= 1 or None
        Stop after this many epochs without a better validation mAP; None trains all epochs.
        Needs validation data.
    augment : bool
        Random crop (``augment_padding`` pixels, None: 1/8 of the smaller image side) and
        horizontal flip of every training batch (:func:`augment_batch`). Meant for natural
        colour images; a mirrored digit is another symbol.
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda[:i]"``.
    amp : bool
        Mixed precision (``torch.autocast``, bfloat16 where supported, else float16 with a
        gradient scaler) on CUDA; ignored on the CPU. The loss is computed in float32.
    random_state : int or None
        Seed of everything random in training (None: fresh entropy, reported in the result).
    verbose : bool
        A progress bar over epochs with the loss and the validation mAP.
    checkpoint_dir : path or None
        Write a checkpoint there after every epoch (created if missing).
    resume : bool
        Continue from the checkpoint in ``checkpoint_dir`` if there is one (its configuration
        must match); start afresh if there is none.
    log_csv : path or None
        Rewrite this CSV file (atomically) after every epoch with the rows of the history.
    description : str
        Label of the progress bar.
    """

    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    lr_step_size: int | None = None
    lr_gamma: float = 0.1
    patience: int | None = None
    augment: bool = False
    augment_padding: int | None = None
    device: str = "auto"
    amp: bool = True
    random_state: int | None = None
    verbose: bool = False
    checkpoint_dir: str | os.PathLike[str] | None = None
    resume: bool = False
    log_csv: str | os.PathLike[str] | None = None
    description: str = "training"
    eval_batch_size: int = 1024

    def __post_init__(self) -> None:
        check_int(self.epochs, "epochs", minimum=1, maximum=100_000)
        check_int(self.batch_size, "batch_size", minimum=2)
        check_float(self.lr, "lr", minimum=0.0, strict_minimum=True)
        check_float(self.weight_decay, "weight_decay", minimum=0.0)
        if not isinstance(self.lr_schedule, str) or self.lr_schedule not in LR_SCHEDULES:
            raise UnknownNameError(
                f"unknown lr_schedule {self.lr_schedule!r}; available: {', '.join(LR_SCHEDULES)}"
            )
        if self.lr_step_size is not None:
            check_int(self.lr_step_size, "lr_step_size", minimum=1)
        check_float(self.lr_gamma, "lr_gamma", minimum=0.0, strict_minimum=True)
        if self.patience is not None:
            check_int(self.patience, "patience", minimum=1)
        if self.augment_padding is not None:
            check_int(self.augment_padding, "augment_padding", minimum=0)
        for flag in ("augment", "amp", "verbose", "resume"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidInputError(
                    f"{flag} must be True or False, got {getattr(self, flag)!r}"
                )
        if not isinstance(self.device, str):
            raise InvalidInputError(f"device must be a string such as 'auto', got {self.device!r}")
        check_random_state(self.random_state)
        for name in ("checkpoint_dir", "log_csv"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise InvalidInputError(f"{name} must be a path or None, got {value!r}")
        if self.resume and self.checkpoint_dir is None:
            raise InvalidInputError("resume=True needs a checkpoint_dir to resume from")
        check_int(self.eval_batch_size, "eval_batch_size", minimum=1)


@dataclass
class TrainResult:
    """What a run did. ``history``: one dict per epoch with the keys of ``LOG_COLUMNS``
    (``epoch`` counts from 1; ``val_mAP`` is None without validation data). ``best_epoch``: the
    epoch whose weights the network holds at the end (the best validation mAP, first one on
    ties; the last epoch without validation data)."""

    history: list[dict[str, Any]]
    best_epoch: int
    best_val_map: float | None
    stopped_early: bool
    seed: int
    seconds: float
    resumed_from: int = 0


# --------------------------------------------------------------------------------------------
# the trainer
# --------------------------------------------------------------------------------------------


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
        """
        config = self.config
        start = time.perf_counter()
        train = _as_source(train, "training images")
        validation = None if validation is None else _as_source(validation, "validation images")
        _check_sources(train, validation)
        if config.patience is not None and validation is None:
            raise InvalidInputError(
                f"patience={config.patience} (early stopping) needs validation data"
            )
        if config.log_csv is not None and not Path(config.log_csv).parent.is_dir():
            raise InvalidInputError(
                f"log_csv: folder {str(Path(config.log_csv).parent)!r} does not exist"
            )
        device = resolve_device(config.device)
        checkpoint = None
        if config.resume:
            checkpoint = _read_checkpoint(Path(config.checkpoint_dir))  # type: ignore[arg-type]
        seed = check_random_state(config.random_state)
        if seed is None:  # a resumed run keeps its seed; a new one draws fresh entropy
            seed = (
                int(checkpoint[0]["seed"])
                if checkpoint is not None
                else int(np.random.SeedSequence().entropy % (2**32))
            )
        for source in (train, validation):
            if isinstance(source, ArrayDataset):
                source.to(device)
        network.to(device)

        cuda_devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda_devices):
            run = _Run(config, network, loss, train, validation, device, seed)
            if checkpoint is not None:
                run.restore(*checkpoint)
            resumed_from = run.state.epoch
            with tqdm(
                total=config.epochs,
                initial=run.state.epoch,
                desc=config.description,
                unit="epoch",
                disable=not config.verbose,
                leave=False,
            ) as bar:
                while not run.state.finished:
                    row = run.epoch()
                    bar.update(1)
                    bar.set_postfix(
                        {k: f"{row[k]:.4f}" for k in ("loss", "val_mAP") if row[k] is not None}
                    )
            if run.state.best_network is not None:
                network.load_state_dict(run.state.best_network)
        network.eval()
        return TrainResult(
            history=run.state.history,
            best_epoch=run.state.best_epoch,
            best_val_map=run.state.best_map,
            stopped_early=run.state.stopped_early,
            seed=seed,
            seconds=time.perf_counter() - start,
            resumed_from=resumed_from,
        )


@dataclass
class _RunState:
    """What changes from epoch to epoch (besides weights and random generators)."""

    epoch: int = 0  # epochs completed
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_map: float | None = None
    since_best: int = 0
    finished: bool = False
    stopped_early: bool = False
    best_network: dict[str, torch.Tensor] | None = None  # with validation data only


class _Run:
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
    ) -> None:
        self.config, self.network, self.loss = config, network, loss
        self.train, self.validation, self.device = train, validation, device
        (_, h, w), n_bits = _probe(network, train, device)
        self.padding = (
            max(1, round(min(h, w) / 8))
            if config.augment_padding is None
            else config.augment_padding
        )
        self.seed = seed
        self.fingerprint = self._fingerprint(n_bits)

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
        self.state = _RunState(finished=False)

    # -- one epoch --------------------------------------------------------------------------

    def epoch(self) -> dict[str, Any]:
        """Train one epoch, validate, log, checkpoint; return the epoch's row of the history."""
        config, state = self.config, self.state
        start = time.perf_counter()
        row = self._train_epoch()
        self.loss.on_epoch_end(state.epoch)
        state.epoch += 1
        if self.validation is not None:
            row["val_mAP"] = validation_map(
                _encode(self.network, self.validation, self.device, config.eval_batch_size),
                self.validation.labels.numpy(),
            )
            if state.best_map is None or row["val_mAP"] > state.best_map:
                state.best_map, state.best_epoch, state.since_best = row["val_mAP"], state.epoch, 0
                state.best_network = _clone_state(self.network)
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
        if config.log_csv is not None:
            _write_csv(Path(config.log_csv), state.history)
        if config.checkpoint_dir is not None:
            self.save(Path(config.checkpoint_dir))
        return row

    def _train_epoch(self) -> dict[str, Any]:
        """One pass over the training data in seeded random batches (no host sync per batch)."""
        config, network, device = self.config, self.network, self.device
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
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        network.train()
        n = len(self.train)
        generator = self.generators["order"]
        order = torch.randperm(n, generator=generator).to(device)
        total = torch.zeros((), dtype=torch.float64, device=device)
        batches = seen = 0
        autocast = (
            torch.autocast(device_type="cuda", dtype=self.amp_dtype)
            if self.amp
            else contextlib.nullcontext()
        )
        for begin in range(0, n, config.batch_size):
            stop = min(begin + config.batch_size, n)
            if stop - begin < 2:  # pairwise losses need two samples
                continue
            indices = order[begin:stop]
            images, labels = self.train.get_batch(indices)
            images = images.to(device, non_blocking=True)
            labels = labels.to(device, non_blocking=True)
            if config.augment:
                images = augment_batch(images, generator, self.padding)
            with autocast:
                outputs = network(images)
            value = self.loss(outputs.float(), labels, indices)
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(value).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                value.backward()
                self.optimizer.step()
            total += value.detach()
            batches += 1
            seen += stop - begin
        mean_loss = total.item() / max(batches, 1)  # the epoch's one synchronisation
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

    # -- checkpoints ------------------------------------------------------------------------

    def _fingerprint(self, n_bits: int) -> dict[str, Any]:
        """What must match for a checkpoint to continue this run."""
        config, validation = self.config, self.validation
        return {
            "seed": self.seed,
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "lr": config.lr,
            "weight_decay": config.weight_decay,
            "lr_schedule": config.lr_schedule,
            "lr_step_size": config.lr_step_size,
            "lr_gamma": config.lr_gamma,
            "augment": config.augment,
            "augment_padding": self.padding if config.augment else None,
            "n_train": len(self.train),
            "n_bits": n_bits,
            "train_labels": _tensor_digest(self.train.labels),
            "n_validation": None if validation is None else len(validation),
            "validation_labels": None if validation is None else _tensor_digest(validation.labels),
            "network": type(self.network).__name__,
            "loss": type(self.loss).__name__,
        }

    def save(self, directory: Path) -> None:
        """Write the tensor file, then the JSON file that commits it; drop older tensor files."""
        from safetensors.torch import save as save_safetensors

        state = self.state
        directory.mkdir(parents=True, exist_ok=True)
        tensors: dict[str, torch.Tensor] = {}
        for key, value in self.network.state_dict().items():
            tensors[f"network.{key}"] = value
        for key, value in (state.best_network or {}).items():
            tensors[f"best_network.{key}"] = value
        loss_extra: dict[str, Any] = {}
        for key, value in self.loss.state_dict().items():
            if isinstance(value, torch.Tensor):
                tensors[f"loss.{key}"] = value
            else:  # get_extra_state()
                loss_extra[key] = value
        optimizer_extra: dict[str, dict[str, Any]] = {}
        for index, values in self.optimizer.state_dict()["state"].items():
            for key, value in values.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"optimizer.{index}.{key}"] = value
                else:
                    optimizer_extra.setdefault(str(index), {})[key] = value
        tensors["rng.global"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        for name, generator in self.generators.items():
            tensors[f"rng.{name}"] = generator.get_state()
        tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
        payload = save_safetensors(tensors)
        tensors_name = _CHECKPOINT_TENSORS.format(state.epoch)
        with atomic_write(directory / tensors_name) as handle:
            handle.write(payload)
        document = {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "epoch": state.epoch,
            "seed": self.seed,
            "fingerprint": self.fingerprint,
            "tensors_file": tensors_name,
            "tensors_sha256": hashlib.sha256(payload).hexdigest(),
            "history": state.history,
            "best_epoch": state.best_epoch,
            "best_val_map": state.best_map,
            "epochs_since_best": state.since_best,
            "finished": state.finished,
            "stopped_early": state.stopped_early,
            "optimizer_extra": optimizer_extra,
            "loss_extra": loss_extra,
            "grad_scaler": None if self.scaler is None else self.scaler.state_dict(),
        }
        try:
            text = json.dumps(document, indent=1, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"cannot checkpoint this run: a loss or optimizer state value is not JSON: {exc}"
            ) from None
        with atomic_write(directory / CHECKPOINT_JSON) as handle:
            handle.write(text.encode())
        for old in directory.glob("checkpoint-epoch*.safetensors"):
            if old.name != tensors_name:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()

    def restore(self, document: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        """Continue from a checkpoint read by :func:`_read_checkpoint`."""
        saved = document["fingerprint"]
        differences = [
            f"{key}: checkpoint {saved.get(key)!r}, now {value!r}"
            for key, value in self.fingerprint.items()
            if saved.get(key) != value
        ]
        if differences:
            raise InvalidInputError(
                "the checkpoint in checkpoint_dir is of a different run; "
                + "; ".join(differences)
                + " (use another checkpoint_dir, or resume=False to start afresh)"
            )

        def group(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

        optimizer_state: dict[int, dict[str, Any]] = {}
        for key, value in group("optimizer.").items():
            index, name = key.split(".", 1)
            optimizer_state.setdefault(int(index), {})[name] = value
        for index, values in document.get("optimizer_extra", {}).items():
            optimizer_state.setdefault(int(index), {}).update(values)
        try:
            self.network.load_state_dict(group("network."))
            self.loss.load_state_dict({**group("loss."), **document.get("loss_extra", {})})
            self.optimizer.load_state_dict(
                {
                    "state": optimizer_state,
                    "param_groups": self.optimizer.state_dict()["param_groups"],
                }
            )
        except (RuntimeError, KeyError, ValueError) as exc:
            raise InvalidInputError(
                f"the checkpoint does not fit this network, loss or optimizer: {exc}"
            ) from None
        if self.scaler is not None and document.get("grad_scaler"):
            self.scaler.load_state_dict(document["grad_scaler"])
        torch.set_rng_state(tensors["rng.global"])
        if self.device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        for name, generator in self.generators.items():
            generator.set_state(tensors[f"rng.{name}"])
        best = group("best_network.")
        self.state = _RunState(
            epoch=int(document["epoch"]),
            history=list(document["history"]),
            best_epoch=int(document["best_epoch"]),
            best_map=document["best_val_map"],
            since_best=int(document["epochs_since_best"]),
            finished=bool(document["finished"]),
            stopped_early=bool(document["stopped_early"]),
            best_network={k: v.to(self.device) for k, v in best.items()} if best else None,
        )


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _stream_seed(seed: int, stream: int) -> int:
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0] >> 1)


def _tensor_digest(tensor: torch.Tensor) -> str:
    array = tensor.detach().cpu().contiguous().numpy()
    return hashlib.sha256(
        array.tobytes() + str(array.dtype).encode() + str(array.shape).encode()
    ).hexdigest()


def _as_source(data: Any, name: str) -> BatchSource:
    if isinstance(data, tuple) and len(data) == 2:
        return ArrayDataset(data[0], data[1], name=name)
    if isinstance(data, BatchSource):
        return data
    raise InvalidInputError(
        f"{name} must be a BatchSource (such as ArrayDataset) or a tuple (images, labels), "
        f"got {type(data).__name__}"
    )


def _check_sources(train: BatchSource, validation: BatchSource | None) -> None:
    if len(train) < 2:
        raise InvalidInputError(f"training needs at least 2 images, got {len(train)}")
    if validation is None:
        return
    if len(validation) < 2:
        raise InvalidInputError(f"validation needs at least 2 images, got {len(validation)}")
    if validation.labels.shape[1:] != train.labels.shape[1:]:
        raise InvalidInputError(
            f"validation labels have shape {tuple(validation.labels.shape)}, training labels "
            f"{tuple(train.labels.shape)}: both must be class labels, or indicators of the same "
            "classes"
        )


def _probe(
    network: nn.Module, source: BatchSource, device: torch.device
) -> tuple[tuple[int, int, int], int]:
    """``(c, h, w)`` of the images and the number of outputs per image, from one image in eval
    mode (changes no state)."""
    was_training = network.training
    network.eval()
    with torch.no_grad():
        images, _ = source.get_batch(torch.zeros(1, dtype=torch.int64))
        outputs = network(images.to(device))
    network.train(was_training)
    if outputs.ndim != 2 or outputs.shape[0] != 1:
        raise InvalidInputError(
            f"the network must map (b, c, h, w) images to (b, n_bits) outputs; one image gave "
            f"shape {tuple(outputs.shape)}"
        )
    c, h, w = images.shape[1:]
    return (int(c), int(h), int(w)), int(outputs.shape[1])


def _encode(
    network: nn.Module, source: BatchSource, device: torch.device, batch_size: int
) -> np.ndarray:
    """Packed codes of every item of ``source`` (float32 outputs, eval mode)."""
    network.eval()
    n = len(source)
    chunks = []
    with torch.inference_mode():
        for begin in range(0, n, batch_size):
            images, _ = source.get_batch(torch.arange(begin, min(begin + batch_size, n)))
            chunks.append(network(images.to(device)).float().cpu().numpy())
    return pack_signs(np.concatenate(chunks))


def _clone_state(network: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in network.state_dict().items()}


def _write_csv(path: Path, history: Sequence[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LOG_COLUMNS)
    for row in history:
        writer.writerow(["" if row[k] is None else repr(row[k]) for k in LOG_COLUMNS])
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue().encode())


def _read_checkpoint(directory: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]] | None:
    """The checkpoint in ``directory``, or None when there is none. Raises FileFormatError."""
    from safetensors.torch import load as load_safetensors

    path = directory / CHECKPOINT_JSON
    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileFormatError(f"{str(path)!r} is not a readable checkpoint: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != CHECKPOINT_FORMAT:
        raise FileFormatError(f"{str(path)!r} is not a hashlearn checkpoint")
    if document.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        raise FileFormatError(
            f"{str(path)!r} has checkpoint format version {document.get('format_version')!r}; "
            f"this hashlearn reads version {CHECKPOINT_FORMAT_VERSION}"
        )
    name = document.get("tensors_file")
    if not isinstance(name, str) or Path(name).name != name:
        raise FileFormatError(f"{str(path)!r} names no valid tensor file: {name!r}")
    tensors_path = directory / name
    try:
        payload = tensors_path.read_bytes()
    except FileNotFoundError:
        raise FileFormatError(
            f"the checkpoint's tensor file {str(tensors_path)!r} is missing"
        ) from None
    if hashlib.sha256(payload).hexdigest() != document.get("tensors_sha256"):
        raise FileFormatError(
            f"{str(tensors_path)!r} is corrupted: it does not match its SHA-256 in {CHECKPOINT_JSON}"
        )
    try:
        tensors = load_safetensors(payload)
    except Exception as exc:  # safetensors raises its own error type for damaged data
        raise FileFormatError(f"{str(tensors_path)!r} is damaged: {exc}") from None
    return document, tensors
