"""Files: written atomically (a crash never leaves a half-written model or index behind), with
the permissions the user's umask gives a new file, told apart by their first bytes, and arrays
read without unpickling."""

from __future__ import annotations

import contextlib
import math
import os
import re
import secrets
import time
import tokenize
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from hashlearn.exceptions import InvalidInputError

INDEX_FILE_MAGIC = b"HLINDEX\x00"
"""The first bytes of every index file (:mod:`hashlearn.index._format.layout`), kept here so that
every layer can tell an index from a model or an array file."""

_KIND_NAMES = {
    "npy": "an .npy array file",
    "npz": "an .npz array file",
    "index": "a hashlearn index",
    "safetensors": "a safetensors file",
    "json": "a JSON file",
    "png": "a PNG image",
    "jpeg": "a JPEG image",
    "gif": "a GIF image",
    "webp": "a WebP image",
    "empty": "an empty file",
    "unknown": "a file of unknown format",
}
IMAGE_KINDS = ("png", "jpeg", "gif", "webp")


def no_such_file(path: str | os.PathLike[str]) -> InvalidInputError:
    """The error of a missing input file, worded alike everywhere: ``FILE: no such file``."""
    return InvalidInputError(f"{os.fspath(path)}: no such file")


def check_input_file(path: str | os.PathLike[str]) -> str:
    """``path`` as a string, after checking that it is an existing file (see :func:`no_such_file`)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise InvalidInputError(f"{path}: is a folder, not a file")
    if not os.path.exists(path):
        raise no_such_file(path)
    return path


def file_kind(path: str | os.PathLike[str]) -> str:
    """What a file is, told by its first bytes: ``"npy"``, ``"npz"``, ``"index"``,
    ``"safetensors"`` (8 bytes of header length, then a JSON header), ``"json"``, ``"png"``,
    ``"jpeg"``, ``"gif"``, ``"webp"``, ``"empty"`` or ``"unknown"``. Its words:
    :func:`describe_kind`."""
    with open(path, "rb") as handle:
        return bytes_kind(handle.read(16))


def bytes_kind(head: bytes) -> str:
    """What the first bytes of a file tell of it (:func:`file_kind`); 16 bytes suffice."""
    if not head:
        return "empty"
    prefixes = (
        (b"\x93NUMPY", "npy"),
        (b"PK\x03\x04", "npz"),  # a zip archive, as numpy.savez writes
        (b"PK\x05\x06", "npz"),  # an empty zip archive
        (INDEX_FILE_MAGIC, "index"),
        (b"\x89PNG\r\n\x1a\n", "png"),
        (b"\xff\xd8\xff", "jpeg"),
        (b"GIF8", "gif"),
    )
    for prefix, kind in prefixes:
        if head.startswith(prefix):
            return kind
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if len(head) > 8 and head[8:9] == b"{":
        return "safetensors"
    if head.lstrip()[:1] in (b"{", b"["):
        return "json"
    return "unknown"


def describe_kind(kind: str) -> str:
    """A :func:`file_kind` in words: ``"index"`` -> ``"a hashlearn index"``."""
    return _KIND_NAMES.get(kind, _KIND_NAMES["unknown"])


TEMPORARY_MAX_AGE = 24 * 3600.0
"""Seconds after which a temporary file of :func:`atomic_write` that nobody touched is abandoned,
whatever its writer (a live process of the recorded pid may be another one that reused it)."""
DEAD_WRITER_GRACE = 60.0
"""Seconds a temporary file whose writer process is gone is left alone (in case that writer runs
in another pid namespace on a shared folder and still writes it)."""

_TEMPORARY_TAIL = r"\.(?:([0-9]{1,10})-)?[0-9a-f]{8}\.tmp"
"""What follows ``.NAME`` in a temporary file's name: ``.PID-RANDOM.tmp`` (the writer's process
id and 8 random hex digits), or ``.RANDOM.tmp`` as written before the pid was recorded."""
_ANY_TEMPORARY = re.compile(r"\..+" + _TEMPORARY_TAIL)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, clean: bool = True) -> Iterator[BinaryIO]:
    """Open a temporary file next to ``path``; on success, fsync it and rename it over ``path``.

    The file gets the mode ``open(path, "wb")`` would give a new file, ``0o666 & ~umask``
    (``0o644`` under the usual umask ``022``), not the ``0o600`` of :func:`tempfile.mkstemp`.
    If the body raises, the temporary file is removed and ``path`` is left as it was.

    The temporary file is ``.NAME.PID-RANDOM.tmp``: a process killed while writing leaves it
    behind, so with ``clean`` (the default) the stale temporary files of earlier writes of
    ``path`` are removed first (see :func:`remove_stale_temporaries`; the folder is listed once).
    Pass ``clean=False`` where a folder of many files is written often and its owner cleans it.
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"cannot write to {str(target)!r}: it is a directory")
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.exists():
        raise FileNotFoundError(
            f"cannot write to {str(target)!r}: folder {str(directory)!r} does not exist"
        )
    if clean:
        remove_stale_temporaries(directory, target.name)
    fd, tmp_name = create_temporary(directory, target.name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def create_temporary(directory: str | os.PathLike[str], name: str) -> tuple[int, str]:
    """Create ``directory/.NAME.PID-RANDOM.tmp`` exclusively, with mode ``0o666`` less the umask
    (the kernel applies the umask itself, so the process umask is never changed), and open it
    for writing; returns the descriptor and the path. :func:`remove_stale_temporaries` knows
    these names."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        candidate = os.path.join(directory, f".{name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        try:
            return os.open(candidate, flags, 0o666), candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name for {name!r} in {os.fspath(directory)!r}")


def remove_stale_temporaries(
    directory: str | os.PathLike[str], name: str | None = None, *, every: bool = False
) -> list[str]:
    """Remove the temporary files that interrupted writes of :func:`atomic_write` left behind.

    Parameters
    ----------
    directory : path
        The folder to look in (not its sub-folders).
    name : str or None
        Only the temporary files of the file ``name`` (``.NAME.*.tmp``); None: of any file.
    every : bool
        Remove every one, stale or not: for a caller that knows nobody writes in the folder
        (e.g. one that holds the folder's lock). Otherwise only stale ones are removed: untouched
        for :data:`DEAD_WRITER_GRACE` seconds and written by a process that no longer runs, or
        untouched for :data:`TEMPORARY_MAX_AGE` seconds.

    Returns
    -------
    list of str
        The paths removed. A folder that cannot be listed, and files that cannot be removed, are
        passed over (the next write tries again).
    """
    pattern = (
        _ANY_TEMPORARY if name is None else re.compile(re.escape(f".{name}") + _TEMPORARY_TAIL)
    )
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            age = now - entry.stat(follow_symlinks=False).st_mtime
            pid = match.group(1)
            if every or _is_stale(age, None if pid is None else int(pid)):
                os.unlink(entry.path)
                removed.append(entry.path)
        except OSError:
            continue
    return removed


def _is_stale(age: float, pid: int | None) -> bool:
    """Whether a temporary file untouched for ``age`` seconds, written by ``pid``, is abandoned."""
    if age > TEMPORARY_MAX_AGE:
        return True
    return age > DEAD_WRITER_GRACE and pid is not None and not _process_runs(pid)


def _process_runs(pid: int) -> bool:
    """Whether a process of this id runs (True where that cannot be told)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate it there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):  # PermissionError: it runs, as another user
        return True
    return True


def write_arrays(path: str | os.PathLike[str], **arrays: Any) -> None:
    """Write ``arrays`` by name to an ``.npz`` file, atomically (nothing pickled is read back:
    :func:`read_arrays` refuses object arrays)."""
    import numpy as np

    with atomic_write(path) as handle:
        np.savez(handle, **arrays)


def read_arrays(
    path: str | os.PathLike[str], names: tuple[str, ...] = (), require: str | None = None
) -> dict[str, Any]:
    """The arrays of an ``.npz`` file by name (only those of ``names`` it holds, when given; the
    others are not read), or ``{"": array}`` for an ``.npy`` file.

    The one reader of array files for every verb and the service. Never unpickles: object arrays
    are refused, and so are structured ones; arrays hold booleans, numbers or strings. Nothing is
    allocated from what a header announces: an ``.npy`` array is read only when the file holds
    all its bytes, an array of an ``.npz`` as its bytes come out of the archive.

    Raises InvalidInputError naming the file when it is missing (``FILE: no such file``), is not
    an array file (naming what it is instead) or cannot be read that way (a broken zip archive or
    compressed stream, a malformed or truncated array, a refused dtype), or when an ``.npz`` file
    lacks the array ``require``.
    """
    path = check_input_file(path)
    kind = file_kind(path)
    if kind not in ("npy", "npz"):
        raise InvalidInputError(f"{path}: not an .npz or .npy array file but {describe_kind(kind)}")
    try:
        if kind == "npy":
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                return {"": _read_npy(handle, size, path, real_file=True)}
        with zipfile.ZipFile(path) as archive:
            members = {
                info.filename[: -len(".npy")]: info
                for info in archive.infolist()
                if info.filename.endswith(".npy")
            }
            if require is not None and require not in members:
                held = f"it holds: {', '.join(members)}" if members else "it holds no array"
                raise InvalidInputError(f"{path}: has no array {require!r}; {held}")
            arrays = {}
            for name, info in members.items():
                if names and name not in names:
                    continue
                with archive.open(info) as member:
                    arrays[name] = _read_npy(member, info.file_size, f"{path}[{name}]")
            return arrays
    except InvalidInputError:
        raise
    except _UNREADABLE as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise InvalidInputError(
            f"cannot read {path} as .npy/.npz without pickle: {reason}"
        ) from None


_UNREADABLE = (
    ValueError,  # numpy's header checks
    OSError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    RuntimeError,  # an encrypted member; NotImplementedError: an unknown compression method
    OverflowError,
    TypeError,
    KeyError,
    SyntaxError,
    tokenize.TokenError,  # numpy reads the header of an .npy of format 1.0 with tokenize
    MemoryError,  # an .npz member's declared size; its bytes are never allocated up front
)
"""What reading a broken array file raises, from numpy, zipfile, zlib, bz2 and lzma (whose
errors derive from OSError)."""

_READ_CHUNK = 1 << 24
_ARRAY_KINDS = "biufcUS"
"""dtype kinds an array file may hold: booleans, integers, floats, complex numbers, strings."""


def _read_npy(handle: Any, size: int, where: str, *, real_file: bool = False) -> np.ndarray:
    """The array of the ``.npy`` data at ``handle`` (``size`` bytes in all), after checking its
    header against those bytes: no array larger than what is there is ever allocated."""
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(handle)
    elif version == (2, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(handle)
    else:
        raise InvalidInputError(f"{where}: .npy format version {version} is not read here")
    if dtype.hasobject:
        raise InvalidInputError(
            f"{where}: holds Python objects, which are read only by unpickling; hashlearn "
            "reads arrays of numbers or strings (allow_pickle=False)"
        )
    if dtype.kind not in _ARRAY_KINDS or dtype.names is not None or dtype.subdtype is not None:
        raise InvalidInputError(
            f"{where}: holds an array of dtype {dtype}; hashlearn reads arrays of numbers, "
            "booleans or strings"
        )
    if dtype.itemsize == 0:
        raise InvalidInputError(f"{where}: holds an array of dtype {dtype}, of 0 bytes per item")
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    available = size - handle.tell()
    if nbytes > available:
        raise InvalidInputError(
            f"{where}: truncated: its header announces a {dtype} array of shape {shape} "
            f"({nbytes:,} bytes), but {max(available, 0):,} bytes follow it"
        )
    order = "F" if fortran_order else "C"
    if real_file:  # nbytes are in the file: read them in one allocation
        array = np.fromfile(handle, dtype=dtype, count=count)
        if len(array) != count:
            raise InvalidInputError(f"{where}: truncated: {nbytes:,} bytes expected")
        return array.reshape(shape, order=order)
    data = bytearray()
    while len(data) < nbytes:  # as the bytes come: a declared size is not trusted
        block = handle.read(min(_READ_CHUNK, nbytes - len(data)))
        if not block:
            raise InvalidInputError(
                f"{where}: truncated: {nbytes:,} bytes expected, {len(data):,} found"
            )
        data += block
    return np.frombuffer(data, dtype=dtype, count=count).reshape(shape, order=order)
