"""Named training settings of the deep hashers: ``create_hasher("dsh", n_bits=12, preset="paper")``.

A preset is a set of :class:`~hashlearn.hashers.deep.base.DeepHasher` arguments (the trainer's
``lr``, ``batch_size``, ``epochs``, ``weight_decay``, learning-rate schedule, and the loss's
``loss_params``), each with the place it comes from. ``preset="paper"`` holds the settings
published with a method: its paper, or the code its authors released where the paper does not
give them. A preset fills only the arguments that are not given: explicit keyword arguments win,
and an explicit ``loss_params`` is merged over the preset's (its keys win).

What a preset cannot carry, it says in its ``notes``: the authors trained other networks
(AlexNet, VGG-F, CNN-F, VGG-16, ResNet, mostly pre-trained on ImageNet) with SGD and per-layer learning
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
    "orthohash": {"paper": Preset(
        settings={
            "lr": 1e-4, "weight_decay": 5e-4, "batch_size": 64, "epochs": 100,
            "lr_schedule": "step", "lr_step_size": 80, "lr_gamma": 0.1,
            "loss_params": {"scale": 8.0, "margin": 0.3, "lambda_q": 0.0, "codes": "bernoulli"},
        },
        sources={
            "lr": "authors' code kamwoh/orthohash, main.py: --lr 0.0001 (configs.py optimizer: Adam, betas 0.9, 0.999)",
            "weight_decay": "main.py optim_kwargs: weight_decay 0.0005 (Adam's L2 term, as the trainer's)",
            "batch_size": "main.py: --bs 64 (one stored version of main.py says 256); the authors' later framework CISiPLab/cisip-FIRe, configs/templates/orthocos.yaml: bs 64",
            "epochs": "main.py: --epochs 100, over the 5,000 CIFAR-10 training images of evaluation protocol 1 (utils/datasets.py: 500 per class)",
            "lr_schedule": "main.py: scheduler 'step' (configs.py: StepLR, stepped once per epoch)",
            "lr_step_size": "main.py scheduler_kwargs: step_size int(epochs * 0.8) = 80",
            "lr_gamma": "main.py scheduler_kwargs: gamma 0.1",
            "loss_params.scale": "main.py: --scale 8",
            "loss_params.margin": "README.md, the CIFAR-10 run: --margin 0.3 (main.py's default 0.2 goes with its default --ds imagenet100)",
            "loss_params.lambda_q": "main.py: --quan 0",
            "loss_params.codes": "README.md, the CIFAR-10 run: --codebook-method B (Bernoulli, fair coins)",
        },
        notes="Adam as the authors, with the README's CIFAR-10 run (python main.py "
        "--codebook-method B --ds cifar10 --margin 0.3); the authors fine-tune an ImageNet "
        "AlexNet with a 10x lower learning rate on the backbone (README, 'Performance Tuning') "
        "and train on flipped, colour-jittered 224 x 224 images, which are not taken.",
    )},
    "greedyhash": {"paper": Preset(
        settings={
            "lr": 1e-3, "weight_decay": 5e-4, "batch_size": 32, "epochs": 50,
            "lr_schedule": "step", "lr_step_size": 30, "lr_gamma": 0.1,
            "loss_params": {"alpha": 0.1},
        },
        sources={
            "lr": "authors' code ssppp/GreedyHash, cifar1.py: learning_rate 0.001 (SGD, momentum 0.9)",
            "weight_decay": "cifar1.py: weight_decay 5e-4",
            "batch_size": "cifar1.py: batch_size 32",
            "epochs": "cifar1.py: num_epochs 50, over the 5,000 CIFAR-10 training images of its protocol (500 per class)",
            "lr_schedule": "cifar1.py adjust_learning_rate: a step schedule",
            "lr_step_size": "cifar1.py adjust_learning_rate: lr * 0.1 ** (epoch // epoch_lr_decrease), epoch_lr_decrease 30",
            "lr_gamma": "cifar1.py adjust_learning_rate: 0.1",
            "loss_params.alpha": "paper (Su et al., NeurIPS 2018) eq. 8 weight of ||h - sign(h)||_3^3; cifar1.py: loss1 + 0.1 * loss2",
        },
        notes=f"{_SGD}; the authors fine-tune an ImageNet AlexNet on CIFAR-10 scaled to 224 x "
        "224; their other scripts: cifar2.py (all 50,000 training images) 40 epochs with the "
        "lr step at 20, imagenet.py 100 epochs with the step at 80 and alpha 1.",
    )},
    "dpn": {"paper": Preset(
        settings={
            "lr": 1e-4, "weight_decay": 5e-4, "batch_size": 256, "epochs": 200,
            "lr_schedule": "step", "lr_step_size": 100, "lr_gamma": 0.1,
            "loss_params": {"margin": 1.0, "codes": "bernoulli"},
        },
        sources={
            "lr": "authors' code kamwoh/DPN, main.py: --lr 0.0001 (optim 'sgd'; configs.py: SGD, momentum 0.9)",
            "weight_decay": "main.py optim_kwargs: weight_decay 0.0005",
            "batch_size": "main.py: --bs 256",
            "epochs": "main.py: --epochs 200 (its default --ds imagenet100; the same defaults for every dataset)",
            "lr_schedule": "main.py: scheduler 'step' (configs.py: StepLR, stepped once per epoch)",
            "lr_step_size": "main.py scheduler_kwargs: step_size int(epochs * 0.5) = 100",
            "lr_gamma": "main.py scheduler_kwargs: gamma 0.1",
            "loss_params.margin": "paper (Fan et al., IJCAI 2020) polarization margin m; main.py: --margin 1.0",
            "loss_params.codes": "main.py: --centroid-method N, the sign of a standard normal per bit: a fair coin, as 'bernoulli'",
        },
        notes=f"{_SGD}, and its lr 0.0001 is taken as Adam's; the authors fine-tune an ImageNet "
        "AlexNet; their cross-entropy and output regularisation terms are off (main.py --ce 0, "
        "--reg 0), as DPNLoss has neither; the authors' later framework (CISiPLab/cisip-FIRe, "
        "configs/templates/dpn.yaml) trains DPN with Adam, batch 64, 100 epochs and reg 0.1 "
        "instead.",
    )},
    "bihalf": {"paper": Preset(
        settings={
            "lr": 1e-4, "weight_decay": 5e-4, "batch_size": 32, "epochs": 300,
            "lr_schedule": "step", "lr_step_size": 120, "lr_gamma": 0.1, "swa": 0.0,
            "loss_params": {"gamma": 6.0},
        },
        sources={
            "lr": "authors' code liyunqianggyn/Deep-Unsupervised-Image-Hashing, ImageHashing/Cifar10_I.py: learning_rate 0.0001 (SGD, momentum 0.9)",
            "weight_decay": "ImageHashing/Cifar10_I.py: weight_decay 5e-4",
            "batch_size": "ImageHashing/Cifar10_I.py: batch_size 32",
            "epochs": "ImageHashing/Cifar10_I.py: num_epochs 300, over the 50,000 CIFAR-10 (I) training images (5,000 per class)",
            "lr_schedule": "ImageHashing/Cifar10_I.py adjust_learning_rate: a step schedule",
            "lr_step_size": "ImageHashing/Cifar10_I.py adjust_learning_rate: lr * 0.1 ** (epoch // epoch_lr_decrease), epoch_lr_decrease 120",
            "lr_gamma": "ImageHashing/Cifar10_I.py adjust_learning_rate: 0.1",
            "swa": "ImageHashing/Cifar10_I.py: the weights of the last epoch, no averaging",
            "loss_params.gamma": "ImageHashing/Cifar10_I.py: gamma 6 in the bi-half layer's backward pass (also Cifar(II)_bihalf.py)",
        },
        notes=f"{_SGD}; the authors freeze an ImageNet VGG-16 and train only its last linear "
        "layer (4096 -> n_bits), with VGG-16 fc7 features as the similarity targets and each "
        "sample paired with the one half a batch away; hashlearn trains the whole backbone "
        "against HOG or pixel targets (loss_params features: the loss's default). With the "
        "small CNN on mnist5k gamma 6 measured worse than the loss's default 1 (see "
        "BiHalfLoss). The authors' MNIST autoencoder (AutoEncoder/Bihalf_Layer.py: gamma 1) "
        "trains a reconstruction loss, which BiHalfLoss does not have.",
    )},
    "cibhash": {"paper": Preset(
        settings={
            "lr": 1e-3, "weight_decay": 0.0, "batch_size": 64, "epochs": 60,
            "lr_schedule": "constant", "swa": 0.0,
            "loss_params": {"temperature": 0.3, "beta": 1e-3, "stochastic": False},
        },
        sources={
            "lr": "authors' code zexuanqiu/CIBHash, model/base_model.py: --lr 1e-3 (model/CIBHash.py configure_optimizers: Adam)",
            "weight_decay": "model/CIBHash.py configure_optimizers: Adam without weight decay",
            "batch_size": "model/base_model.py: --batch_size 64",
            "epochs": "model/base_model.py: --epochs 60, over the 5,000 CIFAR-10 training images of utils/data.py (500 per class); at 16 bits run_training_session raises it to 80",
            "lr_schedule": "model/base_model.py run_training_session: no learning-rate schedule",
            "swa": "model/base_model.py run_training_session: no weight averaging",
            "loss_params.temperature": "paper (Qiu et al., IJCAI 2021) tau; model/CIBHash.py: --temperature 0.3",
            "loss_params.beta": "paper beta; model/CIBHash.py: --weight 0.001",
            "loss_params.stochastic": "model/CIBHash.py forward: hash_layer(prob - 0.5), codes thresholded at 1/2",
        },
        notes="Adam as the authors; they freeze an ImageNet VGG-16 and train a two-layer "
        "encoder (4096 -> 1024 -> n_bits) on its fc7 features, with Gaussian blur among the "
        "views' augmentations (not in hashlearn's); at 16 bits they train at least 80 epochs "
        "(pass epochs=80 there); their choice of the best of the validations every 20 epochs "
        "is not taken.",
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


def apply_preset(hasher: Any, name: Any, given: set[str]) -> set[str]:
    """Set on ``hasher`` every setting of its preset ``name`` not named in ``given``;
    ``loss_params`` is merged, the given entries over the preset's. Returns the names of the
    preset's settings."""
    preset = get_preset(type(hasher), name)
    for key, value in preset.settings.items():
        if key == "loss_params":
            mine = hasher.loss_params
            merged = {**value, **(mine or {})} if mine is None or isinstance(mine, dict) else mine
            if merged != mine:  # the given dict itself when nothing is added (clone needs it)
                hasher.loss_params = merged
        elif key not in given:
            setattr(hasher, key, value)
    return set(preset.settings)


F = TypeVar("F", bound=Callable[..., None])


def takes_presets(init: F) -> F:
    """Decorate a deep hasher's ``__init__`` (which stores ``preset``): after it stored its
    arguments, the preset fills those the caller did not pass, then the class's ``defaults``
    (a method's own defaults where they differ from the signature's) fill those neither gave.
    The signature is kept, so ``get_params`` and ``clone`` see the same parameters."""
    names = [p for p in inspect.signature(init).parameters if p != "self"]

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        given = set(names[: len(args)]) | set(kwargs)
        if getattr(self, "preset", None) is not None:
            given |= apply_preset(self, self.preset, given)
        for key, value in getattr(type(self), "defaults", {}).items():
            if key not in given:  # a method's measured default, where it differs from the base's
                setattr(self, key, value)

    return wrapper  # type: ignore[return-value]
