"""``hashlearn fit`` and ``encode``: a hasher fitted on arrays and saved; samples or a folder of
pictures encoded with it."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

from hashlearn._io import read_arrays
from hashlearn.cli._args import (
    add_quiet,
    image_shape,
    load_array,
    parse_param,
    require_array_file,
    require_files,
    require_folder,
)
from hashlearn.datasets import load_image_folder
from hashlearn.encoding import encode_image_files, write_codes, write_image_codes
from hashlearn.encoding.files import MAX_DECODE_BYTES
from hashlearn.exceptions import InvalidInputError
from hashlearn.features import create_features
from hashlearn.hashers import FeatureHasher, Hasher, create_hasher, load_hasher

__all__ = ["cmd_encode", "cmd_fit", "register"]


def register(sub: Any) -> None:
    """Add ``fit`` and ``encode`` to the sub-commands ``sub``."""
    _register_fit(sub)
    _register_encode(sub)


def _register_fit(sub: Any) -> None:
    p = sub.add_parser(
        "fit",
        help="fit a hasher on an .npz (X, y) or .npy (X) file, or on a folder of pictures, and "
        "save the model; a deep hasher trains on all processes of `torchrun "
        "--nproc_per_node=N -m hashlearn fit ...`",
    )
    p.add_argument("--method", required=True, help="hasher name (see `hashlearn list`)")
    p.add_argument("--bits", type=int, default=32, help="code length (default: 32)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help=".npz with X (and y for supervised methods), or .npy with X")
    source.add_argument(
        "--images",
        metavar="DIR",
        help="folder of pictures: one sub-folder per class (labels), or pictures only (no "
        "labels: unsupervised methods)",
    )
    p.add_argument("--x-key", default="X")
    p.add_argument("--y-key", default="y")
    p.add_argument(
        "--image-size",
        metavar="HxW",
        help="with --images: resize every picture to this size; the model then resizes the "
        "pictures it encodes too (default: all pictures must have one size)",
    )
    p.add_argument(
        "--color",
        choices=("auto", "grey", "rgb"),
        default="auto",
        help="with --images: grey, rgb, or auto (rgb when any picture has colour; the default)",
    )
    p.add_argument("--seed", type=int, default=None, help="random_state of the hasher")
    p.add_argument(
        "--features",
        default=None,
        help="feature extractor fitted first and kept in the model file, which then encodes "
        "images: hog, gist, or with post-processing, e.g. gist+l2-center (shallow methods)",
    )
    p.add_argument(
        "--param",
        type=parse_param,
        action="append",
        metavar="KEY=VALUE",
        help="hasher parameter, e.g. --param epochs=10 (repeatable; values are JSON)",
    )
    p.add_argument(
        "--log-dir",
        metavar="DIR",
        default=None,
        help="deep methods: TensorBoard event files there (loss, learning rate, validation mAP, "
        "bit balance per epoch; needs the tensorboard extra)",
    )
    p.add_argument("--out", required=True, help="model file to write (.safetensors)")
    add_quiet(p)
    p.set_defaults(func=cmd_fit)


def cmd_fit(args: argparse.Namespace) -> int:
    """``hashlearn fit``: fit a hasher (behind features, if asked) and save it."""
    X, y, source = _training_data(args)
    params = dict(args.param or [])
    if args.seed is not None:
        params["random_state"] = args.seed
    hasher = create_hasher(args.method, n_bits=args.bits, **params)
    if args.quiet and "verbose" in hasher.get_params(deep=False):  # deep training's bar
        hasher.set_params(verbose=False)
    if args.log_dir:
        if "log_dir" not in hasher.get_params(deep=False):
            raise InvalidInputError(
                f"--log-dir logs the training of deep methods; {args.method!r} is not one"
            )
        hasher.set_params(log_dir=args.log_dir)
    if hasher.supervised and y is None:
        raise InvalidInputError(
            f"{args.method!r} is supervised and {source} has no labels: "
            + (
                "put the pictures in one sub-folder per class"
                if args.images
                else f"give an .npz with labels under {args.y_key!r}"
            )
            + ", or choose an unsupervised method (`hashlearn list`)"
        )
    if args.features:
        hasher = FeatureHasher(create_features(args.features), hasher)
    hasher.fit(X, y)
    if args.images and args.image_size:
        hasher.resize_images_ = True  # pictures of other sizes are resized when encoded
    if not _is_main_process():  # torchrun: rank 0 alone saves and reports
        return 0
    hasher.save(args.out)
    labels = "" if y is None else f", {len(np.unique(y, axis=0))} classes"
    print(f"fitted {hasher!r} on {len(X)} samples of {source}{labels} -> {args.out}")
    return 0


def _training_data(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray | None, str]:
    """``(X, y or None, what they came from)`` of ``fit --data`` or ``fit --images``."""
    if args.images:
        require_folder(args.images)
        size = image_shape(args.image_size)
        data = load_image_folder(
            args.images,
            image_size=None if size is None else size[:2],
            color=args.color,
            verbose=not args.quiet,
        )
        return data.X, data.y, repr(args.images)
    if args.image_size or args.color != "auto":
        raise InvalidInputError("--image-size and --color go with --images DIR")
    require_array_file(args.data)
    arrays = read_arrays(args.data, (args.x_key, args.y_key), require=args.x_key)
    X = arrays.get("", arrays.get(args.x_key))
    return X, arrays.get(args.y_key), repr(args.data)


def _is_main_process() -> bool:
    """False in the processes of rank > 0 of a distributed run (``torchrun ... -m hashlearn
    fit``, where deep hashers train one model on all processes); True otherwise."""
    if os.environ.get("WORLD_SIZE", "1") in ("", "1"):
        return True
    from hashlearn.hashers.deep.trainer.distributed import is_main_process

    return is_main_process()


def _register_encode(sub: Any) -> None:
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
    p.add_argument(
        "--resize",
        action="store_const",
        const=True,
        default=None,
        help="with --images: resize pictures of another size, and convert grey or colour, to the "
        "model's input (default: as the model was fitted; otherwise such pictures are refused)",
    )
    p.add_argument(
        "--max-decode-bytes",
        type=int,
        default=MAX_DECODE_BYTES,
        help="with --images: bytes the decoding threads (of each worker, with --ray) may hold at "
        "once, known from each file's header; a picture that alone needs more is refused "
        f"(default: {MAX_DECODE_BYTES:,})",
    )
    add_quiet(p)
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="with --images: encode on a Ray cluster (HOST:PORT, auto, or local for one on this "
        "machine) in resumable shards; --out is then a folder (shards/, codes.npz)",
    )
    p.add_argument(
        "--shard-size", type=int, default=1024, help="with --ray: files per shard (default: 1024)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="with --ray: workers holding the model (default: one per GPU, else per CPU)",
    )
    p.add_argument(
        "--out",
        required=True,
        help="codes file to write: .npy, or .npz with the code length (always .npz with --images; "
        "a folder with --ray)",
    )
    p.set_defaults(func=cmd_encode)


def cmd_encode(args: argparse.Namespace) -> int:
    """``hashlearn encode``: codes of an array file, or of a folder of pictures."""
    require_files(args.model, args.data)
    require_folder(args.images)
    if args.ray:
        return _encode_on_ray(args)
    hasher = load_hasher(args.model)
    if args.images:
        return _encode_images(hasher, args)
    codes = hasher.encode(load_array(args.data, args.x_key))
    write_codes(args.out, codes, hasher.n_bits)
    print(f"{len(codes)} codes of {hasher.n_bits} bits ({codes.shape[1]} bytes each) -> {args.out}")
    return 0


def _encode_on_ray(args: argparse.Namespace) -> int:
    """``hashlearn encode --images DIR --ray ADDRESS --out OUTDIR``: the folder's codes, encoded
    on a Ray cluster in shards."""
    from hashlearn.distributed import encode_files

    if not args.images:
        raise InvalidInputError("--ray encodes a folder of pictures: give --images DIR")
    done = encode_files(
        args.model,
        args.images,
        args.out,
        address=args.ray,
        image_shape=image_shape(args.image_shape),
        shard_size=args.shard_size,
        n_workers=args.workers,
        skip_unreadable=args.skip_unreadable,
        resize=args.resize,
        verbose=not args.quiet,
        max_decode_bytes=args.max_decode_bytes,
    )
    result = done.result
    for name, reason in result.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    named = "ids from the file names" if result.named else "ids 0..n-1 in path order"
    print(
        f"{len(result.codes)} images of {args.images} -> {len(result.codes)} codes of "
        f"{result.n_bits} bits, {named}, in {done.n_shards} shards ({done.reused} kept from "
        "an earlier run)"
        + (f", {len(result.skipped)} unreadable files skipped" if result.skipped else "")
        + f" -> {done.codes_path}"
    )
    return 0


def _encode_images(hasher: Hasher, args: argparse.Namespace) -> int:
    """``hashlearn encode --images DIR``: codes, ids and paths of the folder's files in an .npz."""
    if not args.out.endswith(".npz"):
        raise InvalidInputError(
            f"--images writes codes, ids and paths together: give an .npz --out, not {args.out!r}"
        )
    result = encode_image_files(
        hasher,
        args.images,
        image_shape=image_shape(args.image_shape),
        skip_unreadable=args.skip_unreadable,
        resize=args.resize,
        verbose=not args.quiet,
        max_decode_bytes=args.max_decode_bytes,
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
