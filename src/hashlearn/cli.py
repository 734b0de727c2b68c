"""The ``hashlearn`` command: thin argument parsing over the library (no logic of its own)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hashlearn._io import read_arrays
from hashlearn.exceptions import HashlearnError, InvalidInputError

EPILOG = """\
A typical pipeline on arrays stored as .npy/.npz (npz files hold X and y):
  hashlearn split --dataset mnist5k --out data/
  hashlearn fit --method dsh --bits 12 --data data/train.npz --out dsh.safetensors
  hashlearn encode --model dsh.safetensors --data data/database.npz --out db_codes.npy
  hashlearn encode --model dsh.safetensors --data data/query.npz --out q_codes.npy
  hashlearn index --codes db_codes.npy --out db.hlindex
  hashlearn search --index db.hlindex --queries q_codes.npy -k 10 --out hits.npz
  hashlearn evaluate --query-codes q_codes.npy --query-labels data/query.npz \\
                     --db-codes db_codes.npy --db-labels data/database.npz
"""


def _parse_param(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _parse_grid(text: str) -> tuple[str, list[Any]]:
    """``KEY=V1,V2,...`` (each value JSON, else a string) or ``KEY=[JSON list]``."""
    key, value = _parse_param(text)
    if isinstance(value, list):
        return key, value
    if isinstance(value, str):
        return key, [_parse_param(f"{key}={item}")[1] for item in value.split(",")]
    return key, [value]


def _count_or_fraction(text: str) -> int | float:
    """``500`` -> 500 (a count), ``0.1`` -> 0.1 (a fraction)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count or a fraction, got {text!r}") from None
    return int(value) if value.is_integer() and value >= 1 else value


def _load_array(path: str, key: str) -> np.ndarray:
    """Read ``key`` from an .npz file, or the array of an .npy file (never unpickling)."""
    arrays = read_arrays(path, (key,), require=key)
    return arrays[""] if "" in arrays else arrays[key]


def _load_features(path: str) -> np.ndarray:
    """Features from an .npy, or ``X`` of an .npz; image arrays flattened to ``(n, h*w*c)``."""
    array = _load_array(path, "X")
    return array.reshape(len(array), -1) if array.ndim > 2 else array


def _save_npy(path: str, array: np.ndarray) -> None:
    from hashlearn._io import atomic_write

    with atomic_write(path) as handle:
        np.save(handle, array, allow_pickle=False)


def _save_npz(path: str, **arrays: np.ndarray) -> None:
    from hashlearn._io import atomic_write

    with atomic_write(path) as handle:
        np.savez(handle, **arrays)


# -- commands -----------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from hashlearn.demo import format_demo, run_demo
    from hashlearn.hashers import get_hasher_class

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.serve:
        from hashlearn.serve import open_service, require_web_dependencies, run_server
        from hashlearn.serve.demo import prepare_demo

        require_web_dependencies()
        files = prepare_demo(
            args.serve_dir,
            dataset=args.dataset,
            method=methods[-1] if methods else "dsh",
            n_bits=args.bits,
            epochs=args.epochs,
            patience=args.patience,
            random_state=args.seed,
            verbose=not args.quiet,
            log=lambda line: print(line, flush=True),
        )
        service = open_service(
            files.model,
            files.index,
            data_dir=files.data,
            images_dir=files.images,
            labels=files.labels,
            image_shape=files.image_shape,
        )
        print(
            f"open http://127.0.0.1:{args.port}/ and drop an image, e.g. one of {files.queries}/ "
            "(Ctrl-C stops)",
            flush=True,
        )
        try:
            run_server(service, host="127.0.0.1", port=args.port)
        finally:
            service.close()
        return 0
    deep = [m for m in methods if get_hasher_class(m).input_kind == "images"]
    params = {m: {"epochs": args.epochs, "patience": args.patience} for m in deep}
    print(
        f"hashlearn demo: {', '.join(methods)} at {args.bits} bits on {args.dataset} (seed {args.seed})",
        flush=True,
    )
    result = run_demo(
        args.dataset,
        methods=methods,
        n_bits=args.bits,
        random_state=args.seed,
        method_params=params,
        verbose=not args.quiet,
        log=None if args.quiet else lambda line: print(line, flush=True),
    )
    print()
    print(format_demo(result))
    if not args.no_report:
        _demo_report(result, args.out, verbose=not args.quiet)
    return 0


def _demo_report(result: Any, out: str, *, verbose: bool) -> None:
    """Write the demo's results (CSV + JSON) and an HTML report of its last method into ``out``."""
    from hashlearn.benchmark import write_results
    from hashlearn.report import build_report

    os.makedirs(out, exist_ok=True)
    stem = os.path.join(out, f"demo-{result.dataset}")
    write_results(result.rows, stem + ".csv", stem + ".json", result.config)
    last = result.rows[-1].method
    report = build_report(
        stem + ".json",
        os.path.join(out, "report.html"),
        model=result.hashers[last],
        dataset=result.dataset,
        seed=result.config.seeds[0],
        title=f"hashlearn demo: {', '.join(r.method for r in result.rows)} on {result.dataset}",
        verbose=verbose,
    )
    print(f"\nresults -> {stem}.csv, {stem}.json")
    print(f"report  -> {report} (open it in a browser; pictures of {last}'s codes and retrievals)")


