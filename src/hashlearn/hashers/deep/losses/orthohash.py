"""OrthoHash's loss: cross-entropy of scaled cosine similarities to binary orthogonal class codes
(Hoe, Ng, Zhang, Chan, Song & Xiang, NeurIPS 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hashlearn._validation import check_float
from hashlearn.hashers.deep.losses.base import check_batch
from hashlearn.hashers.deep.losses.dpn import ClassCodeLoss

__all__ = ["OrthoHashLoss"]


class OrthoHashLoss(ClassCodeLoss):
    """OrthoHash (Hoe, Ng, Zhang, Chan, Song & Xiang, "One Loss for All: Deep Hashing with a
    Single Cosine Similarity based Learning Objective", NeurIPS 2021), on the continuous codes
    ``v`` (the network's outputs; the OrthoHash hasher ends its network with the paper's batch
    normalisation layer, which balances the bits).

    Each class ``c`` has a binary code ``o_c`` in ``{-1, +1}^K`` (:func:`class_codes`; fair coin
    flips by default, the authors' ``codebook-method B``; with ``K`` large these are nearly
    orthogonal). With ``cos_ic = v_i . o_c / (||v_i|| sqrt(K))`` the loss is the softmax
    cross-entropy of the logits ``s (cos_ic - m [c = y_i])``: scale ``s``, additive cosine
    margin ``m`` on the true class (defaults ``s = 8``, ``m = 0.2``, the authors' code). For
    multi-label indicators the margin applies to every label of the sample and the target
    distribution is uniform over its labels (the paper's label smoothing); a sample without
    labels adds nothing. Plus ``lambda_q`` times the batch mean of ``1 - cos(v_i, sign(v_i))``
    with the sign held constant, the quantisation term of the authors' code, off by default
    (``quan 0``): maximising ``cos_iy`` already pulls ``v`` towards the binary ``o_y``, which is
    the paper's point.
    """

    def __init__(
        self,
        scale: float = 8.0,
        margin: float = 0.2,
        lambda_q: float = 0.0,
        codes: str = "bernoulli",
    ) -> None:
        super().__init__(codes)
        self.scale = check_float(scale, "scale", minimum=0.0, strict_minimum=True)
        self.margin = check_float(margin, "margin", minimum=0.0)
        self.lambda_q = check_float(lambda_q, "lambda_q", minimum=0.0)

    def forward(
        self, outputs: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:
        check_batch(self, outputs, labels, min_size=1)
        codebook = self.class_targets(outputs)
        cosine = F.normalize(outputs, dim=1) @ F.normalize(codebook, dim=1).T
        if labels.ndim == 1:
            target = F.one_hot(labels.long(), len(codebook)).to(outputs.dtype)
        else:
            target = labels.to(outputs.dtype)
        log_p = F.log_softmax(self.scale * (cosine - self.margin * target), dim=1)
        weights = target / target.sum(dim=1, keepdim=True).clamp_min(1.0)
        loss = -(weights * log_p).sum(dim=1).mean()
        if self.lambda_q:
            signs = torch.where(outputs >= 0, 1.0, -1.0).to(outputs.dtype)
            loss = loss + self.lambda_q * (1.0 - F.cosine_similarity(outputs, signs, dim=1)).mean()
        return loss
