"""Pretrained-network embeddings: a torchvision or timm classifier's penultimate layer as features.

``create_features("torchvision:resnet18")`` or ``create_features("timm:vit_small_patch16_224")``
builds an extractor whose features are what the network computes just before its classifier (the
input of its last ``nn.Linear``: 512 values for ResNet-18, 768 for ViT-B). Followed by PCA and a
rotation learned by ITQ, and the sign, this is the training-free "frozen features, PCA, rotation,
sign" recipe of Hashing-Baseline (arXiv 2509.14427), which reports it close to trained deep
hashing on semantic retrieval benchmarks::

    >>> hasher = FeatureHasher(create_features("torchvision:resnet18"), create_hasher("itq"))  # doctest: +SKIP

Weights (``weights``):

- ``"pretrained"`` (default): the library's default ImageNet weights, downloaded once over HTTPS
  into torch's hub cache (``torch.hub.get_dir()/checkpoints``, ``$TORCH_HOME/hub/checkpoints``)
  and read from there afterwards. torchvision names the files with the first hex digits of their
  SHA-256, which are checked. Without a network this raises :class:`DownloadError` saying where to
  put the file by hand;
- a path to a local state-dict file of the classifier (``.safetensors`` preferred; ``.pt``,
  ``.pth`` and ``.bin`` are read with ``torch.load(weights_only=True)``, never unpickled); its
  classifier keys may be missing;
- ``None``: random weights, seeded by ``random_state``. Random features keep only what the
  architecture does by itself; they are for tests and measurements, not for retrieval.

Every image goes through the same steps: a grey image (``c = 1``) is repeated into 3 channels, a
4th (alpha) channel dropped, the image resized with antialiased bilinear filtering to
``image_size`` x ``image_size`` pixels (the whole image, no crop: a near-duplicate keeps its
borders), normalised with the ImageNet mean and standard deviation (timm: the model's own), and
passed through the network in batches of ``batch_size``, on the GPU when one is present.

The fitted extractor saves the network's weights with its arrays (``net.<key>``, safetensors), so
a model file that holds it encodes anywhere without downloading anything. torch and the package
(``torchvision`` / ``timm``) are imported when an extractor is fitted or loaded; a missing package
raises :class:`MissingPackageError` naming the extra to install.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hashlearn._progress import progress
from hashlearn._validation import check_image_shape, check_images, check_int
from hashlearn.exceptions import (
    DownloadError,
    InvalidInputError,
    MissingPackageError,
    UnknownNameError,
)
from hashlearn.features.base import FeatureExtractor
from hashlearn.features.weights import load_weights

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "MissingPackageError",
    "PretrainedEmbedding",
    "TimmEmbedding",
    "TorchvisionEmbedding",
    "fetch_weights",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_HASH_PREFIX = re.compile(r"-([a-f0-9]{6,})\.")  # torchvision's "resnet18-f37072fd.pth"
_CHUNK = 1 << 20


def fetch_weights(
    url: str,
    filename: str,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    verbose: bool = True,
) -> Path:
    """The weights file at ``url``, downloaded once into ``cache_dir`` and read from there after.

    Parameters
    ----------
    url : where the file is published (``https://``; ``file://`` works too).
    filename : its name in the cache. When it holds ``-<hex digits>.`` (torchvision's
        convention), the file's SHA-256 must start with those digits.
    cache_dir : default ``torch.hub.get_dir() / "checkpoints"`` (``$TORCH_HOME/hub/checkpoints``).
    verbose : progress bar while downloading.

    Returns
    -------
    Path of the cached file, complete: a download goes to ``<name>.part`` and is renamed when done.

    Raises
    ------
    DownloadError : the file cannot be fetched (no network...): says where to put it by hand.
    """
    if cache_dir is None:
        import torch.hub

        cache_dir = Path(torch.hub.get_dir()) / "checkpoints"
    target = Path(cache_dir) / filename
    if target.is_file():
        return target
    part = target.with_name(target.name + ".part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with progress(
                total=total, unit="B", unit_scale=True, desc=filename, disable=not verbose
            ) as bar:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"cannot download the weights {url} ({reason}); without a network, fetch the file "
            f"elsewhere and either pass weights='<the file>' or put it at {str(target)!r}"
        ) from None
    match = _HASH_PREFIX.search(filename)
    if match and not digest.hexdigest().startswith(match.group(1)):
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"the file downloaded from {url} has SHA-256 {digest.hexdigest()}, which does not "
            f"start with {match.group(1)} as its name says; the download is corrupt: try again"
        )
    part.replace(target)
    return target


def _import(package: str, label: str) -> Any:
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise MissingPackageError(
            f"feature extractor {label!r} needs the package {package!r}, which cannot be imported "
            f"({exc}): pip install 'hashlearn[{package}]'",
            name=package,
        ) from None


class PretrainedEmbedding(FeatureExtractor):
    """Base of the network-embedding extractors; subclasses say how a family builds its models.

    Parameters
    ----------
    model : the family's model name, e.g. ``"resnet18"``.
    weights : ``"pretrained"`` (download once, then the cache), a local state-dict file, or
        ``None`` (random weights from ``random_state``).
    image_size : side of the square input the network gets; None: the model's own (224 for
        torchvision models, the pretrained config's for timm).
    batch_size : images per forward pass.
    device : ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; None: the GPU when there is one.
    random_state : seed of the random weights (``weights=None``).
    verbose : progress bars (download, and images when there are more than one batch).

    Attributes
    ----------
    net_ : the network (classifier replaced by an identity), in eval mode on ``device``.
    n_features_ : int, values per image.
    image_shape_ : (h, w, c) of the images it was fitted on (the size files are read at; any
        size is taken and resized).
    input_size_ : int, the side images are resized to.
    mean_, std_ : per-channel normalisation, ``float32 (3,)``.
    """

    family: ClassVar[str] = ""
    input_kind = "images"

    def __init__(
        self,
        *,
        model: str = "resnet18",
        weights: str | os.PathLike[str] | None = "pretrained",
        image_size: int | None = None,
        batch_size: int = 32,
        device: str | None = None,
        random_state: int = 0,
        verbose: bool = True,
    ) -> None:
        self.model = model
        self.weights = weights
        self.image_size = image_size
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @property
    def label(self) -> str:
        return f"{self.family}:{self.model}"

    def get_config(self) -> dict[str, Any]:
        """``{"name": "<family>:<model>", "params": the other constructor arguments}``."""
        config = super().get_config()
        params = dict(config["params"])
        params.pop("model")
        if isinstance(params["weights"], os.PathLike):
            params["weights"] = os.fspath(params["weights"])
        return {"name": self.label, "params": params}

    # -- what a family provides ---------------------------------------------------------------

    def _build(self) -> Any:  # pragma: no cover - abstract
        """The family's classifier ``model``, randomly initialised (no download)."""
        raise NotImplementedError

    def _pretrained_file(self) -> Path:  # pragma: no cover - abstract
        """The default pretrained weights, fetched into the cache when missing."""
        raise NotImplementedError

    def _input_spec(self) -> tuple[int, tuple[float, ...], tuple[float, ...]]:
        """``(default image side, mean, std)``."""
        return 224, IMAGENET_MEAN, IMAGENET_STD

    # -- estimator API ------------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> PretrainedEmbedding:
        """Build the network with its weights, and check it on the images ``X``."""
        images = _check_colour_images(check_images(X), self.label)
        check_int(self.batch_size, "batch_size", minimum=1)
        weights = self.weights
        if weights is not None and not isinstance(weights, (str, os.PathLike)):
            raise InvalidInputError(
                f"weights must be 'pretrained', a local file or None, got {weights!r}"
            )
        if weights == "pretrained":
            weights = self._pretrained_file()
        net = self._headless(check_int(self.random_state, "random_state"), weights)
        self._set_network(net, images.shape[1:])
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Features ``float32 (n, n_features_)`` of images ``(n, h, w[, c])`` of any size."""
        import torch

        self._check_fitted()
        images = _check_colour_images(check_images(X), self.label)
        batch_size = check_int(self.batch_size, "batch_size", minimum=1)
        n = len(images)
        out = np.empty((n, self.n_features_), dtype=np.float32)
        show = bool(self.verbose) and n > batch_size
        with (
            torch.inference_mode(),
            progress(total=n, desc=self.label, unit="img", disable=not show) as bar,
        ):
            for start in range(0, n, batch_size):
                stop = min(n, start + batch_size)
                batch = self._prepare(images[start:stop])
                out[start:stop] = self.net_(batch).float().cpu().numpy().reshape(stop - start, -1)
                bar.update(stop - start)
        return out

    def _prepare(self, images: np.ndarray) -> Any:
        """``(b, h, w, c)`` in [0, 1] -> the network's normalised ``(b, 3, s, s)`` input."""
        import torch
        from torch.nn import functional

        batch = torch.from_numpy(np.ascontiguousarray(images)).to(self._device)
        batch = batch.permute(0, 3, 1, 2)
        if batch.shape[1] == 1:
            batch = batch.expand(-1, 3, -1, -1)
        elif batch.shape[1] == 4:
            batch = batch[:, :3]
        side = self.input_size_
        if tuple(batch.shape[2:]) != (side, side):
            batch = functional.interpolate(
                batch, size=(side, side), mode="bilinear", align_corners=False, antialias=True
            )
        mean = torch.as_tensor(self.mean_, device=batch.device).view(1, 3, 1, 1)
        std = torch.as_tensor(self.std_, device=batch.device).view(1, 3, 1, 1)
        return (batch - mean) / std

    # -- the network ----------------------------------------------------------------------------

    def _headless(self, random_state: int, weights: str | os.PathLike[str] | None = None) -> Any:
        """The classifier built from ``random_state``, given the ``weights`` file when there is
        one (its classifier keys may be missing or of another shape), with its last ``nn.Linear``
        replaced by an identity (the other state-dict keys unchanged)."""
        import torch
        from torch import nn

        if not isinstance(self.model, str) or not self.model:
            raise InvalidInputError(f"model must be a model name, got {self.model!r}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(random_state)
            net = self._build()
        linears = [name for name, m in net.named_modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise InvalidInputError(
                f"{self.label} has no nn.Linear classifier to take features before"
            )
        head = linears[-1]
        if weights is not None:
            load_weights(net, weights, self.label, optional=(f"{head}.weight", f"{head}.bias"))
        parent_name, _, child = head.rpartition(".")
        setattr(net.get_submodule(parent_name) if parent_name else net, child, nn.Identity())
        return net

    def _set_network(self, net: Any, image_shape: tuple[int, ...]) -> None:
        import torch

        default_side, mean, std = self._input_spec()
        side = default_side if self.image_size is None else self.image_size
        self.input_size_ = check_int(side, "image_size", minimum=8)
        self.mean_ = np.asarray(mean, dtype=np.float32)
        self.std_ = np.asarray(std, dtype=np.float32)
        self._device = torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.net_ = net.eval().to(self._device)
        self.image_shape_ = tuple(int(s) for s in image_shape)
        with torch.inference_mode():
            try:
                out = self.net_(self._prepare(np.zeros((1, *self.image_shape_), np.float32)))
            except RuntimeError as exc:
                raise InvalidInputError(
                    f"{self.label} does not take {self.input_size_} x {self.input_size_} images: "
                    f"{exc}"
                ) from None
        self.n_features_ = int(np.prod(out.shape[1:]))

    # -- persistence --------------------------------------------------------------------------

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {
            f"net.{key}": value.detach().cpu().numpy()
            for key, value in self.net_.state_dict().items()
        }
        values = {
            "image_shape": list(self.image_shape_),
            "n_features": self.n_features_,
            "input_size": self.input_size_,
            "mean": self.mean_.tolist(),
            "std": self.std_.tolist(),
        }
        return arrays, values

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        import torch

        image_shape = check_image_shape(values["image_shape"])  # bounded before it is allocated
        net = self._headless(0)
        state = {
            key[len("net.") :]: torch.from_numpy(np.array(array))
            for key, array in arrays.items()
            if key.startswith("net.")
        }
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise InvalidInputError(
                f"the saved network does not fit {self.label}: {str(exc).splitlines()[0]}"
            ) from None
        self._set_network(net, image_shape)
        self.input_size_ = int(values["input_size"])
        self.mean_ = np.asarray(values["mean"], dtype=np.float32)
        self.std_ = np.asarray(values["std"], dtype=np.float32)
        self.n_features_ = int(values["n_features"])


class TorchvisionEmbedding(PretrainedEmbedding):
    """A ``torchvision.models`` classifier's penultimate features (``"torchvision:<model>"``);
    default pretrained weights: the model's ``DEFAULT`` weights enum (ImageNet-1k)."""

    name = "torchvision"
    family = "torchvision"

    def _models(self) -> Any:
        _import("torchvision", self.label)
        models = importlib.import_module("torchvision.models")
        if self.model not in models.list_models():
            raise UnknownNameError(
                f"unknown torchvision model {self.model!r}; see torchvision.models.list_models()"
            )
        return models

    def _build(self) -> Any:
        return self._models().get_model(self.model, weights=None)

    def _pretrained_file(self) -> Path:
        entry = self._models().get_model_weights(self.model).DEFAULT
        url = entry.url
        return fetch_weights(url, url.rsplit("/", 1)[-1], verbose=bool(self.verbose))


class TimmEmbedding(PretrainedEmbedding):
    """A ``timm`` model's pre-logits features (``"timm:<model>"``); default pretrained weights:
    the model's default pretrained config (its ``url``, else ``model.safetensors`` of its
    Hugging Face Hub repository); input size, mean and std from that config."""

    name = "timm"
    family = "timm"

    def _timm(self) -> Any:
        timm = _import("timm", self.label)
        if not timm.is_model(self.model):
            raise UnknownNameError(
                f"unknown timm model {self.model!r}; see timm.list_models('*{self.model[:8]}*')"
            )
        return timm

    def _config(self) -> Any:
        return self._timm().models.get_pretrained_cfg(self.model)

    def _build(self) -> Any:
        return self._timm().create_model(self.model, pretrained=False)

    def _input_spec(self) -> tuple[int, tuple[float, ...], tuple[float, ...]]:
        config = self._config()
        if config is None:
            return super()._input_spec()
        return int(config.input_size[-1]), tuple(config.mean), tuple(config.std)

    def _pretrained_file(self) -> Path:
        config = self._config()
        url = getattr(config, "url", None)
        hub_id = getattr(config, "hf_hub_id", None)
        if url:
            name = url.rsplit("/", 1)[-1]
        elif hub_id:
            file = getattr(config, "hf_hub_filename", None) or "model.safetensors"
            url = f"https://huggingface.co/{hub_id}/resolve/main/{file}"
            name = f"timm--{hub_id.replace('/', '--')}--{file}"
        else:
            raise DownloadError(
                f"timm publishes no pretrained weights for {self.model!r}; pass weights='<file>'"
            )
        return fetch_weights(url, name, verbose=bool(self.verbose))


def _check_colour_images(images: np.ndarray, label: str) -> np.ndarray:
    if images.shape[3] not in (1, 3, 4):
        raise InvalidInputError(
            f"{label} takes grey (1), RGB (3) or RGBA (4) images, got {images.shape[3]} channels"
        )
    return images
