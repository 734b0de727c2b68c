"""The shared part of deep hashers: a backbone, a loss module, and the :class:`Trainer`."""

from __future__ import annotations

import copy
import dataclasses
import os
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from hashlearn._json import read_json_file
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
from hashlearn.hashers.deep.presets import Preset, apply_preset, takes_presets
from hashlearn.hashers.deep.trainer.checkpoint import CHECKPOINT_JSON, MAX_CHECKPOINT_JSON_BYTES
from hashlearn.hashers.deep.trainer.config import TrainerConfig
from hashlearn.hashers.deep.trainer.data import (
    ArrayDataset,
    input_dtype,
    resolve_device,
    standardize,
)
from hashlearn.hashers.deep.trainer.distributed import setup_distributed
from hashlearn.hashers.deep.trainer.early_stopping import (
    DEFAULT_PATIENCE,
    EARLY_STOPPING_MIN_SAMPLES,
    carve_validation,
    check_validation_fraction,
    resolve_early_stopping,
)
from hashlearn.hashers.deep.trainer.loop import Trainer

__all__ = ["DeepHasher", "resolve_device"]

_PATH_PARAMS = ("checkpoint_dir", "log_csv", "log_dir")


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
    epochs, batch_size, lr, weight_decay : Adam training schedule; ``epochs`` is the most
        epochs trained (early stopping may end sooner). The defaults (50 epochs, batch 128,
        lr 3e-3 decayed by ``lr_schedule="cosine"``) were chosen by measurement on validation
        parts of mnist5k, 12/24/48 bits, seeds 0-2 (``benchmarks/deep_defaults.py``, figures in
        ``benchmarks/README.md``); a method whose measurements chose otherwise says so in its
        class attribute ``defaults`` (DPSH: lr 1e-3, 100 epochs; DSDH: batches of 64;
        BiHalf, CIBHash: a constant rate and ``swa=0.5``).
    lr_schedule : {"constant", "cosine", "step"}, default "cosine"
        Per-epoch learning rate; ``lr_step_size`` (None: a third of the epochs) and ``lr_gamma``
        parametrise ``"step"`` (see :func:`~hashlearn.hashers.deep.trainer.scheduled_lr`). With a
        constant rate the last epoch's mAP swings by several points from one epoch to the next
        (mnist5k, validation mAP); the cosine decay ends the run on a settled network, so the
        last epoch is a good one without validation data.
    swa : float in [0, 1], default 0
        Stochastic weight averaging (Izmailov et al., UAI 2018): the network ends holding the
        mean of its weights at the end of each of the last ``ceil(swa * epochs)`` epochs (0:
        none; see :class:`~hashlearn.hashers.deep.trainer.TrainerConfig`). BiHalf and CIBHash
        average the last half (``swa=0.5``), by measurement: their validation mAP swings by
        several points from epoch to epoch at a constant rate, and the last half's average
        scored above the last epoch (mnist5k, validation part, seeds 0-2; figures in
        ``benchmarks/README.md``).
    early_stopping : bool or "auto", default False
        Without ``X_val`` in ``fit``: set a stratified ``validation_fraction`` of the training
        images aside (seeded by ``random_state``), train on the rest, keep the epoch with the
        best validation mAP and stop after ``patience`` epochs without a better one.
        ``"auto"`` turns it on from 1,000 labelled training images (why 1,000:
        :mod:`~hashlearn.hashers.deep.trainer.early_stopping`) and leaves it off for fits
        without labels (the validation mAP ranks by label); off, all ``epochs`` are trained and
        the last is kept. Ignored when ``fit`` is given ``X_val``, ``y_val``: those choose the
        epoch. Off by default, by measurement: with the cosine-decayed default rate the last
        epoch is a settled one, and the 10% set aside only costs training data. DSH on mnist5k,
        12/24/48 bits, seeds 0-2, validation part against the train part: mAP 0.9713/0.9744/
        0.9749 with early stopping against 0.9727/0.9763/0.9806 without (test mAP 0.9625/
        0.9596/0.9609 against 0.9643/0.9717/0.9742; ``benchmarks/README.md``).
    validation_fraction : float in (0, 1)
        The share of the training images set aside by early stopping (at least 2 images).
    patience : int or None
        Stop after this many epochs without a better validation mAP. None: 5 epochs when early
        stopping carved the validation part, otherwise no stop (with ``X_val`` the best epoch is
        kept all the same). Needs validation data: ``X_val`` or early stopping.
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
    log_dir : path or None
        TensorBoard event files there: loss, learning rate, validation mAP and bit balance per
        epoch (:mod:`~hashlearn.hashers.deep.trainer.tensorboard_log`); needs
        ``pip install 'hashlearn[tensorboard]'``.

    Attributes
    ----------
    net_ : torch.nn.Module
        The trained network, on the CPU, in eval mode, holding the weights of ``best_epoch_``
        (with ``swa``, from its first averaged epoch on, the mean of the averaged epochs' weights
        up to ``best_epoch_``).
    image_shape_ : tuple of int
        ``(h, w, c)`` of the training images.
    channel_mean_, channel_std_ : numpy.ndarray of float32, shape (c,)
        Per-channel standardisation, computed on the images trained on (without a carved
        validation part).
    history_ : list of dict
        One row per epoch: ``epoch`` (from 1), ``loss``, ``lr``, ``val_mAP`` (None without
        validation data), ``seconds``, ``images_per_s``.
    best_epoch_ : int
        The epoch whose weights were kept: best validation mAP, or the last epoch.
    best_val_map_ : float or None
        The validation mAP of ``best_epoch_`` (None without validation data).
    early_stopping_ : bool
        Whether a validation part was carved from the training images (early stopping).
    validation_ : dict or None
        The data the epoch was chosen on: ``source`` (``"split"``: carved from ``X``;
        ``"X_val"``: given to ``fit``; ``"none"``), ``n_train`` and ``n_validation`` (images
        trained and validated on), ``fraction`` and ``seed`` of the carved part (None
        otherwise: ``carve_validation(y, fraction, seed)`` gives its positions in ``X`` back),
        ``patience`` and ``stopped_early``. None for models saved before it was recorded.
    loss_history_ : list of float
        The mean training loss of each epoch.
    fit_seconds_ : float
    """

    input_kind = "images"
    supervised = True
    loss_name: str = ""
    output_activation: str = "identity"
    presets: ClassVar[dict[str, Preset]] = {}  # a method's own, beside hashers.deep.presets
    # a method's own defaults of constructor arguments, where measurement chose other values
    # than the signature's (applied by ``takes_presets`` to the arguments not given)
    defaults: ClassVar[dict[str, Any]] = {}

    @takes_presets
    def __init__(
        self,
        n_bits: int = 12,
        *,
        loss_params: dict[str, Any] | None = None,
        regularizers: dict[str, float] | None = None,
        backbone: str = "small-cnn",
        backbone_params: dict[str, Any] | None = None,
        epochs: int = 50,
        batch_size: int = 128,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        lr_schedule: str = "cosine",
        lr_step_size: int | None = None,
        lr_gamma: float = 0.1,
        swa: float = 0.0,
        early_stopping: bool | str = False,
        validation_fraction: float = 0.1,
        patience: int | None = None,
        augment: bool = False,
        device: str = "auto",
        amp: bool = True,
        random_state: int | None = None,
        verbose: bool = True,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        log_csv: str | os.PathLike[str] | None = None,
        preset: str | None = None,
        log_dir: str | os.PathLike[str] | None = None,
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
        self.swa = swa
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.augment = augment
        self.device = device
        self.amp = amp
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.log_csv = log_csv
        self.preset = preset
        self.log_dir = log_dir

    def set_params(self, **params: Any) -> DeepHasher:
        """Set constructor arguments (see :class:`~hashlearn._params.Parameters`). A ``preset``
        named here is applied as the constructor applies it: its settings replace the present
        values of every argument not given in this same call (``loss_params`` merged, the
        present entries over the preset's)."""
        super().set_params(**params)
        if params.get("preset") is not None:
            apply_preset(self, params["preset"], set(params) - {"preset"})
        return self

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

    def _saved_network(
        self, image_shape: tuple[int, int, int], saved: dict[str, np.ndarray]
    ) -> nn.Module:
        """The network of a model file, holding its ``saved`` weights.

        It is built on the meta device first, which allocates nothing, and its parameters are
        compared with the saved ones: a configuration that does not fit them (the image shape or
        channels of a damaged or crafted file) is refused before any memory is taken for it.
        The saved tensors then become the weights, so a network takes no more memory than its
        file. The backbone's ``weights`` file is not read: the model file holds the weights.
        """
        h, w, c = image_shape
        builder = copy.copy(self)  # the same method and parameters, but no backbone weights file
        builder.backbone_params = {
            k: v for k, v in self._backbone_params().items() if k != "weights"
        } or None
        try:
            with torch.device("meta"):
                net = builder._build_network(image_shape)
        except (RuntimeError, OverflowError, MemoryError) as exc:
            raise FileFormatError(
                f"the saved network configuration cannot be built: {exc}"
            ) from None
        expected = {key: tuple(value.shape) for key, value in net.state_dict().items()}
        # scalars (BatchNorm's num_batches_tracked) are saved with shape (1,), as torch allows
        got = {
            key: () if expected.get(key) == () and value.shape == (1,) else tuple(value.shape)
            for key, value in saved.items()
        }
        if expected != got:
            wrong = sorted(set(expected) ^ set(got)) or sorted(
                key for key in expected if expected[key] != got[key]
            )
            key = wrong[0]
            raise FileFormatError(
                f"the saved network does not match its configuration: {key!r} is "
                f"{got.get(key, 'missing')} in the file, {expected.get(key, 'absent')} in a "
                f"{self.backbone!r} network for images {h}x{w}x{c}"
                + (f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else "")
            )
        state = {
            key: torch.from_numpy(np.array(value).reshape(got[key])) for key, value in saved.items()
        }
        try:
            net.load_state_dict(state, assign=True)
        except RuntimeError as exc:  # a dtype the network cannot take
            raise FileFormatError(
                f"the saved network does not match its configuration: {exc}"
            ) from None
        if any(t.is_meta for t in [*net.parameters(), *net.buffers()]):
            # a buffer that is not saved (none of the built-in backbones has one): build the
            # network for real, now that its size is known to be that of the saved weights
            with torch.random.fork_rng(devices=[]):
                net = builder._build_network(image_shape)
            net.load_state_dict(state)
        return net

    def _trainer_config(self, resume: bool) -> TrainerConfig:
        return TrainerConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            lr_schedule=self.lr_schedule,
            lr_step_size=self.lr_step_size,
            lr_gamma=self.lr_gamma,
            swa=self.swa,
            patience=self.patience,
            augment=self.augment,
            device=self.device,
            amp=self.amp,
            random_state=self.random_state,
            verbose=self.verbose,
            checkpoint_dir=self.checkpoint_dir,
            resume=resume,
            log_csv=self.log_csv,
            log_dir=self.log_dir,
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
        ``patience`` can stop training early. Without them, early stopping (``early_stopping``,
        on by default from 1,000 labelled images) carves a stratified validation part out of
        ``X``; ``validation_`` records it. Nothing but ``X``, ``y``, ``X_val`` and ``y_val`` is
        seen in training. ``resume``: continue from the checkpoint in ``checkpoint_dir``.
        """
        start = time.perf_counter()
        self._check_n_bits()
        config = self._trainer_config(resume)
        fraction = check_validation_fraction(self.validation_fraction)
        self._backbone_params()
        if (X_val is None) != (y_val is None):
            raise InvalidInputError("pass both X_val and y_val, or neither")
        X = check_images(X)
        labelled = self.supervised or y is not None
        if labelled:
            y = self._check_labels(y, len(X))
        else:  # an unsupervised loss reads no labels: every image gets class 0
            y = np.zeros(len(X), dtype=np.int64)
        if len(X) < 2:
            raise InvalidInputError(f"{self.name!r} needs at least 2 training images, got {len(X)}")
        carve = resolve_early_stopping(self.early_stopping, len(X), labelled=labelled)
        carve = carve and X_val is None
        if self.patience is not None and X_val is None and not carve:
            raise InvalidInputError(
                f"patience={self.patience} (early stopping) needs validation data: pass X_val "
                f"and y_val, or early_stopping=True (early_stopping='auto' turns it on from "
                f"{EARLY_STOPPING_MIN_SAMPLES:,} labelled images; X has {len(X):,})"
            )
        seed = self._fit_seed(resume)
        config = dataclasses.replace(config, random_state=seed)
        image_shape = tuple(int(s) for s in X.shape[1:])
        if carve:
            train_rows, val_rows = carve_validation(y, fraction, seed)
            X, X_val, y, y_val = X[train_rows], X[val_rows], y[train_rows], y[val_rows]
            if self.patience is None:
                config = dataclasses.replace(config, patience=DEFAULT_PATIENCE)
        mean = X.mean(axis=(0, 1, 2)).astype(np.float32)
        std = np.maximum(X.std(axis=(0, 1, 2)), 1e-6).astype(np.float32)
        train = ArrayDataset(X, y, mean=mean, std=std, name="X")
        validation = None
        if carve:
            validation = ArrayDataset(
                X_val, y_val, mean=mean, std=std, name="the validation part of X"
            )
        elif X_val is not None:
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
        self.best_val_map_ = result.best_val_map
        self.early_stopping_ = carve
        self.validation_ = {
            "source": "split" if carve else "none" if validation is None else "X_val",
            "n_train": len(train),
            "n_validation": 0 if validation is None else len(validation),
            "fraction": fraction if carve else None,
            "seed": seed if carve else None,
            "patience": config.patience,
            "stopped_early": result.stopped_early,
        }
        self.loss_history_ = [row["loss"] for row in result.history]
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _fit_seed(self, resume: bool) -> int:
        """The seed of this fit: ``random_state``; without one, that of the checkpoint resumed,
        else fresh entropy, rank 0's in a distributed run (so that every process carves the
        same validation part)."""
        seed = check_random_state(self.random_state)
        if seed is not None:
            return seed
        if resume:
            path = Path(self.checkpoint_dir) / CHECKPOINT_JSON  # type: ignore[arg-type]
            try:
                document = read_json_file(
                    path, max_bytes=MAX_CHECKPOINT_JSON_BYTES, error=FileFormatError
                )
                return int(document["seed"])
            except (OSError, ValueError, KeyError, TypeError):
                pass  # no readable checkpoint: the trainer starts afresh, or reports it
        group, _ = setup_distributed(self.device)
        return int(group.broadcast(int(np.random.SeedSequence().entropy % (2**32))))

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
            "best_val_map": self.best_val_map_,
            "early_stopping": self.early_stopping_,
            "validation": self.validation_,
            "loss_history": self.loss_history_,
            "fit_seconds": self.fit_seconds_,
        }
        return arrays, values

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        try:  # the network is built from it before the saved weights are checked against it
            image_shape = check_image_shape(values["image_shape"])
        except InvalidInputError as exc:
            raise FileFormatError(f"the saved image shape is unreadable: {exc}") from None
        saved = {k[len("net.") :]: v for k, v in arrays.items() if k.startswith("net.")}
        net = self._saved_network(image_shape, saved)
        c = image_shape[2]
        for name in ("channel_mean", "channel_std"):
            array = arrays[name]
            if array.shape != (c,) or array.dtype != np.float32:
                raise FileFormatError(
                    f"the saved {name} is {array.dtype} {array.shape}, not float32 ({c},) for "
                    f"images of {c} channel(s)"
                )
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
        # Models saved before early stopping was recorded: the score is in the history.
        best_val_map = values.get("best_val_map")
        if best_val_map is None and 0 < self.best_epoch_ <= len(self.history_):
            best_val_map = self.history_[self.best_epoch_ - 1].get("val_mAP")
        self.best_val_map_ = None if best_val_map is None else float(best_val_map)
        self.early_stopping_ = bool(values.get("early_stopping", False))
        validation = values.get("validation")
        self.validation_ = dict(validation) if isinstance(validation, dict) else None
        self.fit_seconds_ = float(values.get("fit_seconds", 0.0))
