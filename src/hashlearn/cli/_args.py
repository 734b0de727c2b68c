"""Argument helpers shared by the verbs: KEY=VALUE parameters, array files, image shapes, threads,
input files checked before a verb runs, ``--quiet``, and deprecated spellings of options."""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

import numpy as np

from hashlearn._io import IMAGE_KINDS, describe_kind, file_kind, read_arrays
from hashlearn._json import parse_json
from hashlearn._parallel import set_num_threads
from hashlearn.encoding import CodesFile, parse_image_shape
from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers import load_hasher

__all__ = [
    "add_deprecated_alias",
    "add_quiet",
    "add_threads",
    "apply_threads",
    "code_width",
    "count_or_fraction",
    "deprecated",
    "image_shape",
    "int_list",
    "load_array",
    "load_features",
    "parse_grid",
    "parse_param",
    "require_array_file",
    "require_files",
    "require_folder",
]


# -- argument types ------------------------------------------------------------------------------


_MAX_PARAM_BYTES = 1 << 16
_NUMBER = re.compile(r"[-+]?[0-9][0-9.eE+-]*")


def parse_param(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> ``(key, value)``; the value read as JSON, else kept as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, parse_json(value, f"--param {key}:", max_bytes=_MAX_PARAM_BYTES)
    except InvalidInputError as exc:
        # meant as JSON (a list, an object, a number) but unreadable: say why; else a string
        if value.strip()[:1] in ("[", "{") or _NUMBER.fullmatch(value.strip()):
            raise argparse.ArgumentTypeError(str(exc)) from None
        return key, value


def parse_grid(text: str) -> tuple[str, list[Any]]:
    """``KEY=V1,V2,...`` (each value JSON, else a string) or ``KEY=[JSON list]``."""
    key, value = parse_param(text)
    if isinstance(value, list):
        return key, value
    if isinstance(value, str):
        return key, [parse_param(f"{key}={item}")[1] for item in value.split(",")]
    return key, [value]


def count_or_fraction(text: str) -> int | float:
    """``500`` -> 500 (a count), ``0.1`` -> 0.1 (a fraction)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count or a fraction, got {text!r}") from None
    return int(value) if value.is_integer() and value >= 1 else value


def int_list(text: str) -> list[int]:
    """``10,100`` -> ``[10, 100]`` (``--ks``)."""
    try:
        values = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        values = []
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    return values


def image_shape(text: str | None) -> tuple[int, int, int] | None:
    """``--image-shape`` (``28x28``, ``32x32x3``) as ``(h, w, c)``; None when not given.

    Read when the verb runs, so a malformed shape is the verb's one-line error (exit 2)."""
    return parse_image_shape(text) if text else None


# -- deprecated spellings -------------------------------------------------------------------------


def deprecated(old: str, new: str) -> None:
    """Say on stderr, in one line, that ``old`` is deprecated in favour of ``new``."""
    print(f"warning: {old} is deprecated, use {new}", file=sys.stderr)


class _DeprecatedAlias(argparse.Action):
    """Stores its value like the option it stands for, after a one-line warning."""

    def __init__(self, option_strings: list[str], dest: str, new: str = "", **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        deprecated(option_string or self.option_strings[0], self.new)
        setattr(namespace, self.dest, values)


def add_deprecated_alias(
    parser: Any, old: str, new: str, *, dest: str | None = None, **kwargs: Any
) -> None:
    """Accept ``old`` as a spelling of ``new`` for one more release: hidden from ``--help``, it
    stores into ``new``'s destination (or ``dest``) and warns ``warning: OLD is deprecated, use
    NEW`` on stderr when used. ``kwargs`` (``type``, ``choices``, ``nargs``...) read its value."""
    parser.add_argument(
        old,
        dest=dest or new.lstrip("-").replace("-", "_"),
        action=_DeprecatedAlias,
        new=new,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
        **kwargs,
    )


# -- files given as inputs -----------------------------------------------------------------------


def require_files(*paths: str | None) -> None:
    """Check that each given input file (None: not given) exists, before anything runs.

    Raises InvalidInputError ``FILE: no such file`` (``FILE: is a folder, not a file``), the one
    message of every verb for a file option that names no file."""
    for path in paths:
        if path is None:
            continue
        if os.path.isdir(path):
            raise InvalidInputError(f"{path}: is a folder, not a file")
        if not os.path.exists(path):
            raise InvalidInputError(f"{path}: no such file")


def require_folder(path: str | None) -> None:
    """Check that a folder given as input exists: ``DIR: no such folder`` if not."""
    if path is not None and not os.path.isdir(path):
        what = "is a file, not a folder" if os.path.exists(path) else "no such folder"
        raise InvalidInputError(f"{path}: {what}")


# -- codes files ---------------------------------------------------------------------------------


def code_width(stored: CodesFile, codes_path: str, bits: int | None, model: str | None) -> int:
    """The code length of the codes of ``codes_path``: ``bits``, else the model's, else the one
    the file records; never guessed from the bytes (12-bit codes take two bytes, as 16-bit ones
    do). Raises InvalidInputError when it is not known, or when two of them disagree."""
    given = bits
    if model is not None:
        given = load_hasher(model).n_bits
    if given is not None and stored.n_bits is not None and given != stored.n_bits:
        raise InvalidInputError(
            f"{codes_path} holds {stored.n_bits}-bit codes, but the model {model} makes "
            f"{given}-bit codes: give the model that made them"
            if model is not None
            else f"{codes_path} holds {stored.n_bits}-bit codes, not {given}-bit ones: leave "
            "out --bits (the file records the code length)"
        )
    if given is not None:
        return int(given)
    if stored.n_bits is not None:
        return stored.n_bits
    width = stored.codes.shape[1] if stored.codes.ndim == 2 else 0
    raise InvalidInputError(
        f"{codes_path} does not record the code length ({width} byte{'s' * (width != 1)} per "
        f"code hold up to {8 * width} bits): give --model MODEL (the model that made the codes) or --bits N"
    )


# -- array files ---------------------------------------------------------------------------------


def require_array_file(path: str) -> None:
    """Check that an array option names a file, and not a picture: one is pointed to
    ``--images DIR``."""
    require_files(path)
    kind = file_kind(path)
    if kind in IMAGE_KINDS:
        raise InvalidInputError(
            f"{path}: not an .npz or .npy array file but {describe_kind(kind)}: for photos, "
            "give their folder with --images DIR"
        )


def load_array(path: str, key: str) -> np.ndarray:
    """Read ``key`` from an .npz file, or the array of an .npy file (never unpickling); a
    picture given instead is pointed to ``--images DIR``."""
    require_array_file(path)
    arrays = read_arrays(path, (key,), require=key)
    return arrays[""] if "" in arrays else arrays[key]


def load_features(path: str) -> np.ndarray:
    """Features from an .npy, or ``X`` of an .npz; image arrays flattened to ``(n, h*w*c)``."""
    array = load_array(path, "X")
    return array.reshape(len(array), -1) if array.ndim > 2 else array


# -- progress and threads ------------------------------------------------------------------------


def add_quiet(parser: argparse.ArgumentParser) -> None:
    """The ``--quiet`` option of the verbs that show progress."""
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def add_threads(parser: argparse.ArgumentParser) -> None:
    """The ``--threads`` option of the verbs that search."""
    parser.add_argument(
        "--threads", type=int, default=None, help="search threads (default: all cores)"
    )


def apply_threads(args: argparse.Namespace) -> None:
    """Set the search threads of ``--threads`` (all cores when not given); 0 or fewer is
    refused, not taken for the default."""
    if args.threads is not None:
        if args.threads < 1:
            raise InvalidInputError(f"--threads must be at least 1, got {args.threads}")
        set_num_threads(args.threads)
