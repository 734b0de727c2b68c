"""Backbone networks by name. Each maps ``(n, c, h, w)`` float32 images to ``(n, n_bits)`` real
outputs, whose signs are the code bits.

Built in (always available, plain PyTorch), one module each:

- ``"small-cnn"``: :class:`SmallCNN` (:mod:`~hashlearn.hashers.deep.backbones.small_cnn`), the
  conv-pool-conv-pool-fc digit network of seed 000.
- ``"small-resnet"``: :class:`SmallResNet` (:mod:`~hashlearn.hashers.deep.backbones.resnet`), a
  CIFAR-style ResNet (He et al., CVPR 2016), the backbone of seed 001 (DSH with a small ResNet on
  MNIST).
- ``"dsh-cifar"``: :class:`DSHNet` (:mod:`~hashlearn.hashers.deep.backbones.dsh_net`), the
  CIFAR-10 network of DSH (Liu et al., CVPR 2016).

Families, when the optional package is installed (imported only when such a name is built;
:mod:`~hashlearn.hashers.deep.backbones.adapters`):

- ``"torchvision:<name>"``: any classification model of ``torchvision.models``
  (``pip install 'hashlearn[torchvision]'``), e.g. ``"torchvision:resnet18"``.
- ``"timm:<name>"``: any model of ``timm`` (``pip install 'hashlearn[timm]'``),
  e.g. ``"timm:resnet18"``.

Every backbone ends in a :class:`HashHead` (:mod:`~hashlearn.hashers.deep.backbones.base`) and
takes ``weights=`` a local state-dict file (``.safetensors`` preferred; ``.pt``/``.pth``/``.bin``
are read with ``torch.load(weights_only=True)``, never unpickled;
:mod:`~hashlearn.hashers.deep.backbones.weights`). Nothing is downloaded: family models start
from random weights unless a file is given.

:func:`create_backbone` (:mod:`~hashlearn.hashers.deep.backbones.factory`) builds any of them;
:func:`list_backbones` and :func:`describe_backbones`
(:mod:`~hashlearn.hashers.deep.backbones.registry`) name them. The names below are imported from
their modules on first use, so importing the registry imports no network (and no torch).
"""

from hashlearn.hashers.deep.lazy import lazy_exports

_EXPORTS = {
    "HashHead": "base",
    "SmallCNN": "small_cnn",
    "BasicBlock": "resnet",
    "SmallResNet": "resnet",
    "DSHNet": "dsh_net",
    "WithinChannelLRN": "dsh_net",
    "WEIGHT_SUFFIXES": "weights",
    "load_state_dict_file": "weights",
    "load_weights": "weights",
    "attach_hash_head": "adapters",
    "BACKBONES": "registry",
    "FAMILIES": "registry",
    "describe_backbones": "registry",
    "list_backbones": "registry",
    "create_backbone": "factory",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
