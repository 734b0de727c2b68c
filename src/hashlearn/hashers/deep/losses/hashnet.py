"""HashNet's weighted pairwise likelihood with continuation (Cao, Long, Wang & Yu, ICCV 2017)."""

from __future__ import annotations

from typing import Any

import torch

from hashlearn._validation import check_float, check_int
from hashlearn.hashers.deep.losses.base import HashLoss, check_batch
from hashlearn.hashers.deep.losses.pairs import (
    balanced_mean,
    pair_likelihood,
    pairwise_similarity,
    upper_pairs,
)

__all__ = ["HashNetLoss"]


class HashNetLoss(HashLoss):
    """HashNet (Cao, Long, Wang & Yu, "HashNet: Deep Learning to Hash by Continuation", ICCV 2017).

    ``h = tanh(beta z)`` and, over the unordered pairs ``i < j`` of the batch, the weighted
    likelihood ``sum_ij w_ij (log(1 + exp(alpha <h_i, h_j>)) - alpha s_ij <h_i, h_j>) / |S|``
    with ``w_ij = |S| / |S_1|`` on similar and ``|S| / |S_0|`` on dissimilar pairs, counted per
    batch (so the loss is the mean over similar pairs plus the mean over dissimilar pairs).
    ``alpha`` defaults to ``10 / n_bits``.

    Continuation: ``beta = beta0 (1 + gamma t)^power`` with ``t`` the iteration counter rounded
    down to a multiple of ``step`` (``beta`` changes every ``step`` iterations). ``iteration``
    counts the forward calls made in training mode and is part of ``state_dict()``.
    """

    def __init__(
        self,
        alpha: float | None = None,
        beta0: float = 1.0,
        gamma: float = 0.005,
        step: int = 200,
        power: float = 0.5,
    ) -> None:
        super().__init__()
        self.alpha = (
            None if alpha is None else check_float(alpha, "alpha", minimum=0.0, strict_minimum=True)
        )
        self.beta0 = check_float(beta0, "beta0", minimum=0.0, strict_minimum=True)
        self.gamma = check_float(gamma, "gamma", minimum=0.0)
        self.step = check_int(step, "step", minimum=1)
        self.power = check_float(power, "power", minimum=0.0)
        self.iteration = 0

    @classmethod
    def for_code_length(cls, n_bits: int, **params: Any) -> HashNetLoss:
        """``alpha = 10 / n_bits`` unless ``params`` gives one (None counts as not given)."""
        if params.get("alpha") is None:
            params["alpha"] = 10.0 / n_bits
        return cls(**params)

    def get_extra_state(self) -> dict[str, int]:
        """The iteration counter, so that checkpoints (``state_dict``) resume the schedule."""
        return {"iteration": self.iteration}

    def set_extra_state(self, state: dict[str, int]) -> None:
        self.iteration = int(state["iteration"])

    @property
    def beta(self) -> float:
        """The current scale of ``tanh(beta z)``."""
        t = (self.iteration // self.step) * self.step
        return self.beta0 * (1.0 + self.gamma * t) ** self.power

    def forward(
        self, outputs: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:
        check_batch(self, outputs, labels, min_size=2)
        alpha = 10.0 / outputs.shape[1] if self.alpha is None else self.alpha
        h = torch.tanh(self.beta * outputs)
        inner = alpha * (h @ h.T)
        similarity = pairwise_similarity(labels).to(outputs.dtype)
        upper = upper_pairs(len(outputs), outputs.device)
        loss = balanced_mean(pair_likelihood(inner, similarity)[upper], similarity[upper])
        if self.training:
            self.iteration += 1
        return loss
