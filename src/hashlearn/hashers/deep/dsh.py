"""Deep Supervised Hashing (Liu, Wang, Shan & Chen, "Deep Supervised Hashing for Fast Image
Retrieval", CVPR 2016): a CNN with real-valued outputs trained on all pairs of each mini-batch with a
contrastive margin loss and an L1 regulariser pulling outputs towards +-1; codes are their signs."""

from __future__ import annotations

from torch import nn

from hashlearn._validation import check_float
from hashlearn.hashers.deep.base import DeepHasher
from hashlearn.hashers.deep.losses import DSHLoss


class DSH(DeepHasher):
    """Deep Supervised Hashing.

    Parameters
    ----------
    n_bits : code length.
    margin : contrastive margin m on squared Euclidean distance; default ``2 * n_bits``.
    alpha : weight of the regulariser ``|| |b| - 1 ||_1`` (paper: 0.01).
    backbone : network name (see ``hashlearn.hashers.deep.backbones.list_backbones``).
    epochs, batch_size, lr, weight_decay : Adam training schedule (batch 128 as the paper).
    device : ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda[:i]"``.
    random_state : seed of initialisation and batch order; the same seed reproduces the codes on CPU.
    verbose : show a progress bar with the loss per epoch.
    """

    name = "dsh"

    def __init__(
        self,
        n_bits: int = 12,
        *,
        margin: float | None = None,
        alpha: float = 0.01,
        backbone: str = "small-cnn",
        epochs: int = 30,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        device: str = "auto",
        random_state: int | None = None,
        verbose: bool = True,
    ) -> None:
        self.n_bits = n_bits
        self.margin = margin
        self.alpha = alpha
        self.backbone = backbone
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _make_loss(self) -> nn.Module:
        n_bits = self._check_n_bits()
        margin = (
            2.0 * n_bits
            if self.margin is None
            else check_float(self.margin, "margin", minimum=0.0, strict_minimum=True)
        )
        return DSHLoss(margin=margin, alpha=check_float(self.alpha, "alpha", minimum=0.0))
