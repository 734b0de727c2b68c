"""The retrieval protocols that :func:`~hashlearn.evaluation.apply_protocol` knows by name.

One ``register`` line per protocol: its name (recorded in ``RetrievalSplit.protocol`` and in
benchmark results), the :class:`~hashlearn.evaluation.Protocol` itself as
``"hashlearn.evaluation.protocols:NAME"`` (imported on first use) and one line saying how it
splits. :mod:`hashlearn.evaluation.protocols` defines them and describes them in full.
"""

from __future__ import annotations

from typing import Any

from hashlearn._registry import Registry

__all__ = ["PROTOCOLS", "describe_protocols", "get_protocol", "list_protocols"]

_MODULE = "hashlearn.evaluation.protocols"

PROTOCOLS: Registry[Any] = Registry("protocol")
PROTOCOLS.register(
    "cifar10",
    f"{_MODULE}:CIFAR10",
    "1,000 queries (100/class); 5,000 train (500/class) held out of the database",
)
PROTOCOLS.register(
    "cifar10-1",
    f"{_MODULE}:CIFAR10_1",
    "1,000 queries (100/class); database = the rest; 5,000 train (500/class) from it",
)
PROTOCOLS.register(
    "cifar10-2",
    f"{_MODULE}:CIFAR10_2",
    "queries = official test set; train = database = official training set",
)
PROTOCOLS.register(
    "mnist",
    f"{_MODULE}:MNIST",
    "queries = the 10,000 official test images; train = database = the 60,000 others",
)
PROTOCOLS.register(
    "fashion-mnist",
    f"{_MODULE}:FASHION_MNIST",
    "queries = the 10,000 official test images; train = database = the 60,000 others",
)
PROTOCOLS.register(
    "grh",
    f"{_MODULE}:GRH",
    "Moran & Lavrenko GRH: 0.2% queries; the rest 98% database / 2% train (held out)",
)
PROTOCOLS.register("default", f"{_MODULE}:DEFAULT", "the dataset's own default_split")


def list_protocols() -> list[str]:
    """Registered protocol names, sorted."""
    return PROTOCOLS.names()


def describe_protocols() -> dict[str, str]:
    """Registered protocols with a one-line description each, in name order."""
    return PROTOCOLS.describe()


def get_protocol(name: str) -> Any:
    """The registered :class:`~hashlearn.evaluation.Protocol` ``name``.

    Raises
    ------
    UnknownNameError
        For an unregistered name; the message lists the registered ones.
    """
    return PROTOCOLS.get(name)
