"""What a file hashlearn writes holds, after checking it: a model, an index, or arrays.

:func:`describe_file` tells the three apart by their first bytes and reads each the way hashlearn
does (models and indexes with their checksums verified, arrays without unpickling); what it finds
comes back as plain data, whose ``lines()`` are the text ``hashlearn info`` prints.

>>> from hashlearn.encoding import describe_file
>>> info = describe_file("model.safetensors")  # doctest: +SKIP
>>> info.method, info.n_bits, info.input  # doctest: +SKIP
('itq', 12, 'images 8x8x1, through the features below')
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hashlearn._io import check_input_file, read_arrays
from hashlearn.exceptions import FileFormatError
from hashlearn.hashers import FeatureHasher, Hasher, load_hasher, read_model_file
from hashlearn.hashers.model_format import metadata_verified
from hashlearn.index import INDEX_FILE_MAGIC, load_index

__all__ = [
    "ArrayInfo",
    "ArraysFileInfo",
    "IndexFileInfo",
    "ModelFileInfo",
    "describe_file",
    "model_input",
]


@dataclass(frozen=True)
class ArrayInfo:
    """One array of an ``.npy`` / ``.npz`` file: its dtype and shape, and its value when it is a
    scalar (a 0-d array, such as the ``n_bits`` of a codes file)."""

    dtype: str
    shape: tuple[int, ...]
    value: Any = None

    def __str__(self) -> str:
        return repr(self.value) if self.shape == () else f"{self.dtype} {self.shape}"


@dataclass(frozen=True)
class ArraysFileInfo:
    """An ``.npy`` or ``.npz`` file: its arrays by name (``""`` for the array of an ``.npy``)."""

    path: str
    size: int  # bytes
    arrays: dict[str, ArrayInfo] = field(default_factory=dict)

    def lines(self) -> list[str]:
        lines = [f"{self.path}: arrays ({self.size:,} bytes)"]
        lines += [f"  {name or '(array)'}: {array}" for name, array in self.arrays.items()]
        return lines


@dataclass(frozen=True)
class IndexFileInfo:
    """An index file (checksum verified): the index class, items, code length and memory."""

    path: str
    size: int  # bytes
    index_class: str  # e.g. "MultiIndexHashingIndex"
    ntotal: int
    n_bits: int
    nbytes: int  # of the loaded index

    @property
    def bytes_per_item(self) -> float:
        return self.nbytes / max(self.ntotal, 1)

    def lines(self) -> list[str]:
        return [
            f"{self.path}: {self.index_class} index ({self.size:,} bytes, checksum verified)",
            f"  {self.ntotal:,} items, {self.n_bits} bits, {self.bytes_per_item:.1f} bytes per item",
        ]


@dataclass(frozen=True)
class ModelFileInfo:
    """A model file (checksum verified): the method, code length, file format, the hasher's
    parameters, what it encodes (:func:`model_input`) and its feature extractor's configuration
    (None without one). ``metadata_verified`` is False for older files whose checksum covers
    the arrays alone (:func:`~hashlearn.hashers.model_format.metadata_verified`)."""

    path: str
    size: int  # bytes
    method: str
    n_bits: int
    format_version: Any
    hashlearn_version: Any
    params: dict[str, Any]
    input: str
    features: dict[str, Any] | None = None
    metadata_verified: bool = True

    def lines(self) -> list[str]:
        checked = (
            "checksum verified"
            if self.metadata_verified
            else "checksum of the arrays verified; the metadata of this older file have none"
        )
        lines = [
            f"{self.path}: {self.method} model, {self.n_bits} bits ({self.size:,} bytes, format "
            f"version {self.format_version}, written by hashlearn {self.hashlearn_version}, "
            f"{checked})",
            f"  parameters: {json.dumps(self.params, default=str)}",
            f"  input: {self.input}",
        ]
        if self.features is not None:
            lines.append(f"  features: {json.dumps(self.features)}")
        return lines


def describe_file(
    path: str | os.PathLike[str],
) -> ArraysFileInfo | IndexFileInfo | ModelFileInfo:
    """What a model (``.safetensors``), an index file, or an ``.npy`` / ``.npz`` file holds.

    Arrays are told by the file's suffix, an index by its first bytes
    (:data:`~hashlearn.index.INDEX_FILE_MAGIC`), a model by the JSON header of a safetensors
    file. Models and indexes are loaded (so their checksums are verified; an index is
    memory-mapped), arrays read without unpickling.

    Raises
    ------
    InvalidInputError
        ``path`` is not a file, or its arrays cannot be read.
    FileFormatError
        The file is none of the three, or fails its checks.
    """
    path = check_input_file(path)
    with open(path, "rb") as handle:
        head = handle.read(16)
    size = os.path.getsize(path)
    if path.endswith((".npy", ".npz")):
        arrays = {
            name: ArrayInfo(
                str(array.dtype), array.shape, array.item() if array.ndim == 0 else None
            )
            for name, array in read_arrays(path).items()
        }
        return ArraysFileInfo(path, size, arrays)
    if head.startswith(INDEX_FILE_MAGIC):
        index = load_index(path, mmap=True)
        return IndexFileInfo(
            path, size, type(index).__name__, index.ntotal, index.n_bits, index.nbytes
        )
    if head[8:9] != b"{":  # a safetensors file: 8 bytes of header length, then a JSON header
        raise FileFormatError(
            f"{path!r} is none of what hashlearn writes: not a model (.safetensors), an index "
            "file or an .npy / .npz array file"
        )
    metadata = read_model_file(path)[0]
    model = load_hasher(path)
    inner = model.hasher if isinstance(model, FeatureHasher) else model
    return ModelFileInfo(
        path,
        size,
        method=model.name,
        n_bits=model.n_bits,
        format_version=metadata.get("format_version"),
        hashlearn_version=metadata.get("hashlearn_version"),
        params=inner.get_params(deep=False),
        input=model_input(model),
        features=model.features.get_config() if isinstance(model, FeatureHasher) else None,
        metadata_verified=metadata_verified(metadata),
    )


def model_input(model: Hasher) -> str:
    """What a fitted model (a hasher, or a :class:`~hashlearn.hashers.FeatureHasher`) encodes, in
    words: images of its shape, or feature vectors.

    >>> model_input(create_hasher("lsh", 16).fit(images))  # doctest: +SKIP
    'images 28x28, flattened to 784 values'
    """
    shape = "x".join(map(str, model.image_shape_)) if model.image_shape_ else ""
    if isinstance(model, FeatureHasher):
        return f"{'images ' + shape if shape else 'vectors'}, through the features below"
    if model.input_kind == "images":
        return f"images {shape}"
    if shape:
        return f"images {shape}, flattened to {int(np.prod(model.image_shape_))} values"
    return "feature vectors (give services --image-shape to take images)"
