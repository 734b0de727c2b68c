"""``hashlearn index`` and ``search``: a Hamming index built over codes, and searched."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from hashlearn.cli._args import (
    add_deprecated_alias,
    add_threads,
    apply_threads,
    code_width,
    load_array,
    load_features,
    parse_param,
    require_files,
)
from hashlearn.distributed import ShardedIndex, is_manifest, write_sharded_index
from hashlearn.encoding import read_codes
from hashlearn.exceptions import InvalidInputError
from hashlearn.index import (
    check_queries,
    create_index,
    describe_indexes,
    load_index,
    write_search_results,
)

__all__ = ["cmd_index", "cmd_search", "register"]


def register(sub: Any) -> None:
    """Add ``index`` and ``search`` to the sub-commands ``sub``."""
    _register_index(sub)
    _register_search(sub)


def _register_index(sub: Any) -> None:
    index_types = describe_indexes()
    p = sub.add_parser(
        "index",
        help="build a Hamming index over codes and save it",
        description="Index types: "
        + "; ".join(f"{name}: {text}" for name, text in index_types.items()),
    )
    p.add_argument(
        "--codes",
        required=True,
        help=".npy of packed uint8 codes, or .npz of hashlearn encode (codes, code length, ids)",
    )
    p.add_argument(
        "--ids", help=".npy of int64 ids (default: the ids of a --codes .npz, else 0..n-1)"
    )
    p.add_argument("--index-type", default="linear", choices=sorted(index_types), help="index type")
    add_deprecated_alias(p, "--type", "--index-type", choices=sorted(index_types))
    p.add_argument(
        "--param",
        type=parse_param,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="index parameter, e.g. --param n_substrings=4 (repeatable; values are JSON)",
    )
    bits = p.add_mutually_exclusive_group()
    bits.add_argument(
        "--bits",
        type=int,
        default=None,
        help="code length in bits (default: the one a --codes .npz records)",
    )
    bits.add_argument("--model", help="take the code length from the model that made the codes")
    p.add_argument(
        "--item-features",
        metavar="FILE",
        help=".npy (or .npz with X) of the items' features (images are flattened), kept for "
        "`hashlearn search --rerank` (hash-table and multi-table indexes)",
    )
    add_deprecated_alias(p, "--features", "--item-features")
    p.add_argument(
        "--shards",
        type=int,
        default=None,
        help="split the items by id %% SHARDS into that many index files beside a JSON manifest "
        "(--out NAME.json), for `hashlearn search --ray`",
    )
    p.add_argument("--out", required=True, help="index file to write (a .json with --shards)")
    p.set_defaults(func=cmd_index)


def cmd_index(args: argparse.Namespace) -> int:
    """``hashlearn index``: an index over a codes file, saved."""
    require_files(args.codes, args.ids, args.model, args.item_features)
    stored = read_codes(args.codes)  # one read: codes, and the code length and ids if stored
    n_bits = code_width(stored, args.codes, args.bits, args.model)
    if args.shards is not None:
        return _index_shards(args, stored, n_bits)
    index = create_index(args.index_type, n_bits, **dict(args.param))
    extra = {}
    if args.item_features:
        if not hasattr(index, "search_rerank"):
            raise InvalidInputError(
                f"a {args.index_type} index keeps no features; re-ranking by features takes "
                "--index-type hash-table or multi-table"
            )
        extra["features"] = load_features(args.item_features)
    # ids of their own, else those of the codes file (hashlearn encode --images writes them)
    ids = load_array(args.ids, "ids") if args.ids else stored.ids
    if ids is not None:
        index.add_with_ids(stored.codes, ids, **extra)
    else:
        index.add(stored.codes, **extra)
    index.save(args.out)
    with_features = f" and {index.n_features} features each" if extra else ""
    print(
        f"{args.index_type} index of {index.ntotal} codes of {index.n_bits} bits{with_features} "
        f"-> {args.out}"
    )
    return 0


def _index_shards(args: argparse.Namespace, stored: Any, n_bits: int) -> int:
    """``hashlearn index --shards S``: S shard files and their manifest."""
    if args.item_features:
        raise InvalidInputError("--shards keeps no features: leave out --item-features")
    ids = load_array(args.ids, "ids") if args.ids else stored.ids
    if ids is None:
        ids = np.arange(len(stored.codes), dtype=np.int64)
    manifest = write_sharded_index(
        args.out, stored.codes, ids, n_bits, args.shards, args.index_type, **dict(args.param)
    )
    print(
        f"{args.index_type} index of {len(ids)} codes of {n_bits} bits in {manifest.n_shards} shards "
        f"(id % {manifest.n_shards}) -> {args.out}"
    )
    return 0


def _search_operation(
    index: Any, queries: np.ndarray, args: argparse.Namespace
) -> Callable[[slice], tuple]:
    """The search ``hashlearn search`` asks for, as a function of a slice of the queries."""
    if args.radius is not None:
        return lambda part: index.range_search(queries[part], args.radius)
    if not args.rerank:
        return lambda part: index.search(queries[part], args.k)
    if not getattr(index, "has_features", False):
        raise InvalidInputError(
            f"{args.index!r} keeps no item features to re-rank by; build it with "
            "`hashlearn index --index-type hash-table (or multi-table) --item-features "
            "FEATURES.npy`"
        )
    features = load_features(args.rerank)
    # without --probe-radius, the index's own default: within 2 bits (one table), or the
    # query's own buckets (several)
    probe = () if args.probe_radius is None else (args.probe_radius,)
    return lambda part: index.search_rerank(
        queries[part], features[part], args.k, *probe, metric=args.rerank_metric
    )


def _register_search(sub: Any) -> None:
    p = sub.add_parser(
        "search", help="search an index with query codes (k nearest, or all within a radius)"
    )
    p.add_argument("--index", required=True)
    p.add_argument(
        "--queries",
        required=True,
        help=".npy of packed uint8 query codes, or the .npz of hashlearn encode",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("-k", type=int, default=10, help="neighbours per query (default: 10)")
    group.add_argument("--radius", type=int, help="return every item within this Hamming distance")
    add_threads(p)
    p.add_argument(
        "--mmap", action="store_true", help="memory-map the index file instead of reading it"
    )
    p.add_argument(
        "--rerank",
        metavar="QUERY_FEATURES",
        help=".npy (or .npz with X) of the queries' features: re-rank the candidates by feature "
        "distance to the items' stored features (`hashlearn index --item-features`), k best",
    )
    p.add_argument(
        "--rerank-metric",
        choices=("cosine", "l2"),
        default="cosine",
        help="feature distance of --rerank (default: cosine)",
    )
    add_deprecated_alias(p, "--metric", "--rerank-metric", choices=("cosine", "l2"))
    p.add_argument(
        "--probe-radius",
        type=int,
        default=None,
        help="candidates of --rerank: items within this Hamming distance (hash-table, default 2) "
        "or keys within it in each table (multi-table, default 0)",
    )
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="with a shard manifest as --index: the Ray cluster holding the shards (HOST:PORT, "
        "auto, or local: one on this machine, the default)",
    )
    p.add_argument("--show", type=int, default=5, help="queries to print (default: 5)")
    p.add_argument("--out", help="write distances and ids to this .npz")
    p.set_defaults(func=cmd_search)


def cmd_search(args: argparse.Namespace) -> int:
    """``hashlearn search``: search an index with query codes, print and save the hits."""
    apply_threads(args)
    require_files(args.index, args.queries, args.rerank)
    if is_manifest(args.index):
        if args.rerank:
            raise InvalidInputError("a sharded index keeps no features: --rerank is not possible")
        index = ShardedIndex(args.index, address=args.ray or "local", mmap=True)
    elif args.ray:
        raise InvalidInputError(
            f"--ray searches a sharded index: give its .json manifest, not {args.index!r}"
        )
    else:
        index = load_index(args.index, mmap=args.mmap)
    try:
        return _run_search(index, args)
    finally:
        if isinstance(index, ShardedIndex):
            index.close()


def _run_search(index: Any, args: argparse.Namespace) -> int:
    """Search ``index`` as ``hashlearn search`` asks, print and save the hits."""
    if args.rerank and args.radius is not None:
        raise InvalidInputError(
            "--rerank returns the k best re-ranked items: give -k, not --radius"
        )
    if args.probe_radius is not None and not args.rerank:
        raise InvalidInputError("--probe-radius sets the candidates of --rerank; give --rerank too")
    stored = read_codes(args.queries)
    queries = check_queries(stored.codes, index.n_bits, stored.n_bits)
    operation = _search_operation(index, queries, args)
    if len(queries):  # compiled kernels load on first use: outside the timing
        operation(slice(0, 1))
    start = time.perf_counter()
    lims = None
    if args.radius is not None:
        lims, D, I = operation(slice(None))
    else:
        D, I = operation(slice(None))
    elapsed = time.perf_counter() - start
    if args.out:
        write_search_results(args.out, D, I, lims)
    for q in range(min(len(queries), args.show)):
        if args.radius is not None:
            row = slice(lims[q], lims[q + 1])
            hits = ", ".join(f"{i}:{d}" for i, d in zip(I[row][:10], D[row][:10]))
            print(f"query {q}: {lims[q + 1] - lims[q]} within radius {args.radius}  {hits}")
        else:
            shown = (
                f"{i}:{d:.4g}" if args.rerank else f"{i}:{d}" for i, d in zip(I[q], D[q]) if i >= 0
            )
            print(f"query {q}: " + ", ".join(shown))
    rate = f"{len(queries) / elapsed:,.0f} queries/s" if elapsed > 0 else ""
    print(
        f"{len(queries)} queries against {index.ntotal} items ({type(index).__name__}) in "
        f"{elapsed * 1000:.1f} ms, {rate}"
    )
    if args.out:
        print(f"results -> {args.out}")
    return 0
