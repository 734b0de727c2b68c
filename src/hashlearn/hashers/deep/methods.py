"""Deep hashing methods that are a backbone plus one loss of :mod:`hashlearn.hashers.deep.losses`.

Each class only names its loss; every parameter is :class:`~hashlearn.hashers.deep.base.DeepHasher`'s,
and ``loss_params`` overrides the loss's paper defaults, e.g.
``create_hasher("dpsh", n_bits=32, loss_params={"eta": 0.1})``. The papers and the loss formulas
are in the docstrings of the loss classes.
"""

from __future__ import annotations

from torch import nn

from hashlearn.hashers.deep.augment import Augmentation, TwoViews
from hashlearn.hashers.deep.base import DeepHasher
from hashlearn.hashers.deep.losses.base import HashLoss
from hashlearn.hashers.deep.losses.bihalf import pixel_targets
from hashlearn.hashers.deep.losses.combined import CombinedLoss
from hashlearn.hashers.deep.trainer.data import ArrayDataset


class DSH(DeepHasher):
    """Deep Supervised Hashing (Liu, Wang, Shan & Chen, "Deep Supervised Hashing for Fast Image
    Retrieval", CVPR 2016): real-valued outputs trained on all pairs of each mini-batch with a
    contrastive margin loss on squared Euclidean distance plus ``alpha || |b| - 1 ||_1`` pulling
    outputs towards +-1; codes are their signs. ``loss_params``: ``margin`` (default
    ``2 * n_bits``) and ``alpha`` (default 0.01, the paper's). See ``DSHLoss``."""

    name = "dsh"
    loss_name = "dsh"


class DPSH(DeepHasher):
    """Deep Pairwise-Supervised Hashing (Li, Wang & Kang, IJCAI 2016): pairwise negative
    log-likelihood of ``sigmoid(u_i^T u_j / 2)`` against a memory of all training outputs, plus
    ``eta ||b - u||^2`` quantisation (``eta = 0.1``). See ``DPSHLoss``."""

    name = "dpsh"
    loss_name = "dpsh"


class HashNet(DeepHasher):
    """HashNet (Cao, Long, Wang & Yu, ICCV 2017): class-balanced weighted pairwise likelihood on
    ``tanh(beta z)`` with ``beta`` raised during training (continuation). See ``HashNetLoss``."""

    name = "hashnet"
    loss_name = "hashnet"
    output_activation = "tanh"


class DSDH(DeepHasher):
    """Deep Supervised Discrete Hashing (Li, Sun, He & Tan, NIPS 2017): pairwise likelihood plus
    a linear classifier on discrete codes updated by cyclic coordinate descent after each epoch.
    See ``DSDHLoss``."""

    name = "dsdh"
    loss_name = "dsdh"


class DCH(DeepHasher):
    """Deep Cauchy Hashing (Cao, Long, Liu & Wang, CVPR 2018): class-balanced cross-entropy of a
    Cauchy probability of the normalised Hamming distance, plus Cauchy quantisation. See
    ``DCHLoss``."""

    name = "dch"
    loss_name = "dch"
    output_activation = "tanh"


class CSQ(DeepHasher):
    """Central Similarity Quantization (Yuan et al., CVPR 2020): each class is pulled to a hash
    centre (Hadamard rows when possible, else random centres far apart). See ``CSQLoss``."""

    name = "csq"
    loss_name = "csq"
    output_activation = "tanh"


class BiHalf(DeepHasher):
    """Bi-half Net (Li & van Gemert, AAAI 2021), unsupervised: ``fit(X)`` needs no labels. Codes
    from the bi-half layer (per bit, half of the batch +1, half -1) are trained so that their
    cosine similarities match the images' centred pixel similarities (the paper uses a
    pre-trained VGG-16's features). See ``BiHalfLoss``."""

    name = "bihalf"
    loss_name = "bihalf"
    supervised = False

    def _prepare_loss(self, loss: HashLoss, train: ArrayDataset) -> None:
        main = loss.main if isinstance(loss, CombinedLoss) else loss
        main.set_targets(pixel_targets(train.images.cpu()))


class CIBHash(DeepHasher):
    """CIBHash (Qiu et al., IJCAI 2021), unsupervised: ``fit(X)`` needs no labels. The network
    sees two random views of each image (crop, flip for colour images, colour jitter; see
    ``hashlearn.hashers.deep.augment``) and their stochastic codes are pulled together against
    the rest of the batch (NT-Xent) under a KL bottleneck. See ``CIBHashLoss``."""

    name = "cibhash"
    loss_name = "cibhash"
    supervised = False

    def _build_network(self, image_shape: tuple[int, ...]) -> nn.Module:
        flip = 0.5 if image_shape[-1] == 3 else 0.0  # a mirrored digit is another symbol
        return TwoViews(super()._build_network(image_shape), Augmentation(flip=flip))
