"""The settings of a training run, checked when built, and the learning-rate schedules."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from hashlearn._validation import check_float, check_int, check_random_state
from hashlearn.exceptions import InvalidInputError, UnknownNameError

__all__ = ["LR_SCHEDULES", "TrainerConfig", "scheduled_lr", "swa_start"]

LR_SCHEDULES = ("constant", "cosine", "step")


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


def swa_start(swa: float, epochs: int) -> int | None:
    """The first epoch (counted from 1) whose weights stochastic weight averaging takes in: the
    last ``ceil(swa * epochs)`` epochs are averaged; None when ``swa`` is 0 (off)."""
    if swa == 0:
        return None
    return epochs - max(1, math.ceil(swa * epochs - 1e-9)) + 1


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
    swa : float in [0, 1]
        Stochastic weight averaging (Izmailov et al., "Averaging Weights Leads to Wider Optima
        and Better Generalization", UAI 2018): the network ends holding the mean of its weights
        at the end of each of the last ``ceil(swa * epochs)`` epochs (see :func:`swa_start`);
        from the first of them on, validation scores that running mean, so the epoch kept with
        validation data is an average too. 0 (the default) averages nothing. The mean is of
        every floating-point tensor of the network's state (parameters and float buffers);
        other buffers keep their last values. Averaged BatchNorm statistics are those of the
        epochs averaged, not recomputed for the averaged weights.
    patience : int >= 1 or None
        Stop after this many epochs without a better validation mAP; None trains all epochs
        (the best one is kept all the same). Needs validation data.
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
    log_dir : path or None
        Write TensorBoard event files there (created if missing): loss, learning rate,
        validation mAP and bit balance per epoch (see
        :mod:`~hashlearn.hashers.deep.trainer.tensorboard_log`). Needs the ``tensorboard``
        package (``pip install 'hashlearn[tensorboard]'``).
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
    swa: float = 0.0
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
    log_dir: str | os.PathLike[str] | None = None
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
        check_float(self.swa, "swa", minimum=0.0, maximum=1.0)
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
        for name in ("checkpoint_dir", "log_csv", "log_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise InvalidInputError(f"{name} must be a path or None, got {value!r}")
        if self.resume and self.checkpoint_dir is None:
            raise InvalidInputError("resume=True needs a checkpoint_dir to resume from")
        check_int(self.eval_batch_size, "eval_batch_size", minimum=1)
