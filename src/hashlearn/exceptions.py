"""Exceptions raised by hashlearn.

Every error a user can cause has its own class, and every class derives from both
:class:`HashlearnError` and the built-in exception a caller would expect (``ValueError``,
``TypeError``, ``KeyError``...), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class HashlearnError(Exception):
    """Base class of every error hashlearn raises on purpose."""


class InvalidInputError(HashlearnError, ValueError):
    """An argument has the wrong shape, dtype or value (NaN features, k <= 0, empty set...)."""


class CodeFormatError(InvalidInputError, TypeError):
    """Packed codes are not ``uint8`` arrays of shape ``(n, ceil(n_bits / 8))``."""


class UnknownNameError(HashlearnError, KeyError):
    """A hasher, dataset or other registered name does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly.
        return str(self.args[0]) if self.args else ""


class NotFittedError(HashlearnError, AttributeError):
    """A hasher was used before ``fit``."""


class FileFormatError(HashlearnError, ValueError):
    """A model or index file is truncated, corrupted, foreign or of an unsupported version."""


class DownloadError(HashlearnError, OSError):
    """A dataset file could not be downloaded, or is missing and downloading is switched off."""


class MissingPackageError(HashlearnError, ModuleNotFoundError):
    """An optional package (torchvision, timm...) that the requested feature extractor or
    backbone needs is not installed; the message names the pip extra to install."""
