"""``hashlearn list`` and ``split``: what the registries hold, and a dataset's parts as files."""

from __future__ import annotations

import argparse
from typing import Any

from hashlearn.cli._args import add_quiet
from hashlearn.datasets import describe_datasets, load_dataset, save_split
from hashlearn.evaluation import apply_protocol, describe_protocols
from hashlearn.features import describe_features
from hashlearn.hashers import describe_hashers
from hashlearn.index import describe_indexes

__all__ = ["cmd_list", "cmd_split", "register"]


def register(sub: Any) -> None:
    """Add ``list`` and ``split`` to the sub-commands ``sub``."""
    _register_list(sub)
    _register_split(sub)


def _register_list(sub: Any) -> None:
    p = sub.add_parser("list", help="list hashers, datasets and protocols")
    p.set_defaults(func=cmd_list)


def cmd_list(args: argparse.Namespace) -> int:
    """``hashlearn list``: the registered hashers, features, datasets, protocols and indexes."""
    for title, names in (
        ("hashers", describe_hashers()),
        ("features (chain with +, e.g. gist+l2-center)", describe_features()),
        ("datasets", describe_datasets()),
        ("protocols", describe_protocols()),
        ("indexes", describe_indexes()),
    ):
        print(f"{title}:")
        for name, text in names.items():
            print(f"  {name:13s} {text}")
    return 0


def _register_split(sub: Any) -> None:
    p = sub.add_parser(
        "split", help="write a dataset's query/database/train/validation parts as .npz"
    )
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--protocol", default="default", help="retrieval protocol (hashlearn list)")
    p.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder")
    add_quiet(p)
    p.set_defaults(func=cmd_split)


def cmd_split(args: argparse.Namespace) -> int:
    """``hashlearn split``: a dataset's protocol parts written as ``.npz`` files."""
    data = load_dataset(args.dataset, data_dir=args.data_dir, verbose=not args.quiet)
    split = apply_protocol(data, args.protocol, args.seed)
    for part, path in save_split(split, args.out).items():
        subset = getattr(split, part)
        print(f"{path}: {len(subset)} items, X {subset.X.shape}")
    print(f"protocol {args.protocol}, seed {args.seed}, manifest {split.manifest}")
    return 0
