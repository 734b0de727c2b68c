"""The shared part of deep hashers: a backbone, a loss module, and a seeded training loop."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from hashlearn._validation import (
    check_float,
    check_images,
    check_int,
    check_labels,
    check_random_state,
)
from hashlearn.exceptions import FileFormatError, InvalidInputError
from hashlearn.hashers.base import Hasher
from hashlearn.hashers.deep.backbones import create_backbone
from hashlearn.hashers.deep.losses import pairwise_similarity


def resolve_device(device: str) -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; otherwise any torch device string."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise InvalidInputError(
            f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:i]'"
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(f"device {device!r} was asked for but CUDA is not available")
    return resolved


class DeepHasher(Hasher):
    """A supervised deep hasher: ``backbone(images) -> (n, n_bits)`` real outputs, trained with
    ``self._make_loss()`` on mini-batches; codes are the signs of the outputs.

    Subclasses define ``__init__`` (storing their parameters, which include ``n_bits``,
    ``backbone``, ``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``device``,
    ``random_state`` and ``verbose``) and ``_make_loss``.
    """

    input_kind = "images"
    supervised = True

    backbone: str
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    device: str
    random_state: int | None
    verbose: bool

    def _make_loss(self) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def _build_network(self, image_shape: tuple[int, ...]) -> nn.Module:
        h, w, c = image_shape
        return create_backbone(self.backbone, (c, h, w), self._check_n_bits())

    def _to_tensor(self, X: np.ndarray) -> torch.Tensor:
        """``(n, h, w, c)`` float32 in [0, 1] -> standardised ``(n, c, h, w)`` tensor."""
        x = torch.from_numpy((X - self.channel_mean_) / self.channel_std_)
        return x.permute(0, 3, 1, 2).contiguous()

    def fit(self, X: Any, y: Any = None) -> DeepHasher:
        """Train on images ``X`` (n, h, w[, c]) with labels ``y`` (n,) or (n, n_labels)."""
        self._check_n_bits()
        epochs = check_int(self.epochs, "epochs", minimum=1, maximum=100_000)
        batch_size = check_int(self.batch_size, "batch_size", minimum=2)
        lr = check_float(self.lr, "lr", minimum=0.0, strict_minimum=True)
        weight_decay = check_float(self.weight_decay, "weight_decay", minimum=0.0)
        seed = check_random_state(self.random_state)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**32))
        if y is None:
            raise InvalidInputError(f"{self.name!r} is supervised: fit(X, y) needs labels y")
        X = check_images(X)
        y = check_labels(y, len(X))
        if len(X) < 2:
            raise InvalidInputError(f"{self.name!r} needs at least 2 training images, got {len(X)}")
        device = resolve_device(self.device)

        self.image_shape_ = tuple(int(s) for s in X.shape[1:])
        self.channel_mean_ = X.mean(axis=(0, 1, 2)).astype(np.float32)
        self.channel_std_ = np.maximum(X.std(axis=(0, 1, 2)), 1e-6).astype(np.float32)
        inputs = self._to_tensor(X).to(device)
        labels = torch.from_numpy(y).to(device)
        loss_fn = self._make_loss()
        devices = [device.index or 0] if device.type == "cuda" else []
        history: list[float] = []
        start = time.perf_counter()
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            net = self._build_network(self.image_shape_).to(device)
            optimizer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
            order_rng = torch.Generator().manual_seed(seed)
            n = len(inputs)
            bar = tqdm(
                range(epochs),
                desc=f"{self.name} {self.n_bits} bits",
                unit="epoch",
                disable=not self.verbose,
                leave=False,
            )
            for _ in bar:
                net.train()
                order = torch.randperm(n, generator=order_rng).to(device)
                total, batches = 0.0, 0
                for begin in range(0, n, batch_size):
                    idx = order[begin : begin + batch_size]
                    if len(idx) < 2:
                        continue
                    outputs = net(inputs[idx])
                    loss = loss_fn(outputs, pairwise_similarity(labels[idx]))
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach())
                    batches += 1
                history.append(total / max(batches, 1))
                bar.set_postfix(loss=f"{history[-1]:.4f}")
        net.eval()
        self.net_ = net.to("cpu") if device.type != "cpu" else net
        self.loss_history_ = history
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def transform(self, X: Any, *, batch_size: int = 1024) -> np.ndarray:
        """Real network outputs ``(n, n_bits)`` float32; their signs are the code bits."""
        self._check_fitted()
        X = check_images(X, image_shape=self.image_shape_)
        device = next(self.net_.parameters()).device
        out = np.empty((len(X), self.n_bits), dtype=np.float32)
        self.net_.eval()
        with torch.inference_mode():
            for begin in range(0, len(X), batch_size):
                batch = self._to_tensor(X[begin : begin + batch_size]).to(device)
                out[begin : begin + len(batch)] = self.net_(batch).float().cpu().numpy()
        return out

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        arrays["channel_mean"] = self.channel_mean_
        arrays["channel_std"] = self.channel_std_
        values = {
            "image_shape": list(self.image_shape_),
            "loss_history": self.loss_history_,
            "fit_seconds": self.fit_seconds_,
        }
        return arrays, values

    def _set_state(self, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
        self.image_shape_ = tuple(int(s) for s in values["image_shape"])
        self.channel_mean_ = arrays["channel_mean"]
        self.channel_std_ = arrays["channel_std"]
        net = self._build_network(self.image_shape_)
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
        self.loss_history_ = list(values.get("loss_history", []))
        self.fit_seconds_ = float(values.get("fit_seconds", 0.0))
