"""faiss, an optional dependency: importing it on demand, and reading its errors.

faiss is imported only when a faiss index is built, loaded or converted (it loads slowly, and
``pip install "hashlearn[faiss]"`` adds it); :func:`import_faiss` says how to install it when it
is missing.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType

from hashlearn.exceptions import HashlearnError, InvalidInputError

__all__ = ["FaissNotInstalledError", "check_byte_bits", "faiss_message", "import_faiss"]

INSTALL_HINT = 'pip install "hashlearn[faiss]"'


class FaissNotInstalledError(HashlearnError, ModuleNotFoundError):
    """faiss, an optional dependency of hashlearn, is not installed."""


def import_faiss() -> ModuleType:
    """The ``faiss`` module, or :class:`FaissNotInstalledError` naming the extra to install."""
    try:
        return importlib.import_module("faiss")
    except ImportError:
        raise FaissNotInstalledError(
            f"this needs faiss, an optional dependency that is not installed: {INSTALL_HINT} "
            "(or: pip install faiss-cpu)",
            name="faiss",
        ) from None


def faiss_message(exc: BaseException) -> str:
    """The useful part of a faiss error (faiss prefixes it with the C++ function and file)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    match = re.search(r"\.(?:cpp|h):\d+: (.*)$", text)
    return match.group(1) if match else text


def check_byte_bits(n_bits: int, what: str) -> None:
    """``n_bits`` a multiple of 8, as faiss binary indexes need; :class:`InvalidInputError` if not."""
    if n_bits % 8:
        raise InvalidInputError(
            f"{what} needs n_bits to be a multiple of 8, got n_bits={n_bits} (faiss binary "
            "indexes store whole bytes)"
        )
