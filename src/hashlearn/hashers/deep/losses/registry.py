"""Losses and regularisers by name: ``create_loss(name, n_bits, **params)``, ``list_losses()``,
``create_regularizer(name, weight)``, ``list_regularizers()``.

A new loss is one module in this package plus one ``LOSSES.register`` line here. Entries are
``"module:Class"`` strings imported when first built: this module imports neither torch nor any
loss.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from hashlearn._registry import Registry
from hashlearn._validation import check_int
from hashlearn.exceptions import InvalidInputError

if TYPE_CHECKING:
    from hashlearn.hashers.deep.losses.base import HashLoss
    from hashlearn.hashers.deep.losses.regularizers import Regularizer

__all__ = [
    "LOSSES",
    "REGULARIZERS",
    "create_loss",
    "create_regularizer",
    "describe_losses",
    "describe_regularizers",
    "list_losses",
    "list_regularizers",
]

_PACKAGE = "hashlearn.hashers.deep.losses"

LOSSES: Registry[type[HashLoss]] = Registry("loss")
REGULARIZERS: Registry[type[Regularizer]] = Registry("regularizer")

# fmt: off
LOSSES.register("csq", f"{_PACKAGE}.csq:CSQLoss", "Central Similarity Quantization: cross-entropy to per-class hash centres (Yuan et al., CVPR 2020)")
LOSSES.register("dch", f"{_PACKAGE}.dch:DCHLoss", "Deep Cauchy Hashing: balanced Cauchy cross-entropy plus Cauchy quantisation (Cao et al., CVPR 2018)")
LOSSES.register("dpsh", f"{_PACKAGE}.dpsh:DPSHLoss", "DPSH: pairwise likelihood of sigmoid(u_i.u_j / 2) plus quantisation (Li, Wang & Kang, IJCAI 2016)")
LOSSES.register("dsdh", f"{_PACKAGE}.dsdh:DSDHLoss", "DSDH: pairwise likelihood plus discrete codes under a linear classifier (Li et al., NIPS 2017)")
LOSSES.register("dsh", f"{_PACKAGE}.dsh:DSHLoss", "DSH: contrastive margin loss on squared distances plus L1 quantisation (Liu et al., CVPR 2016)")
LOSSES.register("hashnet", f"{_PACKAGE}.hashnet:HashNetLoss", "HashNet: balanced pairwise likelihood on tanh(beta z), beta raised by continuation (Cao et al., ICCV 2017)")
LOSSES.register("orthohash", f"{_PACKAGE}.orthohash:OrthoHashLoss", "OrthoHash: cross-entropy of scaled cosine similarities to binary class codes, with a margin (Hoe et al., NeurIPS 2021)")
LOSSES.register("greedyhash", f"{_PACKAGE}.greedyhash:GreedyHashLoss", "GreedyHash: classifier on sign(h) with the gradient passed straight through, plus | |h| - 1 |^3 (Su et al., NeurIPS 2018)")
LOSSES.register("dpn", f"{_PACKAGE}.dpn:DPNLoss", "DPN: polarization hinge max(m - v t, 0) per bit to random class codes (Fan et al., IJCAI 2020)")
LOSSES.register("bihalf", f"{_PACKAGE}.bihalf:BiHalfLoss", "BiHalf (unsupervised): bi-half codes' cosine similarities matched to the images' (Li & van Gemert, AAAI 2021)")
LOSSES.register("cibhash", f"{_PACKAGE}.cibhash:CIBHashLoss", "CIBHash (unsupervised): NT-Xent between two views' stochastic codes plus a KL bottleneck (Qiu et al., IJCAI 2021)")

REGULARIZERS.register("bit-balance", f"{_PACKAGE}.regularizers:BitBalance", "each bit half on, half off: sum over bits of the squared batch mean")
REGULARIZERS.register("decov", f"{_PACKAGE}.regularizers:DeCov", "DeCov: squared off-diagonal batch covariance of the bits (Cogswell et al., ICLR 2016)")
REGULARIZERS.register("pairwise-quantization", f"{_PACKAGE}.regularizers:PairwiseQuantization", "distortion of the batch's inner products by the sign")
REGULARIZERS.register("quantization-l1", f"{_PACKAGE}.regularizers:QuantizationL1", "DSH's regulariser: batch mean of || |h| - 1 ||_1")
REGULARIZERS.register("quantization-l2", f"{_PACKAGE}.regularizers:QuantizationL2", "batch mean of || |h| - 1 ||_2^2")
# fmt: on


def list_losses() -> list[str]:
    """Names accepted by :func:`create_loss`, sorted."""
    return LOSSES.names()


def describe_losses() -> dict[str, str]:
    """``{name: one-line description}`` of every loss, in name order."""
    return LOSSES.describe()


def list_regularizers() -> list[str]:
    """Names accepted by :func:`create_regularizer`, sorted."""
    return REGULARIZERS.names()


def describe_regularizers() -> dict[str, str]:
    """``{name: one-line description}`` of every regulariser, in name order."""
    return REGULARIZERS.describe()


def create_regularizer(name: str, weight: float, activation: str = "identity") -> Regularizer:
    """Build a regulariser by name (``"bit-balance"``, ``"decov"``, ``"quantization-l1"``...)."""
    return REGULARIZERS.get(name)(weight=weight, activation=activation)


def create_loss(name: str, n_bits: int, **params: Any) -> HashLoss:
    """Build a main loss by name with its paper's defaults, overridden by ``params``.

    ``n_bits`` sets the defaults that depend on it (through the loss's
    :meth:`~hashlearn.hashers.deep.losses.base.HashLoss.for_code_length`): DSH's margin
    ``2 n_bits`` and HashNet's ``alpha = 10 / n_bits``. Raises UnknownNameError for an unknown
    ``name`` and InvalidInputError for a parameter the loss does not take.
    """
    cls = LOSSES.get(name)
    n_bits = check_int(n_bits, "n_bits", minimum=1)
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise InvalidInputError(
            f"loss {name!r} has no parameter(s) {unknown}; it takes {', '.join(accepted)}"
        )
    return cls.for_code_length(n_bits, **params)
