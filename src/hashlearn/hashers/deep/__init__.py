"""Deep hashers (PyTorch): a backbone network, a loss module and the trainer.

- :mod:`~hashlearn.hashers.deep.methods`: the registered methods (DSH, DPSH, HashNet, DSDH, DCH,
  CSQ), each a :class:`~hashlearn.hashers.deep.base.DeepHasher` that names its loss;
- :mod:`~hashlearn.hashers.deep.backbones`: the networks, by name;
- :mod:`~hashlearn.hashers.deep.losses`: one module per loss, and the regularisers;
- :mod:`~hashlearn.hashers.deep.trainer`: configuration, data feeding, the loop, validation and
  checkpoints.

This sub-package is the only part of hashlearn that imports torch. This ``__init__`` and the
registries (``losses.registry``, ``backbones.registry``) do not: names are listed without it.
"""
