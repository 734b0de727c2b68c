"""One step from nothing to a search page: fit a hasher on a dataset, index it with its images.

:func:`prepare_demo` writes everything the service needs into one folder (and reuses it when it
was made with the same settings); ``hashlearn demo --serve`` then serves it::

    DIR/demo.json           the settings the folder was made with
    DIR/model.safetensors   the fitted hasher (train part of the dataset's standard split)
    DIR/index.hlindex       LinearIndex of the database part, ids = the images' dataset indices
    DIR/labels.npz          ids and class labels of the indexed images
    DIR/images/ID.png       each indexed image
    DIR/queries/*.png       held-out query images (two per class) to drop on the page
    DIR/data/               the service's store of added and deleted items
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._io import atomic_write
from hashlearn._json import read_json_file
from hashlearn.datasets import default_split, load_dataset
from hashlearn.exceptions import FileFormatError
from hashlearn.hashers import create_hasher, get_hasher_class
from hashlearn.index import LinearIndex

__all__ = ["DemoFiles", "prepare_demo", "save_png"]


@dataclass(frozen=True)
class DemoFiles:
    """Paths of a prepared demo folder (see the module docstring)."""

    directory: Path
    model: Path
    index: Path
    labels: Path
    images: Path
    queries: Path
    data: Path
    image_shape: tuple[int, ...]


def save_png(image: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write a ``float`` image ``(h, w)`` or ``(h, w, c)`` with values in [0, 1] as an 8-bit PNG."""
    from PIL import Image

    pixels = np.round(np.clip(np.asarray(image, dtype=np.float64), 0, 1) * 255).astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    Image.fromarray(pixels).save(path, format="PNG")


def _files(directory: Path, image_shape: tuple[int, ...]) -> DemoFiles:
    return DemoFiles(
        directory=directory,
        model=directory / "model.safetensors",
        index=directory / "index.hlindex",
        labels=directory / "labels.npz",
        images=directory / "images",
        queries=directory / "queries",
        data=directory / "data",
        image_shape=image_shape,
    )


def prepare_demo(
    directory: str | os.PathLike[str],
    *,
    dataset: str = "mnist5k",
    method: str = "dsh",
    n_bits: int = 12,
    epochs: int = 50,
    patience: int | None = 10,
    random_state: int = 0,
    verbose: bool = True,
    log: Callable[[str], None] | None = None,
) -> DemoFiles:
    """Fit ``method`` on ``dataset``'s standard split and write a servable folder.

    A folder already made with the same settings is reused as it is (its store of added items
    included); otherwise its contents are replaced.

    Parameters
    ----------
    directory : path
        Folder to write (created when missing).
    dataset, method, n_bits : what to fit.
    epochs, patience : training schedule of deep methods (early stopping on the validation part).
    random_state : int
        Seed of the split and of the hasher.
    verbose : bool
        Training progress bar.
    log : callable or None
        Receives one line per stage.

    Returns
    -------
    DemoFiles
    """
    log = log or (lambda message: None)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    data = load_dataset(dataset)
    files = _files(directory, tuple(int(s) for s in data.image_shape))
    settings = {
        "dataset": dataset,
        "method": method,
        "n_bits": n_bits,
        "epochs": epochs,
        "patience": patience,
        "random_state": random_state,
    }
    if _reusable(files, settings):
        log(f"reusing {directory} (made with the same settings)")
        return files
    split = default_split(data, random_state=random_state)
    deep = get_hasher_class(method).input_kind == "images"
    options = {"epochs": epochs, "patience": patience, "verbose": verbose} if deep else {}
    hasher = create_hasher(method, n_bits=n_bits, random_state=random_state, **options)
    # Deep methods keep the epoch with the best mAP on the validation part (never the queries).
    params: dict[str, Any] = (
        {"X_val": split.validation.X, "y_val": split.validation.y} if deep else {}
    )
    log(f"fitting {method} ({n_bits} bits) on {len(split.train)} training images of {dataset}")
    hasher.fit(split.train.X, split.train.y, **params)
    hasher.save(files.model)

    ids = np.asarray(split.database.indices, dtype=np.int64)
    order = np.argsort(ids)
    ids, X, y = ids[order], split.database.X[order], split.database.y[order]
    log(f"indexing the {len(ids)} database images and writing them as PNG files")
    index = LinearIndex(n_bits)
    index.add_with_ids(hasher.encode(X), ids)
    index.save(files.index)
    with atomic_write(files.labels) as handle:
        np.savez(handle, ids=ids, y=y)
    _write_images(files.images, ids, X)
    _write_queries(files.queries, split.query.X, split.query.y)
    if files.data.exists():  # writes over the previous model do not apply to this one
        shutil.rmtree(files.data)
    with atomic_write(directory / "demo.json") as handle:
        handle.write(json.dumps(settings, indent=2).encode())
    return files


def _reusable(files: DemoFiles, settings: dict[str, Any]) -> bool:
    manifest = files.directory / "demo.json"
    if not manifest.is_file():
        return False
    try:
        saved = read_json_file(manifest, max_bytes=1 << 20, error=FileFormatError)
    except (OSError, FileFormatError):  # not one this code wrote: build afresh
        return False
    needed = (files.model, files.index, files.labels, files.images, files.queries)
    return saved == settings and all(path.exists() for path in needed)


def _write_images(folder: Path, ids: np.ndarray, X: np.ndarray) -> None:
    """``folder/ID.png`` for each image, written to a fresh folder that replaces ``folder``."""
    staging = folder.with_name(folder.name + ".tmp")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    for item_id, image in zip(ids.tolist(), X):
        save_png(image, staging / f"{item_id}.png")
    if folder.exists():
        shutil.rmtree(folder)
    staging.rename(folder)


def _write_queries(folder: Path, X: np.ndarray, y: np.ndarray, per_class: int = 2) -> None:
    """Held-out query images, ``per_class`` of each label, named ``query-N-label-L.png``."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    for label in np.unique(y).tolist():
        for n, row in enumerate(np.flatnonzero(y == label)[:per_class].tolist()):
            save_png(X[row], folder / f"query-{n}-label-{label}.png")
