"""Network weights from local state-dict files, checked key by key against the network; nothing
is unpickled.

Used by the pretrained-network feature extractors (:mod:`hashlearn.features.embeddings`) and by
the deep hashers' backbones (:mod:`hashlearn.hashers.deep.backbones.weights`). torch is imported
when a file is read, so importing this module does not import it."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hashlearn.exceptions import FileFormatError, InvalidInputError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["WEIGHT_SUFFIXES", "load_state_dict_file", "load_weights"]

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


def load_state_dict_file(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a state dict (parameter name -> tensor) from a local file, on the CPU.

    ``.safetensors`` files (preferred) are read with safetensors; ``.pt``, ``.pth`` and ``.bin``
    with ``torch.load(weights_only=True)``, which refuses anything but tensors and plain
    containers (no pickled code runs). A checkpoint that wraps the state dict under a
    ``"state_dict"`` or ``"model"`` key is unwrapped.

    Raises
    ------
    InvalidInputError : ``path`` is not a path, does not exist, or has another suffix.
    FileFormatError : the file cannot be read or does not hold a state dict.
    """
    import torch

    if not isinstance(path, (str, os.PathLike)):
        raise InvalidInputError(f"weights must be a path to a local file, got {path!r}")
    file = Path(path)
    if not file.is_file():
        raise InvalidInputError(f"weights file {str(file)!r} does not exist")
    suffix = file.suffix.lower()
    if suffix not in WEIGHT_SUFFIXES:
        raise InvalidInputError(
            f"weights file {str(file)!r} must end in one of {', '.join(WEIGHT_SUFFIXES)}"
        )
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(file, device="cpu")
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors, unpickling and I/O errors alike
        raise FileFormatError(f"cannot read weights file {str(file)!r}: {exc}") from None
    if isinstance(state, Mapping) and not all(isinstance(v, torch.Tensor) for v in state.values()):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise FileFormatError(
            f"weights file {str(file)!r} does not hold a state dict (names -> tensors)"
        )
    return dict(state)


def _summarise(items: list[str], limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


def load_weights(
    net: nn.Module,
    path: str | os.PathLike[str],
    label: str,
    *,
    optional: Collection[str] = (),
    grey_input_key: str | None = None,
) -> None:
    """Load the state dict in file ``path`` into ``net``, checking that it fits exactly.

    Every key of ``net.state_dict()`` must be in the file with the same shape, and the file may
    hold no other key; otherwise :class:`InvalidInputError` names the missing, unexpected and
    mismatched keys. Exceptions: BatchNorm's ``num_batches_tracked`` counters may be missing;
    keys in ``optional`` (a replaced classifier) may be missing or of another shape, and are
    then left as initialised; the weight named ``grey_input_key`` (the first convolution of a
    network adapted to 1-channel input) may come with 3 input channels, which are summed.
    """
    state = load_state_dict_file(path)
    own = net.state_dict()
    missing = [
        k
        for k in own
        if k not in state and k not in optional and not k.endswith("num_batches_tracked")
    ]
    unexpected = [k for k in state if k not in own]
    mismatched = []
    to_load = {}
    for key, target in own.items():
        if key not in state:
            continue
        value = state[key]
        if (
            key == grey_input_key
            and value.ndim == 4
            and value.shape[1] == 3
            and target.shape[1] == 1
            and value.shape[0] == target.shape[0]
            and value.shape[2:] == target.shape[2:]
        ):
            value = value.sum(dim=1, keepdim=True)
        if value.shape != target.shape:
            if key not in optional:
                mismatched.append(
                    f"{key} (file {tuple(value.shape)}, network {tuple(target.shape)})"
                )
            continue
        to_load[key] = value
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"missing keys: {_summarise(missing)}")
        if unexpected:
            problems.append(f"unexpected keys: {_summarise(unexpected)}")
        if mismatched:
            problems.append(f"shape mismatches: {_summarise(mismatched)}")
        raise InvalidInputError(
            f"weights file {str(path)!r} does not fit {label!r}; " + "; ".join(problems)
        )
    net.load_state_dict(to_load, strict=False)
