"""Files of codes: the ``.npy`` / ``.npz`` files ``hashlearn encode`` writes and the other verbs read.

Layouts (``.npz`` arrays by name; nothing is pickled)::

    CODES.npy    uint8 (n, code_size): packed codes only
    CODES.npz    codes uint8 (n, code_size), n_bits (): the code length travels with the codes
    IMAGES.npz   codes, n_bits, ids int64 (n,), paths str (n,) relative to root, root str ():
                 the codes of a folder of images (:func:`write_image_codes`)

``hashlearn index``, ``dedup`` and ``serve --item-images`` read them back with :func:`read_codes` and
:func:`read_image_names`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._io import atomic_write, read_arrays
from hashlearn.encoding.encode import ImageCodes
from hashlearn.exceptions import InvalidInputError

__all__ = ["CodesFile", "read_codes", "read_image_names", "write_codes", "write_image_codes"]


@dataclass(frozen=True)
class CodesFile:
    """What a file of codes holds.

    Attributes
    ----------
    codes : numpy.ndarray, normally uint8 (n, code_size)
        As stored (checked by whatever uses them).
    n_bits : int or None
        The stored code length; None when the file does not say (an ``.npy``).
    ids : numpy.ndarray or None
        Item ids, when stored.
    paths : numpy.ndarray of str or None
        Image file of each code, when stored.
    """

    codes: np.ndarray
    n_bits: int | None = None
    ids: np.ndarray | None = None
    paths: np.ndarray | None = None

    @property
    def code_length(self) -> int:
        """The stored code length, else 8 bits per byte of the codes (0 for malformed codes)."""
        if self.n_bits is not None:
            return self.n_bits
        return 8 * self.codes.shape[1] if self.codes.ndim == 2 else 0

    def paths_by_id(self) -> dict[int, str]:
        """``{id: image file}`` of the stored items (ids ``0 .. n-1`` when the file stores none);
        empty when the file stores no paths."""
        if self.paths is None:
            return {}
        ids = self.ids if self.ids is not None else np.arange(len(self.codes))
        return dict(zip(np.asarray(ids).tolist(), np.asarray(self.paths).tolist()))


def read_codes(path: str | os.PathLike[str]) -> CodesFile:
    """The codes of an ``.npy`` file, or ``codes`` (with ``n_bits``, ``ids`` and ``paths`` when
    present) of an ``.npz`` file; read once, never unpickling.

    Raises
    ------
    InvalidInputError
        The file is missing or unreadable, an ``.npz`` lacks ``codes``, its ``n_bits`` is not
        one integer, or its ``ids`` or ``paths`` are not one per code.
    """
    arrays = read_arrays(path, ("codes", "n_bits", "ids", "paths"), require="codes")
    codes = arrays.get("", arrays.get("codes"))
    where = os.fspath(path)
    stored_bits = arrays.get("n_bits")
    if stored_bits is not None:
        if stored_bits.ndim != 0 or stored_bits.dtype.kind not in "iu":
            raise InvalidInputError(
                f"{where}: n_bits must be one integer (the code length), got an array of dtype "
                f"{stored_bits.dtype} and shape {stored_bits.shape}"
            )
        stored_bits = int(stored_bits)
    rows = len(codes) if codes.ndim else None
    for name in ("ids", "paths"):
        array = arrays.get(name)
        if array is not None and (array.ndim != 1 or len(array) != rows):
            raise InvalidInputError(
                f"{where}: {name} must be one per code, a 1-D array of {rows} entries, got shape "
                f"{array.shape}"
            )
    paths = arrays.get("paths")
    if paths is not None and paths.dtype.kind not in "US":
        raise InvalidInputError(f"{where}: paths must be file names, got dtype {paths.dtype}")
    return CodesFile(codes=codes, n_bits=stored_bits, ids=arrays.get("ids"), paths=paths)


def write_codes(path: str | os.PathLike[str], codes: np.ndarray, n_bits: int) -> None:
    """Save codes atomically: an ``.npz`` keeps ``n_bits`` beside them, any other name is written
    as ``.npy`` (codes only)."""
    with atomic_write(path) as handle:
        if os.fspath(path).endswith(".npz"):  # the code length travels with the codes
            np.savez(handle, codes=codes, n_bits=np.array(n_bits))
        else:
            np.save(handle, codes, allow_pickle=False)


def write_image_codes(result: ImageCodes, path: str | os.PathLike[str]) -> None:
    """Save ``codes``, ``n_bits``, ``ids``, ``paths`` and ``root`` in one ``.npz`` (atomically, no
    pickle)."""
    with atomic_write(path) as handle:
        np.savez(
            handle,
            codes=result.codes,
            n_bits=np.array(result.n_bits),
            ids=result.ids,
            paths=np.array(result.paths, dtype=str),
            root=np.array(result.root, dtype=str),
        )


def read_image_names(path: str | os.PathLike[str]) -> tuple[Path, dict[int, str]]:
    """The folder (absolute) and id -> path relative to it, of an ``.npz`` written by
    :func:`write_image_codes`.

    Raises
    ------
    InvalidInputError
        The file lacks ``ids``, ``paths`` or ``root``, they disagree in length, or a path leads
        outside ``root``.
    """
    arrays: dict[str, Any] = read_arrays(path, ("ids", "paths", "root"))
    missing = [name for name in ("ids", "paths", "root") if name not in arrays]
    if missing:
        raise InvalidInputError(
            f"{os.fspath(path)!r} is not a file of `hashlearn encode --images`: it has no "
            f"{', '.join(missing)}"
        )
    ids, paths = np.asarray(arrays["ids"]), np.asarray(arrays["paths"])
    if ids.ndim != 1 or paths.shape != ids.shape or ids.dtype.kind not in "iu":
        raise InvalidInputError(
            f"{os.fspath(path)!r}: ids {ids.shape} and paths {paths.shape} must be two 1-D "
            "arrays of one length (integer ids)"
        )
    root = Path(str(arrays["root"])).resolve()
    out: dict[int, str] = {}
    for item_id, name in zip(ids.tolist(), paths.tolist()):
        if not (root / str(name)).resolve().is_relative_to(root):
            raise InvalidInputError(f"{os.fspath(path)!r}: path {name!r} leads outside {root}")
        out[int(item_id)] = str(name)
    return root, out