def cmd_serve(args: argparse.Namespace) -> int:
    from hashlearn.index import set_num_threads
    from hashlearn.serve import (
        ServeLimits,
        open_service,
        parse_image_shape,
        require_web_dependencies,
        run_server,
    )
    from hashlearn.serve.limits import load_token

    require_web_dependencies()
    if args.threads:
        set_num_threads(args.threads)
    limits = ServeLimits(
        max_body_bytes=args.max_body_bytes,
        max_image_bytes=args.max_image_bytes,
        max_image_pixels=args.max_image_pixels,
        max_k=args.max_k,
        max_radius=args.max_radius,
        max_results=args.max_results,
        request_timeout=args.request_timeout,
    )
    token = load_token(args.token_file)
    index, images, data_dir = args.index, args.images, args.data_dir
    if (index is None) == (args.folder is None):
        raise InvalidInputError("give --index (a built index) or --folder (images to index)")
    if args.folder is not None:
        from hashlearn.imagefiles import index_folder

        if images is not None:
            raise InvalidInputError("--folder shows its own images: leave out --images")
        work = args.work_dir or f"{os.path.normpath(args.folder)}.hashlearn"
        built = index_folder(
            args.model,
            args.folder,
            work,
            image_shape=parse_image_shape(args.image_shape) if args.image_shape else None,
        )
        for name, reason in built.skipped:
            print(f"skipped {name}: {reason}", file=sys.stderr)
        print(
            f"{'reusing' if built.reused else 'built'} the codes and index of {args.folder} in "
            f"{work}",
            flush=True,
        )
        index, images = built.index, built.codes
        if data_dir is None:
            data_dir = os.path.join(work, "writes")
            if not built.reused and os.path.exists(data_dir):
                # writes made over the previous index do not apply to the new one: kept aside
                import time

                kept = f"{data_dir}-before-{time.strftime('%Y%m%d-%H%M%S')}"
                os.rename(data_dir, kept)
                print(f"the writes made over the previous index are kept in {kept}", flush=True)
    service = open_service(
        args.model,
        index,
        data_dir=data_dir,
        images_dir=images,
        labels=args.labels,
        image_shape=parse_image_shape(args.image_shape) if args.image_shape else None,
        limits=limits,
        mmap=args.mmap,
    )
    stats = service.stats()
    print(
        f"serving {stats['items']} items ({stats['method']}, {stats['bits']} bits, "
        f"{stats['index_type']}) at http://{args.host}:{args.port}/ ; writes "
        + ("need the bearer token" if token else "are open (no token configured)"),
        flush=True,
    )
    try:
        run_server(
            service,
            host=args.host,
            port=args.port,
            token=token,
            log_level=args.log_level,
            access_log=not args.no_access_log,
        )
    finally:
        service.close()
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from hashlearn.datasets import list_datasets
    from hashlearn.evaluation import list_protocols
    from hashlearn.features import list_features
    from hashlearn.hashers import describe_hashers
    from hashlearn.index import describe_indexes

    for title, names in (
        ("hashers", describe_hashers()),
        ("features (chain with +, e.g. gist+l2-center)", list_features()),
        ("datasets", list_datasets()),
        ("protocols", list_protocols()),
        ("indexes", describe_indexes()),
    ):
        print(f"{title}:")
        for name, text in names.items():
            print(f"  {name:13s} {text}")
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    from hashlearn.datasets import load_dataset
    from hashlearn.evaluation import apply_protocol

    data = load_dataset(args.dataset, data_dir=args.data_dir)
    split = apply_protocol(data, args.protocol, args.seed)
    os.makedirs(args.out, exist_ok=True)
    for part in ("query", "database", "train", "validation"):
        subset = getattr(split, part)
        path = os.path.join(args.out, f"{part}.npz")
        _save_npz(path, X=subset.X, y=subset.y, indices=subset.indices)
        print(f"{path}: {len(subset)} items, X {subset.X.shape}")
    print(f"protocol {args.protocol}, seed {args.seed}, manifest {split.manifest}")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    from hashlearn.hashers import create_hasher

    X = _load_array(args.data, args.x_key)
    y = _load_array(args.data, args.y_key) if args.data.endswith(".npz") else None
    params = dict(args.param or [])
    if args.seed is not None:
        params["random_state"] = args.seed
    hasher = create_hasher(args.method, n_bits=args.bits, **params)
    if hasher.supervised and y is None:
        raise InvalidInputError(
            f"{args.method!r} is supervised: give an .npz with labels under {args.y_key!r}"
        )
    if args.features:
        from hashlearn.features import create_features
        from hashlearn.hashers import FeatureHasher

        hasher = FeatureHasher(create_features(args.features), hasher)
    hasher.fit(X, y)
    hasher.save(args.out)
    print(f"fitted {hasher!r} on {len(X)} samples -> {args.out}")
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    from hashlearn.hashers import load_hasher

    hasher = load_hasher(args.model)
    if args.images:
        return _encode_images(hasher, args)
    codes = hasher.encode(_load_array(args.data, args.x_key))
    if args.out.endswith(".npz"):  # the code length travels with the codes
        _save_npz(args.out, codes=codes, n_bits=np.array(hasher.n_bits))
    else:
        _save_npy(args.out, codes)
    print(f"{len(codes)} codes of {hasher.n_bits} bits ({codes.shape[1]} bytes each) -> {args.out}")
    return 0


