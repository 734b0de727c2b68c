"""Deep hashing losses as small modules sharing one interface, one loss per file.

- :mod:`~hashlearn.hashers.deep.losses.base`: :class:`HashLoss`, the calling convention
  ``loss(outputs, labels, indices) -> scalar`` with ``setup`` and ``on_epoch_end``;
- :mod:`~hashlearn.hashers.deep.losses.pairs`: label similarity and the pairwise likelihood the
  pair-based losses share; :mod:`~hashlearn.hashers.deep.losses.memory`: the memory of all
  training outputs (DPSH, DSDH);
- one module per loss: ``dsh``, ``dpsh``, ``hashnet``, ``dsdh``, ``dch``, ``csq``,
  ``orthohash``, ``greedyhash``, ``dpn``, and the unsupervised ``bihalf`` and ``cibhash``;
- :mod:`~hashlearn.hashers.deep.losses.regularizers` (:class:`QuantizationL1`,
  :class:`BitBalance`, :class:`DeCov`...), added to a main loss with :class:`CombinedLoss`;
- :mod:`~hashlearn.hashers.deep.losses.registry`: :func:`create_loss` builds the main losses by
  name with their papers' defaults, :func:`create_regularizer` the regularisers.

The names below are imported from their modules on first use, so importing the registry imports
no loss (and no torch).
"""

from hashlearn.hashers.deep.lazy import lazy_exports

_EXPORTS = {
    "HashLoss": "base",
    "check_batch": "base",
    "check_setup": "base",
    "balanced_mean": "pairs",
    "label_matrix": "pairs",
    "pair_in_batch": "pairs",
    "pair_likelihood": "pairs",
    "pairwise_similarity": "pairs",
    "upper_pairs": "pairs",
    "MemoryLoss": "memory",
    "DSHLoss": "dsh",
    "DPSHLoss": "dpsh",
    "HashNetLoss": "hashnet",
    "DSDHLoss": "dsdh",
    "DCHLoss": "dch",
    "CSQLoss": "csq",
    "hadamard_matrix": "csq",
    "hash_centers": "csq",
    "OrthoHashLoss": "orthohash",
    "GreedyHashLoss": "greedyhash",
    "StraightThroughSign": "greedyhash",
    "straight_through_sign": "greedyhash",
    "DPNLoss": "dpn",
    "class_codes": "dpn",
    "BiHalfLoss": "bihalf",
    "bi_half": "bihalf",
    "similarity_targets": "bihalf",
    "TARGET_FEATURES": "bihalf",
    "similarity_loss": "bihalf",
    "CIBHashLoss": "cibhash",
    "bernoulli_kl": "cibhash",
    "nt_xent": "cibhash",
    "straight_through_codes": "cibhash",
    "Regularizer": "regularizers",
    "QuantizationL1": "regularizers",
    "QuantizationL2": "regularizers",
    "PairwiseQuantization": "regularizers",
    "BitBalance": "regularizers",
    "DeCov": "regularizers",
    "CombinedLoss": "combined",
    "LOSSES": "registry",
    "REGULARIZERS": "registry",
    "create_loss": "registry",
    "create_regularizer": "registry",
    "describe_losses": "registry",
    "describe_regularizers": "registry",
    "list_losses": "registry",
    "list_regularizers": "registry",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
