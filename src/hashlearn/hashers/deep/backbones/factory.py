"""``create_backbone(name, in_shape, n_bits, **kwargs)``: any registered backbone, its arguments
checked, from random weights or a local weights file."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from hashlearn._validation import check_int
from hashlearn.exceptions import InvalidInputError, UnknownNameError
from hashlearn.hashers.deep.backbones.base import check_in_shape
from hashlearn.hashers.deep.backbones.registry import BACKBONES, FAMILIES, list_backbones
from hashlearn.hashers.deep.backbones.weights import load_weights

__all__ = ["create_backbone"]


def create_backbone(
    name: str, in_shape: tuple[int, int, int], n_bits: int, **kwargs: Any
) -> nn.Module:
    """Build backbone ``name`` for ``(c, h, w)`` inputs with ``n_bits`` outputs.

    Parameters
    ----------
    name : a name of :func:`list_backbones`, or ``"torchvision:<model>"`` / ``"timm:<model>"``.
    in_shape : ``(c, h, w)`` of the images it will get, as ``(n, c, h, w)`` float32 tensors.
    n_bits : number of outputs; the network returns ``(n, n_bits)`` float32.
    **kwargs : the backbone's own parameters (see its class), plus for every backbone
        ``weights``: a local state-dict file to start from (``.safetensors`` preferred) and
        ``dropout`` before the hash head; for the families, ``model_kwargs``: a dict passed to
        the library's model constructor.

    Returns
    -------
    nn.Module in training mode, on the CPU, seeded by torch's global generator (wrap the call in
    ``torch.random.fork_rng`` + ``torch.manual_seed`` for reproducible weights).

    Raises
    ------
    UnknownNameError : unknown backbone name (the message lists the available ones).
    InvalidInputError : unknown keyword arguments (the message lists the valid ones), bad
        values, or a weights file that does not fit.
    MissingPackageError : a family's package is not installed (a ``ModuleNotFoundError``; the
        message names the extra).
    """
    if not isinstance(name, str):
        raise InvalidInputError(f"backbone name must be a string, got {name!r}")
    in_shape = check_in_shape(in_shape)
    n_bits = check_int(n_bits, "n_bits", minimum=1)
    family, sep, model_name = name.partition(":")
    if sep and family in FAMILIES and model_name:
        builder = FAMILIES.get(family)
        _check_kwargs(name, builder, kwargs)
        return builder(model_name, in_shape, n_bits, **kwargs)
    if name not in BACKBONES:
        raise UnknownNameError(
            f"unknown backbone {name!r}; available: {', '.join(list_backbones())}"
        )
    builder = BACKBONES.get(name)
    _check_kwargs(name, builder, kwargs)
    weights = kwargs.pop("weights", None)
    net = builder(in_shape, n_bits, **kwargs)
    if weights is not None:
        load_weights(net, weights, name)
    return net


def _check_kwargs(label: str, builder: Callable[..., nn.Module], kwargs: Mapping[str, Any]) -> None:
    parameters = inspect.signature(builder).parameters
    valid = sorted(
        {p for p in parameters if p not in ("self", "model_name", "in_shape", "n_bits")}
        | {"weights"}
    )
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise InvalidInputError(
            f"unknown argument(s) {', '.join(map(repr, unknown))} for backbone {label!r}; "
            f"valid: {', '.join(valid)}"
        )