def _encode_images(hasher: Any, args: argparse.Namespace) -> int:
    """``hashlearn encode --images DIR``: codes, ids and paths of the folder's files in an .npz."""
    from hashlearn.imagefiles import encode_image_files, write_image_codes
    from hashlearn.serve.images import parse_image_shape

    if not args.out.endswith(".npz"):
        raise InvalidInputError(
            f"--images writes codes, ids and paths together: give an .npz --out, not {args.out!r}"
        )
    result = encode_image_files(
        hasher,
        args.images,
        image_shape=parse_image_shape(args.image_shape) if args.image_shape else None,
        skip_unreadable=args.skip_unreadable,
        verbose=not args.quiet,
    )
    write_image_codes(result, args.out)
    for name, reason in result.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    named = "ids from the file names" if result.named else "ids 0..n-1 in path order"
    print(
        f"{len(result.codes)} images of {args.images} -> {len(result.codes)} codes of "
        f"{hasher.n_bits} bits, {named}"
        + (f", {len(result.skipped)} unreadable files skipped" if result.skipped else "")
        + f" -> {args.out}"
    )
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from hashlearn.hashers import load_hasher
    from hashlearn.index import create_index

    arrays = read_arrays(args.codes, ("codes", "n_bits", "ids"), require="codes")  # one read
    codes = arrays.get("", arrays.get("codes"))
    stored_bits = arrays.get("n_bits")  # written by hashlearn encode --out FILE.npz
    if args.bits:
        n_bits = args.bits
    elif args.model:
        n_bits = load_hasher(args.model).n_bits
    elif stored_bits is not None:
        n_bits = int(stored_bits)
    else:
        n_bits = 8 * codes.shape[1] if codes.ndim == 2 else 0
    index = create_index(args.type, n_bits, **dict(args.param))
    extra = {}
    if args.features:
        if not hasattr(index, "search_rerank"):
            raise InvalidInputError(
                f"a {args.type} index keeps no features; re-ranking by features takes a "
                "hash-table or multi-table index"
            )
        extra["features"] = _load_features(args.features)
    # ids of their own, else those of the codes file (hashlearn encode --images writes them)
    ids = _load_array(args.ids, "ids") if args.ids else arrays.get("ids")
    if ids is not None:
        index.add_with_ids(codes, ids, **extra)
    else:
        index.add(codes, **extra)
    index.save(args.out)
    with_features = f" and {index.n_features} features each" if extra else ""
    print(
        f"{args.type} index of {index.ntotal} codes of {index.n_bits} bits{with_features} "
        f"-> {args.out}"
    )
    return 0


def _search_operation(
    index: Any, queries: np.ndarray, args: argparse.Namespace
) -> Callable[[slice], tuple]:
    """The search ``hashlearn search`` asks for, as a function of a slice of the queries."""
    from hashlearn.index import HashTableIndex

    if args.radius is not None:
        return lambda part: index.range_search(queries[part], args.radius)
    if not args.rerank:
        return lambda part: index.search(queries[part], args.k)
    if not getattr(index, "has_features", False):
        raise InvalidInputError(
            f"{args.index!r} keeps no item features to re-rank by; build it with "
            "`hashlearn index --type hash-table (or multi-table) --features FEATURES.npy`"
        )
    features = _load_features(args.rerank)
    radius = args.probe_radius
    if radius is None:  # one table: items within 2 bits; several: the query's own buckets
        radius = 2 if isinstance(index, HashTableIndex) else 0
    return lambda part: index.search_rerank(
        queries[part], features[part], args.k, radius, metric=args.metric
    )


def cmd_search(args: argparse.Namespace) -> int:
    import time

    from hashlearn.index import load_index, set_num_threads

    if args.threads:
        set_num_threads(args.threads)
    index = load_index(args.index, mmap=args.mmap)
    if args.rerank and args.radius is not None:
        raise InvalidInputError(
            "--rerank returns the k best re-ranked items: give -k, not --radius"
        )
    if args.probe_radius is not None and not args.rerank:
        raise InvalidInputError("--probe-radius sets the candidates of --rerank; give --rerank too")
    queries = _load_array(args.queries, "codes")
    operation = _search_operation(index, queries, args)
    if len(queries):  # compiled kernels load on first use: outside the timing
        operation(slice(0, 1))
    start = time.perf_counter()
    if args.radius is not None:
        lims, D, I = operation(slice(None))
    else:
        D, I = operation(slice(None))
    elapsed = time.perf_counter() - start
    if args.out:
        if args.radius is not None:
            _save_npz(args.out, lims=lims, distances=D, ids=I)
        else:
            _save_npz(args.out, distances=D, ids=I)
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


def cmd_info(args: argparse.Namespace) -> int:
    """What a model, index or codes file holds, after checking it."""
    for number, path in enumerate(args.files):
        if number:
            print()
        for line in _describe_file(path):
            print(line)
    return 0


