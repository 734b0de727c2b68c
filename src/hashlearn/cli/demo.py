"""``hashlearn demo``: fit, index, search and measure on real digits, or serve the search page."""

from __future__ import annotations

import argparse
from typing import Any

from hashlearn.cli._args import add_quiet
from hashlearn.experiments.demo import demo_method_params, format_demo, run_demo, save_demo
from hashlearn.serve import open_service, require_web_dependencies
from hashlearn.serve.demo import prepare_demo

__all__ = ["cmd_demo", "register"]


def register(sub: Any) -> None:
    """Add ``demo`` to the sub-commands ``sub``."""
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
    add_quiet(p)
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


def cmd_demo(args: argparse.Namespace) -> int:
    """``hashlearn demo``: the demo's table and report, or (``--serve``) its search page."""
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.serve:
        return _serve_demo(args, methods)
    params = demo_method_params(methods, epochs=args.epochs, patience=args.patience)
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
        files = save_demo(result, args.out, verbose=not args.quiet)
        print(f"\nresults -> {files.csv}, {files.json}")
        print(
            f"report  -> {files.report} (open it in a browser; pictures of {files.method}'s codes "
            "and retrievals)"
        )
    return 0


def _serve_demo(args: argparse.Namespace, methods: list[str]) -> int:
    """``hashlearn demo --serve``: prepare the demo folder and serve its search page."""
    from hashlearn.serve import run_server  # imports FastAPI, so only when serving

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
