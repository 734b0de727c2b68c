"""Feature arrays with labels, read from ``.npz`` or ``.npy`` files (never with pickle)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hashlearn._io import check_input_file, read_arrays
from hashlearn.datasets.dataset import Dataset
from hashlearn.exceptions import FileFormatError, InvalidInputError


def _read(path: Path) -> dict[str, np.ndarray]:
    """Every array of the file (the shared reader, :func:`hashlearn._io.read_arrays`), with its
    refusals as :class:`FileFormatError`."""
    try:
        return read_arrays(path)
    except InvalidInputError as exc:
        raise FileFormatError(f"cannot read {str(path)!r}: {exc}") from None


def _read_npy(path: Path) -> np.ndarray:
    arrays = _read(path)
    if "" not in arrays:
        raise FileFormatError(f"{str(path)!r} is an .npz archive; expected a single .npy array")
    return arrays[""]


def _read_npz(path: Path, keys: tuple[str, ...]) -> tuple[dict[str, np.ndarray], list[str]]:
    """The arrays of ``keys`` that the archive holds, and the names of all its arrays."""
    arrays = _read(path)
    if "" in arrays:
        raise FileFormatError(f"{str(path)!r} is a single array; expected an .npz archive")
    return {key: arrays[key] for key in keys if key in arrays}, list(arrays)


def _check_numeric(array: np.ndarray, what: str) -> None:
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)
    ):
        raise InvalidInputError(f"{what} must hold numbers, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.complexfloating):
        raise InvalidInputError(f"{what} must hold real numbers, got dtype {array.dtype}")


def _features(X: np.ndarray, where: str) -> np.ndarray:
    what = f"X of {where}"
    _check_numeric(X, what)
    if X.ndim < 2 or X.ndim > 4:
        raise InvalidInputError(
            f"{what} must be (n, d) features or (n, h, w[, c]) images, got shape {X.shape}"
        )
    if len(X) == 0:
        raise InvalidInputError(f"{what} is empty")
    X = X.astype(np.float32)
    finite = np.isfinite(X.reshape(len(X), -1)).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise InvalidInputError(
            f"{what} holds NaN or infinite values in {bad.size} row(s), first at row {int(bad[0])}"
        )
    return X


def _labels(y: np.ndarray, n: int, where: str) -> np.ndarray:
    what = f"y of {where}"
    _check_numeric(y, what)
    if y.ndim not in (1, 2):
        raise InvalidInputError(
            f"{what} must be (n,) class labels or a (n, n_classes) 0/1 indicator, got shape {y.shape}"
        )
    if len(y) != n:
        raise InvalidInputError(f"{what} has {len(y)} labels but X has {n} items")
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        raise InvalidInputError(f"{what} holds NaN or infinite values")
    if y.ndim == 2:
        if not np.isin(y, (0, 1)).all():
            raise InvalidInputError(f"{what} is 2-D, so it must be a 0/1 multi-label indicator")
        return y.astype(bool)
    if not np.all(y == np.round(y)):
        raise InvalidInputError(f"{what} must hold integer class labels")
    if len(y) and y.min() < 0:
        raise InvalidInputError(f"{what} holds a negative label ({y.min()})")
    return y.astype(np.int64)


def _test_mask(mask: np.ndarray | None, n: int, where: str) -> np.ndarray | None:
    if mask is None:
        return None
    if mask.shape != (n,) or not np.isin(mask, (0, 1)).all():
        raise InvalidInputError(
            f"test_mask of {where} must be (n,) of 0/1 or bool for {n} items, got "
            f"{mask.dtype} {mask.shape}"
        )
    return mask.astype(bool)


def load_arrays(
    path: str | os.PathLike[str],
    *,
    x_key: str = "X",
    y_key: str = "y",
    labels: str | os.PathLike[str] | None = None,
    test_key: str | None = "test_mask",
) -> Dataset:
    """Read features (or images) and labels from a ``.npz`` archive or a pair of ``.npy`` files.

    Parameters
    ----------
    path : an ``.npz`` archive with arrays ``x_key`` and ``y_key``, or an ``.npy`` array of
        features (then ``labels`` is required).
    x_key, y_key : names of the feature and label arrays inside an ``.npz``.
    labels : ``.npy`` file with the labels of an ``.npy`` feature file.
    test_key : name of an optional bool (n,) array inside an ``.npz`` marking the official test
        items (becomes ``Dataset.test_mask``); None to ignore it.

    Returns
    -------
    Dataset
        ``X`` float32 with the stored shape ((n, d) features or (n, h, w[, c]) images, values
        as stored), ``y`` int64 (n,) class labels or a bool (n, n_classes) multi-label
        indicator (from a 2-D 0/1 array). Files are read with ``allow_pickle=False``.

    Raises
    ------
    InvalidInputError
        For a missing file or array key, lengths that differ, NaN or infinite values,
        non-numeric arrays, non-integer or negative labels, a 2-D label array that is not 0/1.
    FileFormatError
        For a file that cannot be read without pickle (object arrays) or a damaged file (read
        by :func:`hashlearn._io.read_arrays`, which allocates nothing a header announces
        before the bytes are there).
    """
    path = Path(path)
    check_input_file(path)
    where = repr(str(path))
    mask = None
    if path.suffix.lower() == ".npz":
        if labels is not None:
            raise InvalidInputError("labels= is for .npy features; an .npz holds its own labels")
        wanted = (x_key, y_key) if test_key is None else (x_key, y_key, test_key)
        arrays, names = _read_npz(path, wanted)
        for key in (x_key, y_key):
            if key not in arrays:
                raise InvalidInputError(
                    f"{where} has no array {key!r}; it holds {', '.join(map(repr, names))}"
                )
        X, y = arrays[x_key], arrays[y_key]
        mask = arrays.get(test_key) if test_key is not None else None
    elif path.suffix.lower() == ".npy":
        if labels is None:
            raise InvalidInputError(f"{where} holds features only: pass labels=<labels .npy file>")
        labels = Path(labels)
        check_input_file(labels)
        X, y = _read_npy(path), _read_npy(labels)
    else:
        raise InvalidInputError(f"{where}: expected an .npz or .npy file")
    X = _features(X, where)
    return Dataset(
        name=path.stem,
        X=X,
        y=_labels(y, len(X), where),
        description=f"arrays from {where}: {len(X)} items of shape {tuple(X.shape[1:])}",
        test_mask=_test_mask(mask, len(X), where),
    )