def _describe_file(path: str) -> list[str]:
    """Lines describing a model (.safetensors), an index file, or an .npy / .npz of arrays."""
    if not os.path.isfile(path):
        raise InvalidInputError(f"file not found: {path!r}")
    with open(path, "rb") as handle:
        head = handle.read(16)
    size = f"{os.path.getsize(path):,} bytes"
    if path.endswith((".npy", ".npz")):
        arrays = read_arrays(path)
        lines = [f"{path}: arrays ({size})"]
        for name, array in arrays.items():
            shown = f"{array.item()!r}" if array.ndim == 0 else f"{array.dtype} {array.shape}"
            lines.append(f"  {name or '(array)'}: {shown}")
        return lines
    from hashlearn.index._format import MAGIC

    if head.startswith(MAGIC):
        from hashlearn.index import load_index

        index = load_index(path, mmap=True)
        return [
            f"{path}: {type(index).__name__} index ({size}, checksum verified)",
            f"  {index.ntotal:,} items, {index.n_bits} bits, {index.nbytes / max(index.ntotal, 1):.1f}"
            " bytes per item",
        ]
    from hashlearn.exceptions import FileFormatError
    from hashlearn.hashers import FeatureHasher, load_hasher
    from hashlearn.hashers.base import read_model_file

    if head[8:9] != b"{":  # a safetensors file: 8 bytes of header length, then a JSON header
        raise FileFormatError(
            f"{path!r} is none of what hashlearn writes: not a model (.safetensors), an index "
            "file or an .npy / .npz array file"
        )
    metadata = read_model_file(path)[0]
    model = load_hasher(path)
    inner = model.hasher if isinstance(model, FeatureHasher) else model
    lines = [
        f"{path}: {model.name} model, {model.n_bits} bits ({size}, format version "
        f"{metadata.get('format_version')}, written by hashlearn {metadata.get('hashlearn_version')}"
        ", checksum verified)",
        f"  parameters: {json.dumps(inner.get_params(deep=False), default=str)}",
        f"  input: {_model_input(model)}",
    ]
    if isinstance(model, FeatureHasher):
        lines.append(f"  features: {json.dumps(model.features.get_config())}")
    return lines


def _model_input(model: Any) -> str:
    """What a loaded model encodes, in words."""
    from hashlearn.hashers import FeatureHasher

    shape = "x".join(map(str, model.image_shape_)) if model.image_shape_ else ""
    if isinstance(model, FeatureHasher):
        return f"{'images ' + shape if shape else 'vectors'}, through the features below"
    if model.input_kind == "images":
        return f"images {shape}"
    if shape:
        return f"images {shape}, flattened to {int(np.prod(model.image_shape_))} values"
    return "feature vectors (give services --image-shape to take images)"


