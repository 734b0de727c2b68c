"""``hashlearn serve``: a model and an index (or a folder of pictures) served over HTTP."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hashlearn.cli._args import add_threads, apply_threads, image_shape
from hashlearn.encoding import prepare_folder
from hashlearn.exceptions import InvalidInputError
from hashlearn.serve import ServeLimits, open_service, require_web_dependencies
from hashlearn.serve.limits import load_token

__all__ = ["cmd_serve", "register"]

_LIMITS = (
    ("max_k", int, "largest k of a search"),
    ("max_radius", int, "largest Hamming radius of a search"),
    ("max_results", int, "most hits of a radius search (more are cut)"),
    ("max_body_bytes", int, "largest request body"),
    ("max_image_bytes", int, "largest image file"),
    ("max_image_pixels", int, "largest image width x height, checked before decoding"),
    ("request_timeout", float, "seconds a request may take"),
)
"""The fields of :class:`~hashlearn.serve.ServeLimits` set by options (``max_k``: ``--max-k``)."""


def register(sub: Any) -> None:
    """Add ``serve`` to the sub-commands ``sub``."""
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
    p.add_argument(
        "--resize",
        action="store_const",
        const=True,
        default=None,
        help="resize pictures of another size (and make colour grey for a grey model) instead of "
        "refusing them (default: as the model was fitted)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument(
        "--token-file",
        default=None,
        help="file whose first line is the bearer token of writes (default: $HASHLEARN_SERVE_TOKEN)",
    )
    defaults = ServeLimits()
    group = p.add_argument_group("limits")
    for name, kind, text in _LIMITS:
        default = getattr(defaults, name)
        group.add_argument(
            "--" + name.replace("_", "-"),
            type=kind,
            default=default,
            help=f"{text} (default: {default})",
        )
    add_threads(p)
    p.add_argument("--mmap", action="store_true", help="memory-map the index file")
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="with a shard manifest as --index (hashlearn index --shards): the Ray cluster "
        "holding the shards (HOST:PORT, auto, or local: one on this machine, the default)",
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="server log level (default: info)",
    )
    p.add_argument("--no-access-log", action="store_true", help="no log line per request")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """``hashlearn serve``: open the service (over an index, or a folder made ready) and serve it."""
    from hashlearn.serve import run_server  # imports FastAPI, so only when serving

    require_web_dependencies()
    apply_threads(args)
    limits = ServeLimits(**{name: getattr(args, name) for name, _, _ in _LIMITS})
    token = load_token(args.token_file)
    index, images, data_dir = args.index, args.images, args.data_dir
    if (index is None) == (args.folder is None):
        raise InvalidInputError("give --index (a built index) or --folder (images to index)")
    if args.folder is not None:
        if images is not None:
            raise InvalidInputError("--folder shows its own images: leave out --images")
        folder = prepare_folder(
            args.model,
            args.folder,
            args.work_dir,
            data_dir=data_dir,
            image_shape=image_shape(args.image_shape),
            resize=args.resize,
        )
        for name, reason in folder.skipped:
            print(f"skipped {name}: {reason}", file=sys.stderr)
        print(
            f"{'reusing' if folder.reused else 'built'} the codes and index of {args.folder} in "
            f"{folder.work_dir}",
            flush=True,
        )
        if folder.kept_writes is not None:
            print(
                f"the writes made over the previous index are kept in {folder.kept_writes}",
                flush=True,
            )
        index, images, data_dir = folder.index, folder.codes, folder.data_dir
    service = open_service(
        args.model,
        index,
        data_dir=data_dir,
        images_dir=images,
        labels=args.labels,
        image_shape=image_shape(args.image_shape),
        resize=args.resize,
        limits=limits,
        mmap=args.mmap,
        ray_address=args.ray,
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
