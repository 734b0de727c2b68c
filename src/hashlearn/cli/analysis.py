"""``hashlearn info``, ``dedup`` and ``evaluate``: what a file holds, the near-duplicates of a
collection of codes, and the retrieval metrics of query codes against database codes."""

from __future__ import annotations

import argparse
import time
from typing import Any

from hashlearn._parallel import get_num_threads
from hashlearn._version import __version__
from hashlearn.cli._args import (
    add_deprecated_alias,
    code_width,
    int_list,
    load_array,
    require_files,
)
from hashlearn.codes.kernels import ENVIRONMENT_VARIABLE, kernel_info
from hashlearn.encoding import describe_file, read_codes
from hashlearn.evaluation import evaluate_codes
from hashlearn.experiments.demo import METRIC_NOTE
from hashlearn.index import near_duplicates, write_groups_csv, write_pairs_csv

__all__ = ["cmd_dedup", "cmd_evaluate", "cmd_info", "register"]


def register(sub: Any) -> None:
    """Add ``info``, ``dedup`` and ``evaluate`` to the sub-commands ``sub``."""
    _register_info(sub)
    _register_dedup(sub)
    _register_evaluate(sub)


# -- info ----------------------------------------------------------------------------------------


def _register_info(sub: Any) -> None:
    p = sub.add_parser(
        "info",
        help="what a model, index or codes file holds (checked: checksums, format versions)",
    )
    p.add_argument(
        "files",
        nargs="*",
        help=".safetensors model, index file, .npy or .npz; none: this installation (version, "
        "Hamming kernel variant for this CPU, threads)",
    )
    p.set_defaults(func=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    """What a model, index or codes file holds, after checking it; with no file, what this
    installation runs on."""
    if not args.files:
        kernel = kernel_info()
        print(f"hashlearn {__version__}")
        print(f"CPU: {kernel['cpu']}; {get_num_threads()} threads")
        print(
            f"Hamming kernel: {kernel['variant']} (this CPU runs: {', '.join(kernel['available'])})"
        )
        if kernel["forced"]:
            print(f"  forced by {ENVIRONMENT_VARIABLE}={kernel['forced']}")
        print(f"  compiled scans: {kernel['native']}")
        return 0
    for number, path in enumerate(args.files):
        if number:
            print()
        for line in describe_file(path).lines():
            print(line)
    return 0


# -- dedup ---------------------------------------------------------------------------------------


def _register_dedup(sub: Any) -> None:
    p = sub.add_parser(
        "dedup",
        help="near-duplicates of a collection: every pair of codes within a radius, and groups",
        description="Search every code of the collection for the others within --radius bits "
        "(a self-join through an exact index, multi-index hashing by default), and join the "
        "pairs into groups (connected components).",
    )
    p.add_argument(
        "--codes",
        required=True,
        help=".npy of packed codes, or the .npz of hashlearn encode (codes, ids, paths)",
    )
    bits = p.add_mutually_exclusive_group()
    bits.add_argument(
        "--bits", type=int, default=None, help="code length (default: the one an .npz records)"
    )
    bits.add_argument("--model", help="take the code length from the model that made the codes")
    p.add_argument(
        "--radius", type=int, default=2, help="largest Hamming distance of a pair (default: 2)"
    )
    index_types = ("mih", "linear", "hash-table")
    p.add_argument(
        "--index-type",
        default="mih",
        choices=index_types,
        help="exact index that answers the self-join (default: mih)",
    )
    add_deprecated_alias(p, "--index", "--index-type", choices=index_types)
    p.add_argument("--show", type=int, default=5, help="groups to print (default: 5)")
    p.add_argument("--out", default=None, help="CSV of the groups: group, size, id, path")
    p.add_argument("--pairs", default=None, help="CSV of the pairs: first, second, distance")
    p.set_defaults(func=cmd_dedup)


def cmd_dedup(args: argparse.Namespace) -> int:
    """``hashlearn dedup``: the near-duplicate pairs and groups of a codes file."""
    require_files(args.codes, args.model)
    stored = read_codes(args.codes)
    codes = stored.codes
    n_bits = code_width(stored, args.codes, args.bits, args.model)
    start = time.perf_counter()
    # identical codes are grouped first: memory grows with the items, not with their pairs
    found = near_duplicates(codes, n_bits, args.radius, ids=stored.ids, index=args.index_type)
    groups = found.groups()
    elapsed = time.perf_counter() - start
    where = stored.paths_by_id()
    in_groups = sum(len(g) for g in groups)
    print(
        f"{len(codes):,} codes of {n_bits} bits: {found.n_pairs:,} pairs within {args.radius} bits, "
        f"{len(groups):,} groups holding {in_groups:,} items"
        + (f" (largest: {len(groups[0])})" if groups else "")
        + f", {elapsed:.2f} s"
    )
    for number, group in enumerate(groups[: args.show]):
        shown = ", ".join(str(where.get(i, i)) for i in group[:8].tolist())
        more = f" ... ({len(group)} items)" if len(group) > 8 else ""
        print(f"  group {number}: {shown}{more}")
    if args.out:
        write_groups_csv(args.out, groups, where)
        print(f"groups -> {args.out}")
    if args.pairs:
        write_pairs_csv(args.pairs, found)  # streamed: never all pairs in memory
        print(f"pairs -> {args.pairs}")
    return 0


# -- evaluate ------------------------------------------------------------------------------------


def _register_evaluate(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="retrieval metrics of query codes against database codes")
    p.add_argument("--query-codes", required=True)
    p.add_argument("--query-labels", required=True, help=".npz with y, or .npy")
    p.add_argument("--db-codes", required=True)
    p.add_argument("--db-labels", required=True, help=".npz with y, or .npy")
    p.add_argument(
        "--ks",
        type=int_list,
        default=[10],
        metavar="K,K...",
        help="comma-separated cut-offs of P@k, R@k, mAP@k and NDCG@k (default: 10)",
    )
    add_deprecated_alias(p, "-k", "--ks", type=int, nargs="+")
    p.add_argument(
        "--radius", type=int, default=2, help="Hamming radius for precision within radius"
    )
    p.add_argument(
        "--ties",
        choices=("position", "average"),
        default="position",
        help="order of items at equal distance: database position, or tie-averaged",
    )
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``hashlearn evaluate``: the retrieval metrics of query codes against database codes."""
    require_files(args.query_codes, args.query_labels, args.db_codes, args.db_labels)
    metrics = evaluate_codes(
        load_array(args.query_codes, "codes"),
        load_array(args.query_labels, "y"),
        load_array(args.db_codes, "codes"),
        load_array(args.db_labels, "y"),
        ks=tuple(args.ks),
        map_at=tuple(args.ks),
        ndcg_at=tuple(args.ks),
        radius=args.radius,
        ties=args.ties,
    )
    for key, value in metrics.items():
        print(f"{key:8s} {value:.4f}")
    print(METRIC_NOTE)
    if args.ties == "average":
        print("Ties: every rank metric is its expected value over all orders of tied items.")
    return 0
