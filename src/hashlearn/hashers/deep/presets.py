"""Named training settings of the deep hashers: ``create_hasher("dsh", n_bits=12, preset="paper")``.

A preset is a set of :class:`~hashlearn.hashers.deep.base.DeepHasher` arguments (the trainer's
``lr``, ``batch_size``, ``epochs``, ``weight_decay``, learning-rate schedule, and the loss's
``loss_params``), each with the place it comes from. ``preset="paper"`` holds the settings
published with a method: its paper, or the code its authors released where the paper does not
give them. A preset fills only the arguments that are not given: explicit keyword arguments win,
and an explicit ``loss_params`` is merged over the preset's (its keys win).

What a preset cannot carry, it says in its ``notes``: the authors trained other networks
(AlexNet, VGG-F, CNN-F, ResNet, mostly pre-trained on ImageNet) with SGD and per-layer learning
rates, while hashlearn trains its own backbones with Adam. Only the optimisation and loss
settings are taken, and an SGD learning rate is not an Adam one: a preset reproduces the
published *settings*, not the published numbers.

A method declares its presets in :data:`PRESETS` below, or, for a method defined elsewhere, as
its class attribute ``presets = {"paper": Preset(...)}``; the class attribute wins.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hashlearn.exceptions import InvalidInputError

__all__ = ["PRESETS", "Preset", "apply_preset", "describe_presets", "get_preset", "takes_presets"]


@dataclass(frozen=True)
class Preset:
    """Named settings of one method.

    Attributes
    ----------
    settings : mapping of str to value
        :class:`~hashlearn.hashers.deep.base.DeepHasher` arguments, ``loss_params`` included.
    sources : mapping of str to str
        For each setting (``loss_params`` entries as ``loss_params.NAME``), where it comes from.
    notes : str
        What differs from the source and is not taken (optimiser, network, schedules).
    """

    settings: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)
    notes: str = ""


_SGD = "the trainer uses Adam; the authors' optimiser (named in sources) is not taken"

# fmt: off
PRESETS: dict[str, dict[str, Preset]] = {
    "dsh": {"paper": Preset(
        settings={
            "lr": 1e-3, "weight_decay": 4e-3, "batch_size": 200, "epochs": 280,
            "lr_schedule": "step", "lr_step_size": 240, "lr_gamma": 0.1,
            "loss_params": {"alpha": 0.01},
        },
        sources={
            "lr": "authors' code lhmRyan/deep-supervised-hashing-DSH, CIFAR-10/solver.prototxt: base_lr 0.001 (SGD, momentum 0.9)",
            "weight_decay": "CIFAR-10/solver.prototxt: weight_decay 0.004",
            "batch_size": "CIFAR-10/train_test.prototxt: batch_size 200",
            "epochs": "CIFAR-10/solver.prototxt: max_iter 70,000 of 200 images = 280 passes over CIFAR-10's 50,000 training images",
            "lr_schedule": "CIFAR-10/solver.prototxt: lr_policy multistep",
            "lr_step_size": "CIFAR-10/solver.prototxt: multistep, gamma 0.1 at iteration 60,000 (epoch 240)",
            "lr_gamma": "CIFAR-10/solver.prototxt: gamma 0.1",
            "loss_params.alpha": "paper (Liu et al., CVPR 2016) eq. 5 alpha; train_test.prototxt tradeoff 0.01, which trains as alpha 0.01 (see DSHLoss)",
            "loss_params.margin": "paper: m = 2k (bi_margin 24 at 12 bits in train_test.prototxt); the loss's default",
        },
        notes=f"{_SGD}; the second lr step (iteration 65,000, epoch 260) is not modelled; the "
        "authors' CIFAR-10 network (3 conv + 2 fully connected layers, trained from scratch) is "
        "close to small-cnn, other backbones are not theirs.",
    )},
    "dpsh": {"paper": Preset(
        settings={
            "lr": 0.05, "weight_decay": 1e-5, "batch_size": 128, "epochs": 150,
            "lr_schedule": "step", "lr_step_size": 50, "lr_gamma": 0.1,
            "loss_params": {"memory": True, "eta": 50.0},
        },
        sources={
            "lr": "the authors' group's PyTorch release jiangqy/DPSH-pytorch, DPSH_CIFAR_10.py: learning_rate 0.05 (plain SGD)",
            "weight_decay": "DPSH_CIFAR_10.py: weight_decay 10 ** -5",
            "batch_size": "DPSH_CIFAR_10.py: batch_size 128",
            "epochs": "DPSH_CIFAR_10.py: epochs 150",
            "lr_schedule": "DPSH_CIFAR_10.py AdjustLearningRate: a step schedule",
            "lr_step_size": "DPSH_CIFAR_10.py AdjustLearningRate: lr * 0.1 ** (epoch // 50)",
            "lr_gamma": "DPSH_CIFAR_10.py AdjustLearningRate: 0.1",
            "loss_params.memory": "paper (Li et al., IJCAI 2016) eq. 3 sums over all training pairs; DPSH_CIFAR_10.py pairs each batch with the memory U of all outputs",
            "loss_params.eta": "DPSH_CIFAR_10.py __main__: lamda 50 (both terms divided by num_train * batch_size)",
        },
        notes=f"{_SGD}; the authors fine-tune an ImageNet AlexNet (the paper: CNN-F); trained "
        "from scratch the memory variant can collapse to one code (see DPSHLoss).",
    )},
    "hashnet": {"paper": Preset(
        settings={
            "lr": 3e-4, "weight_decay": 5e-4, "batch_size": 72, "epochs": 72,
            "lr_schedule": "step", "lr_step_size": 14, "lr_gamma": 0.5,
            "loss_params": {"alpha": None},
        },
        sources={
            "lr": "authors' code thuml/HashNet, pytorch/src/train.py: init_lr 0.0003 (SGD, momentum 0.9, Nesterov; hash layer x10)",
            "weight_decay": "pytorch/src/train.py: weight_decay 0.0005",
            "batch_size": "pytorch/src/train.py: two batches of 36 paired with each other",
            "epochs": "pytorch/src/train.py: num_iterations 10,000 of 72 images = 72 passes over the 10,000 ImageNet training images of the paper",
            "lr_schedule": "pytorch/src/train.py: lr_type step",
            "lr_step_size": "pytorch/src/train.py: lr step every 2,000 iterations (14.4 epochs)",
            "lr_gamma": "pytorch/src/train.py: gamma 0.5",
            "loss_params.alpha": "pytorch/src/train.py: sigmoid_param 10 / hash_bit (None: the loss's 10 / n_bits)",
        },
        notes=f"{_SGD}; the authors fine-tune an ImageNet ResNet-50 (the paper: AlexNet); their "
        "l_threshold 15 on the inner products is not part of HashNetLoss.",
    )},
    "dsdh": {"paper": Preset(
        settings={
            "lr": 1e-2, "weight_decay": 5e-4, "batch_size": 128, "epochs": 150,
            "lr_schedule": "step", "lr_step_size": 1, "lr_gamma": 10 ** (-4 / 149),
            "loss_params": {"memory_pairs": True, "mu": 1.0, "nu": 0.1, "eta": 55.0, "dcc_iter": 10},
        },
        sources={
            "lr": "authors' code liqi-casia/DSDH-HashingCode, DSDH.m: lr = logspace(-2, -6, maxIter), from 0.01 (plain SGD)",
            "lr_schedule": "DSDH.m: lr(iter) for each pass, decaying geometrically",
            "lr_step_size": "DSDH.m: a new lr every pass",
            "lr_gamma": "DSDH.m: logspace(-2, -6, 150), a factor 10 ** (-4 / 149) per epoch",
            "weight_decay": "update.m: weight_decay 5e-4",
            "batch_size": "train.m: batchsize 128",
            "epochs": "DSDH.m: maxIter 150 passes",
            "loss_params.memory_pairs": "train.m: S = calcNeighbor(L1, ix, 1:N), each batch against all N outputs",
            "loss_params.mu": "train.m: Q = eta * U0 + Y W' (mu = 1)",
            "loss_params.nu": "train.m: RRC(batchB, batchY, lambda) with lambda 0.1",
            "loss_params.eta": "setup.m: eta = 55",
            "loss_params.dcc_iter": "train.m: up to 10 sweeps of the discrete cyclic coordinate descent",
        },
        notes=f"{_SGD}; the authors fine-tune an ImageNet VGG-F and update B and W on each batch, "
        "hashlearn after each epoch on all of B.",
    )},
    "dch": {"paper": Preset(
        settings={
            "lr": 5e-3, "batch_size": 128, "epochs": 51, "lr_schedule": "constant",
            "loss_params": {"gamma": 20.0, "lambda_q": 0.0},
        },
        sources={
            "lr": "authors' code thulab/DeepHash, examples/dch/train_val_script.py: --lr 0.005 (DeepHash/model/dch/dch.py: MomentumOptimizer, momentum 0.9)",
            "batch_size": "train_val_script.py: --batch-size 128",
            "epochs": "train_val_script.py: --iter-num 2000 of 128 images = 51 passes over DCH's 5,000 CIFAR-10 training images",
            "lr_schedule": "train_val_script.py: --decay-step 10000, past the 2,000 iterations: constant",
            "loss_params.gamma": "paper (Cao et al., CVPR 2018) and train_val_script.py: --gamma 20",
            "loss_params.lambda_q": "train_val_script.py: --q-lambda 0",
        },
        notes=f"{_SGD}; the authors fine-tune an ImageNet AlexNet with a 10x learning rate on "
        "the hash layer.",
    )},
    "csq": {"paper": Preset(
        settings={
            "lr": 1e-3, "batch_size": 64, "epochs": 90,
            "lr_schedule": "step", "lr_step_size": 10, "lr_gamma": 0.7,
        },
        sources={
            "lr": "authors' code yuanli2333/Hadamard-Matrix-for-hashing, options.py: --lr 0.001 (train.py: Adam, betas 0.9, 0.999; backbone x0.01)",
            "batch_size": "options.py: --batch_size 64",
            "epochs": "train.py: total_epoch 90",
            "lr_schedule": "train.py adjust_learning_rate: a step schedule",
            "lr_step_size": "train.py adjust_learning_rate: lr * 0.7 ** (epoch // 10)",
            "lr_gamma": "train.py adjust_learning_rate: 0.7",
            "loss_params.lambda_q": "paper (Yuan et al., CVPR 2020): the loss's default",
        },
        notes="Adam as the authors; their train.py also adds a pairwise loss (weight 0.2) and a "
        "squared quantisation term (weight 0.05), which CSQLoss does not have; the authors "
        "fine-tune an ImageNet ResNet-50.",
    )},
}
# fmt: on


def _presets_of(cls: type) -> dict[str, Preset]:
    """The presets of hasher class ``cls``: :data:`PRESETS` for its name, then its own."""
    return {**PRESETS.get(getattr(cls, "name", ""), {}), **getattr(cls, "presets", {})}


def describe_presets(cls: type) -> dict[str, str]:
    """``{preset name: its notes}`` for hasher class ``cls``, in name order."""
    return {name: preset.notes for name, preset in sorted(_presets_of(cls).items())}


def get_preset(cls: type, name: Any) -> Preset:
    """Preset ``name`` of hasher class ``cls``; InvalidInputError listing the presets it has."""
    presets = _presets_of(cls)
    if not isinstance(name, str) or name not in presets:
        available = ", ".join(sorted(presets)) if presets else "none"
        raise InvalidInputError(
            f"{getattr(cls, 'name', cls.__name__)!r} has no preset {name!r}; available: {available}"
        )
    return presets[name]


def apply_preset(hasher: Any, name: Any, given: set[str]) -> None:
    """Set on ``hasher`` every setting of its preset ``name`` not named in ``given``;
    ``loss_params`` is merged, the given entries over the preset's."""
    preset = get_preset(type(hasher), name)
    for key, value in preset.settings.items():
        if key == "loss_params":
            mine = hasher.loss_params
            merged = {**value, **(mine or {})} if mine is None or isinstance(mine, dict) else mine
            if merged != mine:  # the given dict itself when nothing is added (clone needs it)
                hasher.loss_params = merged
        elif key not in given:
            setattr(hasher, key, value)


F = TypeVar("F", bound=Callable[..., None])


def takes_presets(init: F) -> F:
    """Decorate a deep hasher's ``__init__`` (which stores ``preset``): after it stored its
    arguments, the preset fills those the caller did not pass. The signature is kept, so
    ``get_params`` and ``clone`` see the same parameters."""
    names = [p for p in inspect.signature(init).parameters if p != "self"]

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if getattr(self, "preset", None) is not None:
            apply_preset(self, self.preset, set(names[: len(args)]) | set(kwargs))

    return wrapper  # type: ignore[return-value]
