"""Argument helpers shared by the verbs: KEY=VALUE parameters, array files, image shapes, threads."""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from hashlearn._io import read_arrays
from hashlearn._parallel import set_num_threads
from hashlearn.encoding import parse_image_shape

__all__ = [
    "add_threads",
    "apply_threads",
    "count_or_fraction",
    "image_shape",
    "load_array",
    "load_features",
    "parse_grid",
    "parse_param",
]


# -- argument types ------------------------------------------------------------------------------


def parse_param(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> ``(key, value)``; the value read as JSON, else kept as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
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


def image_shape(text: str | None) -> tuple[int, int, int] | None:
    """``--image-shape`` (``28x28``, ``32x32x3``) as ``(h, w, c)``; None when not given.

    Read when the verb runs, so a malformed shape is the verb's one-line error (exit 2)."""
    return parse_image_shape(text) if text else None


# -- array files ---------------------------------------------------------------------------------


def load_array(path: str, key: str) -> np.ndarray:
    """Read ``key`` from an .npz file, or the array of an .npy file (never unpickling)."""
    arrays = read_arrays(path, (key,), require=key)
    return arrays[""] if "" in arrays else arrays[key]


def load_features(path: str) -> np.ndarray:
    """Features from an .npy, or ``X`` of an .npz; image arrays flattened to ``(n, h*w*c)``."""
    array = load_array(path, "X")
    return array.reshape(len(array), -1) if array.ndim > 2 else array


# -- threads -------------------------------------------------------------------------------------


def add_threads(parser: argparse.ArgumentParser) -> None:
    """The ``--threads`` option of the verbs that search."""
    parser.add_argument(
        "--threads", type=int, default=None, help="search threads (default: all cores)"
    )


def apply_threads(args: argparse.Namespace) -> None:
    """Set the search threads of ``--threads`` (all cores when not given)."""
    if args.threads:
        set_num_threads(args.threads)
