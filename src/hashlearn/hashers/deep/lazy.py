"""Packages whose public names are imported on first use (PEP 562).

``losses`` and ``backbones`` keep a torch-free registry module beside their torch modules; their
``__init__`` names each public attribute's submodule instead of importing it, so that importing
the registry (``hashlearn.hashers.deep.losses.registry``), which imports the package first, does
not import torch or any entry, while ``from hashlearn.hashers.deep.losses import DSHLoss`` works
as before.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose attribute ``name`` is the attribute of
    the same name of submodule ``exports[name]`` (a name relative to ``package``).

    The attribute is imported on first access and then kept in the package, so each lookup
    imports once.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
