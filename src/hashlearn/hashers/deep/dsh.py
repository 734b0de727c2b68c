"""Deep Supervised Hashing (Liu, Wang, Shan & Chen, "Deep Supervised Hashing for Fast Image
Retrieval", CVPR 2016): a CNN with real-valued outputs trained on all pairs of each mini-batch with a
contrastive margin loss and an L1 regulariser pulling outputs towards +-1; codes are their signs."""

from __future__ import annotations

import os
from typing import Any

from hashlearn._validation import check_float
from hashlearn.hashers.deep.base import DeepHasher
from hashlearn.hashers.deep.losses import DSHLoss, HashLoss


class DSH(DeepHasher):
    """Deep Supervised Hashing.

    Parameters
    ----------
    n_bits : code length.
    margin : contrastive margin m on squared Euclidean distance; default ``2 * n_bits``.
    alpha : weight of the regulariser ``|| |b| - 1 ||_1`` (paper: 0.01).
    backbone, backbone_params : network name (see
        ``hashlearn.hashers.deep.backbones.list_backbones``) and its extra arguments.
    epochs, batch_size, lr, weight_decay, lr_schedule, lr_step_size, lr_gamma : Adam training
        schedule (batch 128 as the paper).
    patience : early stopping on the validation mAP (``fit(X, y, X_val=..., y_val=...)``).
    augment : random crop and flip of training batches (colour images).
    device : ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda[:i]"``; amp: mixed precision on CUDA.
    random_state : seed of initialisation and batch order; the same seed reproduces the codes on CPU.
    verbose : show a progress bar with the loss (and validation mAP) per epoch.
    checkpoint_dir, log_csv : per-epoch checkpoints (``fit(..., resume=True)``) and CSV log.

    See :class:`~hashlearn.hashers.deep.base.DeepHasher` for the learned attributes.
    """

    name = "dsh"

    def __init__(
        self,
        n_bits: int = 12,
        *,
        margin: float | None = None,
        alpha: float = 0.01,
        regularizers: dict[str, float] | None = None,
        backbone: str = "small-cnn",
        backbone_params: dict[str, Any] | None = None,
        epochs: int = 30,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_schedule: str = "constant",
        lr_step_size: int | None = None,
        lr_gamma: float = 0.1,
        patience: int | None = None,
        augment: bool = False,
        device: str = "auto",
        amp: bool = True,
        random_state: int | None = None,
        verbose: bool = True,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        log_csv: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(
            n_bits,
            regularizers=regularizers,
            backbone=backbone,
            backbone_params=backbone_params,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            lr_schedule=lr_schedule,
            lr_step_size=lr_step_size,
            lr_gamma=lr_gamma,
            patience=patience,
            augment=augment,
            device=device,
            amp=amp,
            random_state=random_state,
            verbose=verbose,
            checkpoint_dir=checkpoint_dir,
            log_csv=log_csv,
        )
        self.margin = margin
        self.alpha = alpha

    def _make_loss(self) -> HashLoss:
        n_bits = self._check_n_bits()
        margin = (
            2.0 * n_bits
            if self.margin is None
            else check_float(self.margin, "margin", minimum=0.0, strict_minimum=True)
        )
        return DSHLoss(margin=margin, alpha=check_float(self.alpha, "alpha", minimum=0.0))
