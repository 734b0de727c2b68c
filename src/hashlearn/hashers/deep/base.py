"""The shared part of deep hashers: a backbone, a loss module, and the :class:`Trainer`."""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from hashlearn._validation import (
    check_image_shape,
    check_images,
    check_labels,
    check_random_state,
)
from hashlearn.exceptions import FileFormatError, InvalidInputError
from hashlearn.hashers.base import Hasher
from hashlearn.hashers.deep.backbones.factory import create_backbone
from hashlearn.hashers.deep.losses.base import HashLoss
from hashlearn.hashers.deep.losses.combined import CombinedLoss
from hashlearn.hashers.deep.losses.registry import create_loss, create_regularizer
from hashlearn.hashers.deep.presets import Preset, takes_presets
from hashlearn.hashers.deep.trainer.config import TrainerConfig
from hashlearn.hashers.deep.trainer.data import (
    ArrayDataset,
    input_dtype,
    resolve_device,
    standardize,
)
from hashlearn.hashers.deep.trainer.loop import Trainer

__all__ = ["DeepHasher", "resolve_device"]

_PATH_PARAMS = ("checkpoint_dir", "log_csv")


class DeepHasher(Hasher):
    """A deep hasher: ``backbone(images) -> (n, n_bits)`` real outputs, trained by the
    :class:`~hashlearn.hashers.deep.trainer.Trainer` with ``self._make_loss()``; codes are the
    signs of the outputs (bit 1 where the output is >= 0).

    A method is a subclass that names its loss (``loss_name``, see
    :func:`~hashlearn.hashers.deep.losses.create_loss`) and, when its loss squashes the outputs
    with tanh, sets ``output_activation = "tanh"`` so that regularisers act on the same values.
    Methods whose loss needs more than its parameters override ``_make_loss``. Unsupervised
    methods (BiHalf, CIBHash) set ``supervised = False``: their ``fit`` takes no labels.

    Parameters
    ----------
    n_bits : int
        Code length.
    loss_params : dict or None
        Parameters of the method's loss, overriding its paper defaults (e.g. ``{"eta": 0.1}``).
    regularizers : dict or None
        Extra penalties added to the loss, name -> weight: ``"quantization-l1"``,
        ``"quantization-l2"``, ``"pairwise-quantization"``, ``"bit-balance"``, ``"decov"``.
    backbone : str
        Network name (``hashlearn.hashers.deep.backbones.list_backbones``).
    backbone_params : dict or None
        Extra keyword arguments of the backbone.
    epochs, batch_size, lr, weight_decay : Adam training schedule.
    lr_schedule : {"constant", "cosine", "step"}
        Per-epoch learning rate; ``lr_step_size`` (None: a third of the epochs) and ``lr_gamma``
        parametrise ``"step"`` (see :func:`~hashlearn.hashers.deep.trainer.scheduled_lr`).
    patience : int or None
        Early stopping on the validation mAP (needs ``X_val``, ``y_val`` in ``fit``).
    augment : bool
        Random crop and horizontal flip of training batches (natural colour images only).
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda[:i]"``.
    amp : bool
        Mixed precision on CUDA (ignored on the CPU).
    random_state : int or None
        Seed of initialisation, batch order and augmentation; the same seed reproduces the codes
        on the CPU.
    verbose : bool
        Progress bar over epochs with the loss and the validation mAP.
    checkpoint_dir : path or None
        Checkpoint after every epoch there; ``fit(..., resume=True)`` continues from it.
    log_csv : path or None
        Per-epoch log (epoch, loss, lr, val_mAP, seconds, images_per_s) rewritten atomically.
    preset : str or None
        Named settings filling every argument not given (``"paper"``: the paper's and the
        authors' released settings, each cited; see :mod:`hashlearn.hashers.deep.presets`).
        Applied when the hasher is built; explicit arguments win.

    Attributes
    ----------
    net_ : torch.nn.Module
        The trained network, on the CPU, in eval mode, holding the weights of ``best_epoch_``.
    image_shape_ : tuple of int
        ``(h, w, c)`` of the training images.
    channel_mean_, channel_std_ : numpy.ndarray of float32, shape (c,)
        Per-channel standardisation, computed on the training images.
    history_ : list of dict
        One row per epoch: ``epoch`` (from 1), ``loss``, ``lr``, ``val_mAP`` (None without
        validation data), ``seconds``, ``images_per_s``.
    best_epoch_ : int
        The epoch whose weights were kept: best validation mAP, or the last epoch.
    loss_history_ : list of float
        The mean training loss of each epoch.
    fit_seconds_ : float
    """

    input_kind = "images"
    supervised = True
    loss_name: str = ""
    output_activation: str = "identity"
    presets: ClassVar[dict[str, Preset]] = {}  # a method's own, beside hashers.deep.presets

    @takes_presets
    def __init__(
        self,
        n_bits: int = 12,
        *,
        loss_params: dict[str, Any] | None = None,
        regularizers: dict[str, float] | None = None,
        backbone: str = "small-cnn",
        backbone_params: dict[str, Any] | None = None,
        epochs: int = 30,
        batch_size: int = 128,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        lr_schedule: str = "constant",
        lr_step_size: int | None = None,
        lr_gamma: float = 0.1,
        patience: int | None = None,
        augment: bool = False,
        device: str = "auto",
        amp: bool = True,
        random_state: int | None = None,
        verbose: bool = True,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        log_csv: str | os.PathLike[str] | None = None,
        preset: str | None = None,
    ) -> None:
        self.n_bits = n_bits
        self.loss_params = loss_params
        self.regularizers = regularizers
        self.backbone = backbone
        self.backbone_params = backbone_params
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.lr_step_size = lr_step_size
        self.lr_gamma = lr_gamma
        self.patience = patience
        self.augment = augment
        self.device = device
        self.amp = amp
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.log_csv = log_csv
        self.preset = preset

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments; path arguments as strings (models store them as JSON)."""
        params = super().get_params(deep=deep)
        for name in _PATH_PARAMS:
            if isinstance(params.get(name), os.PathLike):
                params[name] = os.fspath(params[name])
        return params

    def _make_loss(self) -> HashLoss:
        """The method's main loss: ``loss_name`` with ``loss_params`` over its paper defaults."""
        params = self.loss_params
        if params is not None and (
            not isinstance(params, dict) or not all(isinstance(k, str) for k in params)
        ):
            raise InvalidInputError(
                f"loss_params must be a dict of keyword arguments or None, got {params!r}"
            )
        return create_loss(self.loss_name, self._check_n_bits(), **(params or {}))

    def _full_loss(self) -> HashLoss:
        """The main loss plus the requested regularisers."""
        main = self._make_loss()
        if not self.regularizers:
            return main
        if not isinstance(self.regularizers, dict):
            raise InvalidInputError(
                f"regularizers must be a dict of name -> weight, got {self.regularizers!r}"
            )
        parts = [
            create_regularizer(name, weight, self.output_activation)
            for name, weight in self.regularizers.items()
        ]
        return CombinedLoss(main, parts)

    def _prepare_loss(self, loss: HashLoss, X: np.ndarray) -> None:
        """Give the loss what it takes from the training images ``X`` (``(n, h, w, c)`` float32
        in [0, 1], as checked) before training: BiHalf's similarity targets. Default: nothing."""

    def _backbone_params(self) -> dict[str, Any]:
        params = self.backbone_params
        if params is None:
            return {}
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise InvalidInputError(
                f"backbone_params must be a dict of keyword arguments or None, got {params!r}"
            )
        return dict(params)

    def _build_network(self, image_shape: tuple[int, ...]) -> nn.Module:
        h, w, c = image_shape
        return create_backbone(
            self.backbone, (c, h, w), self._check_n_bits(), **self._backbone_params()
        )

    def _trainer_config(self, resume: bool) -> TrainerConfig:
        return TrainerConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            lr_schedule=self.lr_schedule,
            lr_step_size=self.lr_step_size,
            lr_gamma=self.lr_gamma,
            patience=self.patience,
            augment=self.augment,
            device=self.device,
            amp=self.amp,
            random_state=self.random_state,
            verbose=self.verbose,
            checkpoint_dir=self.checkpoint_dir,
            resume=resume,
            log_csv=self.log_csv,
            description=f"{self.name} {self.n_bits} bits",
        )

    def _to_tensor(self, X: np.ndarray) -> torch.Tensor:
        """``(n, h, w, c)`` float32 in [0, 1] -> standardised ``(n, c, h, w)`` tensor."""
        return standardize(X, self.channel_mean_, self.channel_std_)

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        X_val: Any = None,
        y_val: Any = None,
        resume: bool = False,
    ) -> DeepHasher:
        """Train on images ``X`` (n, h, w[, c]) with labels ``y`` (n,) or (n, n_labels);
        unsupervised methods take ``y=None`` (labels given to them are checked, not learnt from).

        ``X_val``, ``y_val``: validation images and labels (same kinds), disjoint from the
        training and query sets; when given, the epoch with the best validation mAP is kept and
        ``patience`` can stop training early. Nothing but ``X``, ``y``, ``X_val`` and ``y_val``
        is seen in training. ``resume``: continue from the checkpoint in ``checkpoint_dir``.
        """
        start = time.perf_counter()
        self._check_n_bits()
        config = self._trainer_config(resume)
        seed = check_random_state(self.random_state)
        if seed is None:  # the trainer draws its own seed (or takes the resumed run's)
            seed = int(np.random.SeedSequence().entropy % (2**32))
        self._backbone_params()
        if (X_val is None) != (y_val is None):
            raise InvalidInputError("pass both X_val and y_val, or neither")
        X = check_images(X)
        if self.supervised or y is not None:
            y = self._check_labels(y, len(X))
        else:  # an unsupervised loss reads no labels: every image gets class 0
            y = np.zeros(len(X), dtype=np.int64)
        if len(X) < 2:
            raise InvalidInputError(f"{self.name!r} needs at least 2 training images, got {len(X)}")
        image_shape = tuple(int(s) for s in X.shape[1:])
        mean = X.mean(axis=(0, 1, 2)).astype(np.float32)
        std = np.maximum(X.std(axis=(0, 1, 2)), 1e-6).astype(np.float32)
        train = ArrayDataset(X, y, mean=mean, std=std, name="X")
        validation = None
        if X_val is not None:
            X_val = check_images(X_val, "X_val", image_shape=image_shape)
            y_val = check_labels(y_val, len(X_val), "y_val")
            if y_val.shape[1:] != y.shape[1:]:
                raise InvalidInputError(
                    f"y_val has shape {y_val.shape} but y has shape {y.shape}: both must be class "
                    "labels, or indicators of the same classes"
                )
            validation = ArrayDataset(X_val, y_val, mean=mean, std=std, name="X_val")
        with torch.random.fork_rng(devices=[]):  # the initialisation is seeded, on the CPU
            torch.random.default_generator.manual_seed(seed)
            net = self._build_network(image_shape)
        loss = self._full_loss()
        self._prepare_loss(loss, X)
        del X, X_val
        result = Trainer(config).fit(net, loss, train, validation)

        self.net_ = net.to("cpu")
        self.image_shape_ = image_shape
        self.channel_mean_ = mean
        self.channel_std_ = std
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.loss_history_ = [row["loss"] for row in result.history]
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def transform(self, X: Any, *, batch_size: int = 1024) -> np.ndarray:
        """Real network outputs ``(n, n_bits)`` float32; their signs are the code bits."""
        self._check_fitted()
        X = check_images(X, image_shape=self.image_shape_)
        device = next(self.net_.parameters()).device
        dtype = input_dtype(self.net_)
        out = np.empty((len(X), self.n_bits), dtype=np.float32)
        self.net_.eval()
        with torch.inference_mode():
            for begin in range(0, len(X), batch_size):
                batch = self._to_tensor(X[begin : begin + batch_size]).to(device, dtype)
                out[begin : begin + len(batch)] = self.net_(batch).float().cpu().numpy()
        return out

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        arrays["channel_mean"] = self.channel_mean_
        arrays["channel_std"] = self.channel_std_
        values = {
            "image_shape": list(self.image_shape_),
            "history": self.history_,
            "best_epoch": self.best_epoch_,
            "loss_history": self.loss_history_,
            "fit_seconds": self.fit_seconds_,
        }
        return arrays, values

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        try:  # the network is built from it before the saved weights are checked against it
            image_shape = check_image_shape(values["image_shape"])
        except InvalidInputError as exc:
            raise FileFormatError(f"the saved image shape is unreadable: {exc}") from None
        net = self._build_network(image_shape)
        state = {
            k[len("net.") :]: torch.from_numpy(v.copy())
            for k, v in arrays.items()
            if k.startswith("net.")
        }
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise FileFormatError(
                f"the saved network does not match its configuration: {exc}"
            ) from None
        net.eval()
        self.net_ = net
        self.image_shape_ = image_shape
        self.channel_mean_ = arrays["channel_mean"]
        self.channel_std_ = arrays["channel_std"]
        self.loss_history_ = [float(v) for v in values.get("loss_history", [])]
        # Models saved before the trainer kept only the loss of each epoch.
        self.history_ = list(
            values.get("history")
            or [{"epoch": i + 1, "loss": v} for i, v in enumerate(self.loss_history_)]
        )
        self.best_epoch_ = int(values.get("best_epoch", len(self.history_)))
        self.fit_seconds_ = float(values.get("fit_seconds", 0.0))
