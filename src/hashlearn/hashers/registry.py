"""Hashers by name: ``create_hasher(name, n_bits=..., **params)``, ``list_hashers()``.

Adding a method is one module plus one ``HASHERS.register`` line here. Entries are
``"module:Class"`` strings, imported when a hasher of that name is first built, so listing the
names imports neither the methods nor torch (the deep methods live in
:mod:`hashlearn.hashers.deep`). The names are what users type and what model files record.
"""

from __future__ import annotations

from typing import Any

from hashlearn._registry import Registry
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers.base import Hasher

__all__ = ["HASHERS", "create_hasher", "describe_hashers", "get_hasher_class", "list_hashers"]

HASHERS: Registry[type[Hasher]] = Registry("hasher")

# fmt: off
HASHERS.register("lsh", "hashlearn.hashers.lsh:LSH", "sign of Gaussian random projections of centred data")
HASHERS.register("pcah", "hashlearn.hashers.pca:PCAH", "PCA hashing: signs of the top principal components (Wang, Kumar & Chang, CVPR 2010)")
HASHERS.register("itq", "hashlearn.hashers.itq:ITQ", "Iterative Quantization: PCA then a learned rotation (Gong et al., TPAMI 2013)")
HASHERS.register("itq-cca", "hashlearn.hashers.itq:ITQCCA", "supervised ITQ on regularised CCA directions (Gong et al., TPAMI 2013)")
HASHERS.register("sh", "hashlearn.hashers.spectral:SpectralHashing", "Spectral Hashing (Weiss, Torralba & Fergus, NIPS 2008)")
HASHERS.register("sph", "hashlearn.hashers.spherical:SphericalHashing", "Spherical Hashing (Heo et al., CVPR 2012)")
HASHERS.register("agh", "hashlearn.hashers.agh:AGH", "Anchor Graph Hashing (Liu et al., ICML 2011)")
HASHERS.register("dgh", "hashlearn.hashers.dgh:DGH", "Discrete Graph Hashing (Liu et al., NIPS 2014)")
HASHERS.register("sgh", "hashlearn.hashers.sgh:SGH", "Stochastic Generative Hashing (Dai et al., ICML 2017)")
HASHERS.register("grh", "hashlearn.hashers.grh:GRH", "Graph Regularised Hashing (Moran & Lavrenko, ECIR 2015)")
HASHERS.register("ksh", "hashlearn.hashers.ksh:KSH", "Kernel-Based Supervised Hashing (Liu et al., CVPR 2012)")
HASHERS.register("sdh", "hashlearn.hashers.sdh:SDH", "Supervised Discrete Hashing (Shen et al., CVPR 2015)")
HASHERS.register("dsh", "hashlearn.hashers.deep.methods:DSH", "Deep Supervised Hashing (Liu et al., CVPR 2016)")
HASHERS.register("dpsh", "hashlearn.hashers.deep.methods:DPSH", "Deep Pairwise-Supervised Hashing (Li et al., IJCAI 2016)")
HASHERS.register("hashnet", "hashlearn.hashers.deep.methods:HashNet", "HashNet: deep learning to hash by continuation (Cao et al., ICCV 2017)")
HASHERS.register("dsdh", "hashlearn.hashers.deep.methods:DSDH", "Deep Supervised Discrete Hashing (Li et al., NIPS 2017)")
HASHERS.register("dch", "hashlearn.hashers.deep.methods:DCH", "Deep Cauchy Hashing (Cao et al., CVPR 2018)")
HASHERS.register("csq", "hashlearn.hashers.deep.methods:CSQ", "Central Similarity Quantization (Yuan et al., CVPR 2020)")
HASHERS.register("orthohash", "hashlearn.hashers.deep.methods:OrthoHash", "OrthoHash: one cosine-similarity loss to binary orthogonal class codes (Hoe et al., NeurIPS 2021)")
HASHERS.register("greedyhash", "hashlearn.hashers.deep.methods:GreedyHash", "Greedy Hash: sign in the forward pass, gradient passed straight through (Su et al., NeurIPS 2018)")
HASHERS.register("dpn", "hashlearn.hashers.deep.methods:DPN", "Deep Polarized Network (Fan et al., IJCAI 2020)")
HASHERS.register("bihalf", "hashlearn.hashers.deep.methods:BiHalf", "unsupervised: bi-half layer maximising bit entropy (Li & van Gemert, AAAI 2021)")
HASHERS.register("cibhash", "hashlearn.hashers.deep.methods:CIBHash", "unsupervised: contrastive hashing with an information bottleneck (Qiu et al., IJCAI 2021)")
# fmt: on


def list_hashers() -> list[str]:
    """Names of all registered hashers, sorted."""
    return HASHERS.names()


def describe_hashers() -> dict[str, str]:
    """``{name: one-line description}`` of every registered hasher, in name order."""
    return HASHERS.describe()


def get_hasher_class(name: str) -> type[Hasher]:
    """The class registered under ``name``; raises UnknownNameError listing the known names."""
    return HASHERS.get(name)


def create_hasher(name: str, n_bits: int = 32, **params: Any) -> Hasher:
    """Build the hasher registered under ``name`` with ``n_bits`` bits and its own parameters.

    Raises UnknownNameError for an unknown ``name`` and InvalidInputError for a parameter the
    method does not have (the message lists the ones it has).

    >>> hasher = create_hasher("lsh", n_bits=16, random_state=0)
    """
    cls = get_hasher_class(name)
    allowed = cls._param_names()
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InvalidInputError(
            f"hasher {name!r} has no parameter(s) {', '.join(unknown)}; its parameters are: {', '.join(allowed)}"
        )
    return cls(n_bits=n_bits, **params)
