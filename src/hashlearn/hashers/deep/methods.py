"""Deep hashing methods that are a backbone plus one loss of :mod:`hashlearn.hashers.deep.losses`.

Each class only names its loss; every parameter is :class:`~hashlearn.hashers.deep.base.DeepHasher`'s,
and ``loss_params`` overrides the loss's paper defaults, e.g.
``create_hasher("dpsh", n_bits=32, loss_params={"eta": 0.1})``. The papers and the loss formulas
are in the docstrings of the loss classes.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from hashlearn.hashers.deep.base import DeepHasher


class DSH(DeepHasher):
    """Deep Supervised Hashing (Liu, Wang, Shan & Chen, "Deep Supervised Hashing for Fast Image
    Retrieval", CVPR 2016): real-valued outputs trained on all pairs of each mini-batch with a
    contrastive margin loss on squared Euclidean distance plus ``alpha || |b| - 1 ||_1`` pulling
    outputs towards +-1; codes are their signs. ``loss_params``: ``margin`` (default
    ``2 * n_bits``, the paper's) and ``alpha`` (default 0.01: the paper's eq. 5 per pair, and the
    authors' released ``tradeoff: 0.01`` as their code trains it; the loss value their code
    prints corresponds to ``alpha = tradeoff / 2``, see ``DSHLoss``). ``preset="paper"``: the
    authors' released training settings."""

    name = "dsh"
    loss_name = "dsh"


class DPSH(DeepHasher):
    """Deep Pairwise-Supervised Hashing (Li, Wang & Kang, IJCAI 2016): pairwise negative
    log-likelihood of ``sigmoid(u_i^T u_j / 2)`` plus ``eta ||b - u||^2`` quantisation
    (``eta = 0.1``). By default the pairs are those inside each mini-batch and both terms are
    means over them, which weighs the quantisation term ``n_train / (batch_size - 1)`` times more
    than the paper at the same ``eta``; ``loss_params={"balance": "paper"}`` keeps the paper's
    balance with in-batch pairs, and ``{"memory": True}`` pairs each batch with a memory of all
    training outputs, as the paper and the authors' code do. See ``DPSHLoss`` for the three and
    why the default is what it is. ``preset="paper"``: the authors' released training
    settings."""

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
    The network's pairs are those inside each mini-batch by default (``memory_pairs=True``: each
    batch against the memory of all training outputs, as the authors' code); the memory of all
    outputs is kept either way for the code update. See ``DSDHLoss`` for the balance of its
    terms. ``preset="paper"``: the authors' released training settings."""

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


class OrthoHash(DeepHasher):
    """OrthoHash (Hoe et al., NeurIPS 2021): one loss, the cross-entropy of scaled cosine
    similarities (with a margin) between the outputs and binary class codes. The network ends
    with the paper's batch normalisation of the ``n_bits`` outputs (zero-mean, balanced bits);
    codes are the signs of the normalised outputs. See ``OrthoHashLoss``."""

    name = "orthohash"
    loss_name = "orthohash"

    def _build_network(self, image_shape: tuple[int, ...]) -> nn.Module:
        return nn.Sequential(
            OrderedDict(
                backbone=super()._build_network(image_shape),
                norm=nn.BatchNorm1d(self._check_n_bits()),
            )
        )


class GreedyHash(DeepHasher):
    """Greedy Hash (Su et al., NeurIPS 2018): a classifier on ``sign(h)`` trained with the
    gradient passed straight through the sign, plus ``alpha | |h| - 1 |^3``. Class labels only.
    See ``GreedyHashLoss``."""

    name = "greedyhash"
    loss_name = "greedyhash"


class DPN(DeepHasher):
    """Deep Polarized Network (Fan et al., IJCAI 2020): a bitwise hinge ``max(m - v t, 0)``
    pushes each output past the margin on the side of its class's random target bit. See
    ``DPNLoss``."""

    name = "dpn"
    loss_name = "dpn"