def cmd_dedup(args: argparse.Namespace) -> int:
    import csv
    import io
    import time

    from hashlearn._io import atomic_write
    from hashlearn.index import group_pairs, near_duplicate_pairs

    arrays = read_arrays(args.codes, ("codes", "ids", "paths", "n_bits"), require=None)
    codes = arrays.get("codes", arrays.get(""))
    if codes is None:
        raise InvalidInputError(f"{args.codes!r} has no array 'codes'")
    n_bits = args.bits or int(arrays.get("n_bits", 8 * codes.shape[1] if codes.ndim == 2 else 0))
    ids = arrays.get("ids")
    paths = arrays.get("paths")
    start = time.perf_counter()
    pairs = near_duplicate_pairs(codes, n_bits, args.radius, ids=ids, index=args.index)
    groups = group_pairs(pairs)
    elapsed = time.perf_counter() - start
    where = {}
    if paths is not None:
        item_ids = ids if ids is not None else np.arange(len(codes))
        where = dict(zip(np.asarray(item_ids).tolist(), np.asarray(paths).tolist()))
    in_groups = sum(len(g) for g in groups)
    print(
        f"{len(codes):,} codes of {n_bits} bits: {len(pairs):,} pairs within {args.radius} bits, "
        f"{len(groups):,} groups holding {in_groups:,} items"
        + (f" (largest: {len(groups[0])})" if groups else "")
        + f", {elapsed:.2f} s"
    )
    for number, group in enumerate(groups[: args.show]):
        shown = ", ".join(str(where.get(i, i)) for i in group[:8].tolist())
        more = f" ... ({len(group)} items)" if len(group) > 8 else ""
        print(f"  group {number}: {shown}{more}")
    if args.out:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["group", "size", "id", "path"])
        for number, group in enumerate(groups):
            for item in group.tolist():
                writer.writerow([number, len(group), item, where.get(item, "")])
        with atomic_write(args.out) as handle:
            handle.write(buffer.getvalue().encode())
        print(f"groups -> {args.out}")
    if args.pairs:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["first", "second", "distance"])
        writer.writerows(zip(pairs.first.tolist(), pairs.second.tolist(), pairs.distances.tolist()))
        with atomic_write(args.pairs) as handle:
            handle.write(buffer.getvalue().encode())
        print(f"pairs -> {args.pairs}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from hashlearn.demo import METRIC_NOTE
    from hashlearn.evaluation import evaluate_codes

    metrics = evaluate_codes(
        _load_array(args.query_codes, "codes"),
        _load_array(args.query_labels, "y"),
        _load_array(args.db_codes, "codes"),
        _load_array(args.db_labels, "y"),
        ks=tuple(args.k),
        map_at=tuple(args.k),
        ndcg_at=tuple(args.k),
        radius=args.radius,
        ties=args.ties,
    )
    for key, value in metrics.items():
        print(f"{key:8s} {value:.4f}")
    print(METRIC_NOTE)
    if args.ties == "average":
        print("Ties: every rank metric is its expected value over all orders of tied items.")
    return 0


def _benchmark_methods(text: str) -> list[str]:
    from hashlearn.hashers import get_hasher_class, list_hashers

    if text == "all":
        return list_hashers()
    if text == "shallow":
        return [m for m in list_hashers() if get_hasher_class(m).input_kind == "features"]
    return [m.strip() for m in text.split(",") if m.strip()]


def _int_list(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InvalidInputError(f"expected comma-separated integers, got {text!r}") from None


def cmd_benchmark(args: argparse.Namespace) -> int:
    import time

    from hashlearn.benchmark import load_config, make_config, run_config, summarize, write_results
    from hashlearn.hashers import get_hasher_class

    methods = _benchmark_methods(args.methods) if args.methods else None
    params: dict[str, dict[str, Any]] = {}
    for key, value in args.param or []:
        method, dot, name = key.partition(".")
        if not dot:
            raise InvalidInputError(f"--param takes METHOD.KEY=VALUE, got {key!r}")
        deep = [m for m in methods or [] if get_hasher_class(m).input_kind == "images"]
        for target in deep if method == "deep" else [method]:
            params.setdefault(target, {})[name] = value
    grids: dict[str, dict[str, list[Any]]] = {}
    for key, values in args.grid or []:
        method, dot, name = key.partition(".")
        if not dot:
            raise InvalidInputError(f"--grid takes METHOD.KEY=V1,V2,..., got {key!r}")
        grids.setdefault(method, {}).setdefault(name, []).extend(values)
    options = {
        "dataset": args.dataset,
        "protocol": args.protocol,
        "data_dir": args.data_dir,
        "features": args.features,
        "bits": _int_list(args.bits),
        "seeds": args.seeds,
        "ks": _int_list(args.ks),
        "map_at": _int_list(args.map_at),
        "ndcg_at": _int_list(args.ndcg_at),
        "radius": args.radius,
        "ties": args.ties,
        "radius_curve": args.radius_curve,
        "models_dir": args.save_models,
        "select_by": args.select_by,
        "baselines": args.baselines.split(",") if args.baselines else None,
    }
    options = {k: v for k, v in options.items() if v is not None}
    if args.config:
        if methods is not None:
            options["methods"] = methods
        # flags override the file: the YAML's parameters and grids stand unless flags give some
        config = load_config(
            args.config, method_params=params or None, method_grids=grids or None, **options
        )
    else:
        config = make_config(
            options.pop("dataset", "mnist5k"),
            methods or _benchmark_methods("shallow"),
            options.pop("bits", [8, 12, 16, 32, 64]),
            options.pop("seeds", 3),
            method_params=params,
            method_grids=grids,
            **options,
        )
    start = time.perf_counter()
    rows = run_config(config, verbose=not args.quiet, log=None if args.quiet else print)
    total_s = time.perf_counter() - start
    print()
    print(
        f"{config.dataset}, protocol {config.protocol} (manifest "
        f"{', '.join(sorted({r.manifest for r in rows}))}), {config.features} features, "
        f"{len(config.seeds)} seed(s); mean ± std over seeds; ties by {config.ties}"
    )
    for metric in ("mAP", *(f"mAP@{k}" for k in config.map_at), *(f"P@{k}" for k in config.ks[:1])):
        print(summarize(rows, metric))
        print()
    chosen = [r for r in rows if r.chosen]
    if chosen:
        print(f"chosen on the validation part by {config.select_by} (against the train part):")
        for r in chosen:
            values = ", ".join(f"{k}={json.dumps(v)}" for k, v in r.chosen.items())
            print(f"  {r.method} {r.n_bits} bits seed {r.seed}: {values}")
        print()
    os.makedirs(args.out, exist_ok=True)
    name = args.name or config.name or f"benchmark-{config.dataset}-{config.features}"
    stem = os.path.join(args.out, name)
    write_results(rows, stem + ".csv", stem + ".json", config, total_s=total_s)
    print(f"results -> {stem}.csv, {stem}.json ({total_s:.0f} s)")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from hashlearn.tuning import tune, write_tune_result

    grid: dict[str, list[Any]] = {}
    for key, values in args.grid:
        grid.setdefault(key, []).extend(values)
    result = tune(
        args.dataset,
        args.method,
        args.bits,
        grid,
        params=dict(args.param or []),
        metric=args.metric,
        protocol=args.protocol,
        features=args.features,
        seed=args.seed,
        n_validation=args.n_validation,
        data_dir=args.data_dir,
        verbose=not args.quiet,
    )
    sizes = result.sizes
    print(
        f"{args.method} at {args.bits} bits on {args.dataset} ({args.protocol} protocol, seed "
        f"{args.seed}, manifest {result.manifest}): {len(result.trials)} fits on the train part "
        f"({sizes['train']}), scored by {args.metric} of the validation part ({sizes['validation']}"
        f" queries) against it"
    )
    print()
    print(result.table())
    print(f"\n{result.metric}: {result.definitions.get(result.metric, '')}")
    if args.save_model:
        result.model.save(args.save_model)
        print(f"chosen model -> {args.save_model}")
    if args.out:
        write_tune_result(result, args.out)
        print(f"trials -> {args.out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from hashlearn.report import build_report

    out = build_report(
        args.results,
        args.out,
        model=args.model,
        dataset=args.dataset,
        protocol=args.protocol,
        seed=args.seed,
        features=args.features,
        title=args.title,
        verbose=not args.quiet,
    )
    print(f"report -> {out} (figures in {out.with_name(out.stem + '_files')})")
    return 0


# -- parser -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from hashlearn._version import __version__

    parser = argparse.ArgumentParser(
        prog="hashlearn",
        description="Learn binary hash codes for images, index them, search them and measure retrieval.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hashlearn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "demo", help="fit LSH and DSH on real MNIST digits, index, search and measure"
    )
    p.add_argument("--dataset", default="mnist5k", help="embedded dataset (default: mnist5k)")
    p.add_argument(
        "--methods", default="lsh,dsh", help="comma-separated hashers (default: lsh,dsh)"
    )
    p.add_argument("--bits", type=int, default=12, help="code length (default: 12)")
    p.add_argument(
        "--epochs", type=int, default=50, help="deep training epochs at most (default: 50)"
    )
    p.add_argument(
        "--patience",
        type=int,
        default=10,
        help="stop deep training after this many epochs without a better validation mAP (default: 10)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of split, initialisation and batches")
    p.add_argument(
        "--out",
        default="hashlearn-out",
        help="folder of the results and report (default: hashlearn-out)",
    )
    p.add_argument(
        "--no-report", action="store_true", help="do not write results and the HTML report"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--serve",
        action="store_true",
        help="instead of the table: fit the last of --methods (dsh by default), index the "
        "database with its images in --serve-dir and serve the search page on 127.0.0.1",
    )
    p.add_argument("--port", type=int, default=8000, help="port of --serve (default: 8000)")
    p.add_argument(
        "--serve-dir",
        default="hashlearn-demo",
        help="folder of --serve's model, index, images and writes, reused when the settings "
        "match (default: hashlearn-demo)",
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "benchmark",
        help="methods x bits x seeds: every retrieval metric under a named protocol",
        description="Fit and evaluate methods x bits x seeds. Settings come from --config (YAML) "
        "and/or flags; flags override the file.",
    )
    p.add_argument("--config", default=None, help="YAML file of benchmark settings")
    p.add_argument("--dataset", default=None, help="dataset name (default mnist5k)")
    p.add_argument("--protocol", default=None, help="retrieval protocol (default: default)")
    p.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    p.add_argument(
        "--features",
        default=None,
        help="feature extractor for shallow methods (pixels, hog, gist); default pixels",
    )
    p.add_argument(
        "--methods",
        default=None,
        help="comma-separated hashers, or 'shallow' (default) or 'all'",
    )
    p.add_argument(
        "--bits", default=None, help="comma-separated code lengths (default 8,12,16,32,64)"
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="number of seeds (0..n-1): split and hasher seeds (default 3)",
    )
    p.add_argument(
        "--param",
        type=_parse_param,
        action="append",
        metavar="METHOD.KEY=VALUE",
        help="hasher parameter, e.g. --param dsh.epochs=10; deep.KEY=VALUE sets it for every deep method (repeatable)",
    )
    p.add_argument(
        "--grid",
        type=_parse_grid,
        action="append",
        metavar="METHOD.KEY=V1,V2,...",
        help="values of a parameter to choose from on the validation part, per seed and code "
        "length, e.g. --grid ksh.n_anchors=100,300 (repeatable)",
    )
    p.add_argument(
        "--select-by",
        default=None,
        help="validation metric that chooses among a grid: mAP, mAP@k, P@k, R@k, NDCG@k "
        "(default: mAP)",
    )
    p.add_argument(
        "--baselines",
        default=None,
        help="exact search on the features as reference rows: euclidean, cosine or both "
        "(comma-separated)",
    )
    p.add_argument("--ks", default=None, help="cut-offs of P@k and R@k (default 10,100)")
    p.add_argument("--map-at", default=None, help="cut-offs of mAP@k (default 10)")
    p.add_argument("--ndcg-at", default=None, help="cut-offs of NDCG@k (default 10)")
    p.add_argument(
        "--radius", type=int, default=None, help="Hamming radius of P@r and R@r (default 2)"
    )
    p.add_argument(
        "--ties",
        choices=("position", "average"),
        default=None,
        help="order of items at equal distance: database position (default) or tie-averaged",
    )
    p.add_argument(
        "--radius-curve",
        type=int,
        default=None,
        help="largest radius of the hash-table P@10 / query-time curve (default 10, 0: none)",
    )
    p.add_argument("--out", default="benchmark-results", help="folder for the CSV and JSON results")
    p.add_argument(
        "--save-models",
        default=None,
        metavar="DIR",
        help="save every fitted hasher to DIR/LABEL-BITSbits-seedSEED.safetensors (for hashlearn report)",
    )
    p.add_argument(
        "--name",
        default=None,
        help="file name of the results, without suffix (default: benchmark-DATASET-FEATURES)",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser(
        "tune",
        help="choose a method's parameters on the validation part, then test the choice once",
        description="Fit the method once per combination of --grid on the train part, score each "
        "by retrieval of the validation part (as queries) against the train part, keep the best, "
        "and only then measure it on the query set against the database.",
    )
    p.add_argument("--method", required=True, help="hasher name (see `hashlearn list`)")
    p.add_argument("--bits", type=int, default=32, help="code length (default: 32)")
    p.add_argument(
        "--grid",
        type=_parse_grid,
        action="append",
        required=True,
        metavar="KEY=V1,V2,...",
        help="values to try, e.g. --grid n_anchors=100,300,1000 or --grid 'alpha=[0.1, 1]' "
        "(repeatable: every combination is fitted)",
    )
    p.add_argument(
        "--param",
        type=_parse_param,
        action="append",
        metavar="KEY=VALUE",
        help="parameter shared by every fit, e.g. --param epochs=20 (repeatable)",
    )
    p.add_argument(
        "--metric",
        default="mAP",
        help="selection metric: mAP, mAP@k, P@k, R@k or NDCG@k (default: mAP)",
    )
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--protocol", default="default", help="retrieval protocol (hashlearn list)")
    p.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    p.add_argument(
        "--features",
        default="pixels",
        help="feature extractor of shallow methods, e.g. hog or gist+l2-center (default: pixels)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split and of every fit")
    p.add_argument(
        "--n-validation",
        type=_count_or_fraction,
        default=None,
        help="validation size carved from train: a count, or a fraction < 1 (protocol default)",
    )
    p.add_argument("--save-model", default=None, help="write the chosen model here (.safetensors)")
    p.add_argument("--out", default=None, help="write the trials and test figures here (.json)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser(
        "report", help="self-contained HTML report of benchmark results (and of a model's codes)"
    )
    p.add_argument("--results", required=True, help="results JSON written by `hashlearn benchmark`")
    p.add_argument(
        "--model", default=None, help="model file to show: t-SNE, class codes, retrievals"
    )
    p.add_argument(
        "--dataset", default=None, help="dataset the model is shown on (default: the results')"
    )
    p.add_argument(
        "--protocol",
        default=None,
        help="protocol that splits the dataset for the model's pictures (default: the results')",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split and of the sampling")
    p.add_argument(
        "--features",
        default="pixels",
        help="feature extractor of a shallow model (default: pixels)",
    )
    p.add_argument("--title", default=None, help="page title")
    p.add_argument("--out", required=True, help="HTML file to write; figures go to OUT_STEM_files/")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "serve",
        help="serve a model and an index over HTTP: search API, writes, web page",
        description="Serve POST /search, POST /items, DELETE /items/{id}, GET /items/{id}[/image], "
        "GET /items, GET /stats, GET /health, the OpenAPI schema at /openapi.json and a search "
        "page at /. Writes are durable before they are acknowledged (kept in --data-dir and "
        "replayed over the read-only index file at start). Writes need a bearer token when "
        "--token-file or the HASHLEARN_SERVE_TOKEN environment variable gives one.",
    )
    p.add_argument("--model", required=True, help="model file (.safetensors)")
    p.add_argument("--index", default=None, help="index file (read only; the base of the writes)")
    p.add_argument(
        "--folder",
        default=None,
        help="instead of --index: encode every PNG/JPEG under this folder with the model, index "
        "them (multi-index hashing) and serve them with their pictures",
    )
    p.add_argument(
        "--work-dir",
        default=None,
        help="with --folder: where the codes, index and writes are kept and reused while the "
        "model and the files are unchanged (default: FOLDER.hashlearn next to the folder)",
    )
    p.add_argument(
        "--images",
        default=None,
        help="folder of item images named ID.png / ID.jpg, or the .npz of hashlearn encode "
        "--images (the image of each id)",
    )
    p.add_argument(
        "--labels",
        default=None,
        help="class labels of the indexed items: .npy in the index's order, or .npz with y and ids",
    )
    p.add_argument(
        "--data-dir", default=None, help="folder of the durable writes (default: INDEX.data)"
    )
    p.add_argument(
        "--image-shape",
        default=None,
        help="HxW or HxWxC images of a model fitted on flattened pixel vectors, e.g. 28x28 "
        "(models fitted on image arrays know their shape)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument(
        "--token-file",
        default=None,
        help="file whose first line is the bearer token of writes (default: $HASHLEARN_SERVE_TOKEN)",
    )
    from hashlearn.serve.limits import ServeLimits

    limits = ServeLimits()
    group = p.add_argument_group("limits")
    for flag, kind, text in (
        ("--max-k", int, "largest k of a search"),
        ("--max-radius", int, "largest Hamming radius of a search"),
        ("--max-results", int, "most hits of a radius search (more are cut)"),
        ("--max-body-bytes", int, "largest request body"),
        ("--max-image-bytes", int, "largest image file"),
        ("--max-image-pixels", int, "largest image width x height, checked before decoding"),
        ("--request-timeout", float, "seconds a request may take"),
    ):
        default = getattr(limits, flag[2:].replace("-", "_"))
        group.add_argument(flag, type=kind, default=default, help=f"{text} (default: {default})")
    p.add_argument("--threads", type=int, default=None, help="search threads (default: all cores)")
    p.add_argument("--mmap", action="store_true", help="memory-map the index file")
    p.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="server log level (default: info)",
    )
    p.add_argument("--no-access-log", action="store_true", help="no log line per request")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("list", help="list hashers, datasets and protocols")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "split", help="write a dataset's query/database/train/validation parts as .npz"
    )
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--protocol", default="default", help="retrieval protocol (hashlearn list)")
    p.add_argument("--data-dir", default=None, help="folder holding the dataset files")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_split)

    p = sub.add_parser(
        "fit", help="fit a hasher on an .npz (X, y) or .npy (X) file and save the model"
    )
    p.add_argument("--method", required=True, help="hasher name (see `hashlearn list`)")
    p.add_argument("--bits", type=int, default=32, help="code length (default: 32)")
    p.add_argument("--data", required=True, help=".npz with X and y, or .npy with X")
    p.add_argument("--x-key", default="X")
    p.add_argument("--y-key", default="y")
    p.add_argument("--seed", type=int, default=None, help="random_state of the hasher")
    p.add_argument(
        "--features",
        default=None,
        help="feature extractor fitted first and kept in the model file, which then encodes "
        "images: hog, gist, or with post-processing, e.g. gist+l2-center (shallow methods)",
    )
    p.add_argument(
        "--param",
        type=_parse_param,
        action="append",
        metavar="KEY=VALUE",
        help="hasher parameter, e.g. --param epochs=10 (repeatable; values are JSON)",
    )
    p.add_argument("--out", required=True, help="model file to write (.safetensors)")
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser(
        "encode", help="encode samples with a saved model into packed uint8 codes (.npy)"
    )
    p.add_argument("--model", required=True)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help=".npz (uses X) or .npy")
    source.add_argument(
        "--images",
        metavar="DIR",
        help="folder of PNG/JPEG files (sub-folders too): writes an .npz of codes, ids (the file "
        "names when all are integers, else 0..n-1) and paths, for hashlearn index and serve",
    )
    p.add_argument("--x-key", default="X")
    p.add_argument(
        "--image-shape",
        default=None,
        help="with --images: HxW or HxWxC of a model fitted on flattened pixel vectors",
    )
    p.add_argument(
        "--skip-unreadable",
        action="store_true",
        help="with --images: skip files that do not decode (listed) instead of stopping",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--out",
        required=True,
        help="codes file to write: .npy, or .npz with the code length (always .npz with --images)",
    )
    p.set_defaults(func=cmd_encode)

    from hashlearn.index import describe_indexes

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
    p.add_argument("--type", default="linear", choices=sorted(index_types), help="index type")
    p.add_argument(
        "--param",
        type=_parse_param,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="index parameter, e.g. --param n_substrings=4 (repeatable; values are JSON)",
    )
    bits = p.add_mutually_exclusive_group()
    bits.add_argument("--bits", type=int, default=None, help="code length in bits")
    bits.add_argument("--model", help="take the code length from this model file")
    p.add_argument(
        "--features",
        help=".npy (or .npz with X) of the items' features (images are flattened), kept for "
        "`hashlearn search --rerank` (hash-table and multi-table indexes)",
    )
    p.add_argument("--out", required=True, help="index file to write")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser(
        "search", help="search an index with query codes (k nearest, or all within a radius)"
    )
    p.add_argument("--index", required=True)
    p.add_argument("--queries", required=True, help=".npy of packed uint8 query codes")
    group = p.add_mutually_exclusive_group()
    group.add_argument("-k", type=int, default=10, help="neighbours per query (default: 10)")
    group.add_argument("--radius", type=int, help="return every item within this Hamming distance")
    p.add_argument("--threads", type=int, default=None, help="search threads (default: all cores)")
    p.add_argument(
        "--mmap", action="store_true", help="memory-map the index file instead of reading it"
    )
    p.add_argument(
        "--rerank",
        metavar="QUERY_FEATURES",
        help=".npy (or .npz with X) of the queries' features: re-rank the candidates by feature "
        "distance to the items' stored features (`hashlearn index --features`), k best",
    )
    p.add_argument(
        "--metric",
        choices=("cosine", "l2"),
        default="cosine",
        help="feature distance of --rerank (default: cosine)",
    )
    p.add_argument(
        "--probe-radius",
        type=int,
        default=None,
        help="candidates of --rerank: items within this Hamming distance (hash-table, default 2) "
        "or keys within it in each table (multi-table, default 0)",
    )
    p.add_argument("--show", type=int, default=5, help="queries to print (default: 5)")
    p.add_argument("--out", help="write distances and ids to this .npz")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser(
        "info",
        help="what a model, index or codes file holds (checked: checksums, format versions)",
    )
    p.add_argument("files", nargs="+", help=".safetensors model, index file, .npy or .npz")
    p.set_defaults(func=cmd_info)

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
    p.add_argument(
        "--bits", type=int, default=None, help="code length (default: the .npz's, or 8 x bytes)"
    )
    p.add_argument(
        "--radius", type=int, default=2, help="largest Hamming distance of a pair (default: 2)"
    )
    p.add_argument(
        "--index",
        default="mih",
        choices=("mih", "linear", "hash-table"),
        help="exact index that answers the self-join (default: mih)",
    )
    p.add_argument("--show", type=int, default=5, help="groups to print (default: 5)")
    p.add_argument("--out", default=None, help="CSV of the groups: group, size, id, path")
    p.add_argument("--pairs", default=None, help="CSV of the pairs: first, second, distance")
    p.set_defaults(func=cmd_dedup)

    p = sub.add_parser("evaluate", help="retrieval metrics of query codes against database codes")
    p.add_argument("--query-codes", required=True)
    p.add_argument("--query-labels", required=True, help=".npz with y, or .npy")
    p.add_argument("--db-codes", required=True)
    p.add_argument("--db-labels", required=True, help=".npz with y, or .npy")
    p.add_argument(
        "-k", type=int, nargs="+", default=[10], help="cut-offs for P@k, R@k, mAP@k and NDCG@k"
    )
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # a reader that has gone shows here, not at interpreter exit
        return status
    except BrokenPipeError:  # e.g. `hashlearn info ... | head`: the reader has gone, not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's last flush does not fail
        return 141  # 128 + SIGPIPE, as a shell reports a process ended by a broken pipe
    except (HashlearnError, OSError) as exc:
        print(f"hashlearn {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
