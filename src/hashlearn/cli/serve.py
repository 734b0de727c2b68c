"""``hashlearn serve``: a model and an index (or a folder of pictures) served over HTTP."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from hashlearn._validation import check_float, check_int
from hashlearn.cli._args import (
    add_deprecated_alias,
    add_quiet,
    add_threads,
    apply_threads,
    deprecated,
    image_shape,
    require_files,
    require_folder,
)
from hashlearn.encoding import default_work_dir, prepare_folder
from hashlearn.exceptions import InvalidInputError
from hashlearn.serve import ServeLimits, open_service, require_web_dependencies
from hashlearn.serve.connections import DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS
from hashlearn.serve.limits import check_write_access, load_token
from hashlearn.serve.loading import default_data_dir
from hashlearn.serve.store import check_folder_free

__all__ = ["cmd_serve", "register"]

_LIMITS = (
    ("max_k", int, "largest k of a search"),
    ("max_radius", int, "largest Hamming radius of a search"),
    ("max_results", int, "most hits of a radius search (more are cut)"),
    ("max_body_bytes", int, "largest request body"),
    ("max_image_bytes", int, "largest image file"),
    ("max_image_pixels", int, "largest image width x height, checked before decoding"),
    ("request_timeout", float, "seconds a request may take"),
    ("max_decode_bytes", int, "bytes image decodes may hold at once, estimated from headers"),
    ("decode_wait", float, "seconds an image decode waits for room before a 503"),
)
"""The fields of :class:`~hashlearn.serve.ServeLimits` set by options (``max_k``: ``--max-k``)."""


def register(sub: Any) -> None:
    """Add ``serve`` to the sub-commands ``sub``."""
    p = sub.add_parser(
        "serve",
        help="serve a model and an index over HTTP: search API, writes, web page",
        description="Serve POST /search, POST /items, DELETE /items/{id}, GET /items/{id}[/image], "
        "GET /items, GET /stats, GET /health, the OpenAPI schema at /openapi.json and a search "
        "page at /. Writes are durable before they are acknowledged (kept in --store and "
        "replayed over the read-only index file at start). Writes need a bearer token when "
        "--token-file or the HASHLEARN_SERVE_TOKEN environment variable gives one.",
    )
    p.add_argument("--model", required=True, help="model file (.safetensors)")
    p.add_argument("--index", default=None, help="index file (read only; the base of the writes)")
    p.add_argument(
        "--images",
        metavar="DIR",
        default=None,
        help="instead of --index: encode every PNG/JPEG under this folder with the model, index "
        "them (multi-index hashing) and serve them with their pictures",
    )
    add_deprecated_alias(p, "--folder", "--images", dest="folder")
    p.add_argument(
        "--work-dir",
        default=None,
        help="with --images: where the codes, index and writes are kept and reused while the "
        "model and the files are unchanged (default: DIR.hashlearn next to the folder)",
    )
    p.add_argument(
        "--item-images",
        metavar="PATH",
        default=None,
        help="with --index: folder of item images named ID.png / ID.jpg, or the .npz of "
        "hashlearn encode --images (the image of each id)",
    )
    p.add_argument(
        "--labels",
        default=None,
        help="class labels of the indexed items: .npy in the index's order, or .npz with y and ids",
    )
    p.add_argument(
        "--store",
        metavar="DIR",
        default=None,
        help="folder of the durable writes (default: INDEX.data)",
    )
    add_deprecated_alias(p, "--data-dir", "--store")
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
    access = p.add_argument_group("access")
    access.add_argument(
        "--allowed-host",
        metavar="NAME",
        action="append",
        default=[],
        help="a host name the service answers to (repeat for more); IP addresses and localhost "
        "always are, any other Host gets 421 (DNS rebinding); '*' answers any",
    )
    access.add_argument(
        "--open-writes",
        action="store_true",
        help="allow writes without a token when --host is not loopback (refused to start "
        "otherwise: anyone who reaches the port could add and delete items)",
    )
    connections = p.add_argument_group("connections")
    connections.add_argument(
        "--header-timeout",
        type=float,
        default=DEFAULT_HEADER_TIMEOUT,
        metavar="SECONDS",
        help="close a connection whose request head has not arrived this long after it opened "
        f"or after its last answer (slow-loris; default: {DEFAULT_HEADER_TIMEOUT:g})",
    )
    connections.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="open connections at most; one more is answered 503 and closed "
        f"(default: {DEFAULT_MAX_CONNECTIONS})",
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
    add_quiet(p)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """``hashlearn serve``: open the service (over an index, or a folder made ready) and serve it."""
    require_web_dependencies()
    apply_threads(args)
    index, images, data_dir, source = _sources(args)
    limits = ServeLimits(**{name: getattr(args, name) for name, _, _ in _LIMITS})
    token = load_token(args.token_file)
    check_write_access(args.host, token, args.open_writes)  # before the slow work below
    check_float(args.header_timeout, "--header-timeout", minimum=0.0, strict_minimum=True)
    check_int(args.max_connections, "--max-connections", minimum=1)
    if data_dir is not None:
        check_folder_free(data_dir)
    elif source is not None:  # before indexing the folder, which may move the old writes aside
        work = default_work_dir(source) if args.work_dir is None else args.work_dir
        check_folder_free(os.path.join(work, "writes"))
    else:
        check_folder_free(default_data_dir(index))
    if source is not None:
        folder = prepare_folder(
            args.model,
            source,
            args.work_dir,
            data_dir=data_dir,
            image_shape=image_shape(args.image_shape),
            resize=args.resize,
            verbose=not args.quiet,
        )
        for name, reason in folder.skipped:
            print(f"skipped {name}: {reason}", file=sys.stderr)
        print(
            f"{'reusing' if folder.reused else 'built'} the codes and index of {source} in "
            f"{folder.work_dir}",
            flush=True,
        )
        if folder.kept_writes is not None:
            print(
                f"the writes made over the previous index are kept in {folder.kept_writes}",
                flush=True,
            )
        index, images, data_dir = folder.index, folder.codes, folder.data_dir
    return _serve(args, index, images, data_dir, limits, token)


def _sources(args: argparse.Namespace) -> tuple[str | None, str | None, str | None, str | None]:
    """``(index, item images, store, folder of pictures to index)`` of the options, checked.

    ``--images DIR`` is the folder to index; before ``--item-images`` it named the pictures of an
    index's items, which it still does beside ``--index`` for this release (with a warning), as
    the old ``--folder`` still names the folder."""
    index, images, folder = args.index, args.item_images, getattr(args, "folder", None)
    if args.images is not None:
        if folder is not None:
            raise InvalidInputError("give the folder of pictures once, with --images DIR")
        if index is not None:
            if images is not None:
                raise InvalidInputError(
                    "--index serves the pictures of --item-images: leave out --images"
                )
            deprecated("--images beside --index", "--item-images")
            images = args.images
        else:
            folder = args.images
    if (index is None) == (folder is None):
        raise InvalidInputError(
            "give --index (a built index) or --images DIR (a folder of pictures to index)"
        )
    if folder is not None and images is not None:
        raise InvalidInputError("--images DIR shows its own pictures: leave out --item-images")
    require_files(args.model, index, args.labels, args.token_file)
    require_folder(folder)
    if images is not None and not os.path.exists(images):
        raise InvalidInputError(f"{images}: no such folder or file")
    return index, images, args.store, folder


def _serve(
    args: argparse.Namespace,
    index: str | None,
    images: str | None,
    data_dir: str | None,
    limits: ServeLimits,
    token: str | None,
) -> int:
    """Open the service over ``index`` and serve it until stopped."""
    from hashlearn.serve import run_server  # imports FastAPI, so only when serving

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
            allowed_hosts=args.allowed_host,
            open_writes=args.open_writes,
            header_timeout=args.header_timeout,
            max_connections=args.max_connections,
            log_level=args.log_level,
            access_log=not args.no_access_log,
        )
    finally:
        service.close()
    return 0
