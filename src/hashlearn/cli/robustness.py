"""``hashlearn robustness``: how well a model finds edited copies of a folder's photos."""

from __future__ import annotations

import argparse
from typing import Any

from hashlearn.cli._args import add_quiet, image_shape, require_files, require_folder
from hashlearn.encoding import DEFAULT_TRANSFORMS, TRANSFORMS, measure_robustness
from hashlearn.hashers import load_hasher

__all__ = ["cmd_robustness", "register"]


def register(sub: Any) -> None:
    """Add ``robustness`` to the sub-commands ``sub``."""
    _register_robustness(sub)


def _transforms(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in TRANSFORMS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown transform(s) {', '.join(unknown) or '(none)'}; choose from "
            f"{', '.join(TRANSFORMS)}"
        )
    return names


def _register_robustness(sub: Any) -> None:
    described = "; ".join(f"{name}: {text}" for name, (_, text) in TRANSFORMS.items())
    p = sub.add_parser(
        "robustness",
        help="near-duplicate robustness: edited copies of photos searched among the originals",
        description="Make one copy of every photo per transform, encode originals and copies "
        "with the model, search each copy among all the originals' codes, and print per "
        "transform the share of copies within --radius of their original, the share whose "
        "original is the nearest (top1), the original's rank (ties counted half) and the "
        "mean number of other originals within the radius. Transforms: " + described + ".",
    )
    p.add_argument("--model", required=True, help="model file (.safetensors) that takes images")
    p.add_argument("--images", required=True, metavar="DIR", help="folder of PNG / JPEG photos")
    p.add_argument("--radius", type=int, default=2, help="Hamming radius (default: 2)")
    p.add_argument(
        "--transforms",
        type=_transforms,
        default=list(DEFAULT_TRANSFORMS),
        metavar="T1,T2",
        help=f"comma list of transforms (default: {','.join(DEFAULT_TRANSFORMS)})",
    )
    p.add_argument(
        "--flip-invariant",
        action="store_true",
        help="also encode every copy mirrored and keep the nearer distance",
    )
    p.add_argument(
        "--image-shape",
        default=None,
        metavar="HxW[xC]",
        help="input image shape of a model fitted on flattened pixels",
    )
    p.add_argument(
        "--out",
        metavar="FILE",
        help="also write the table (.csv) or everything, per photo too (.json, for the report)",
    )
    add_quiet(p)
    p.set_defaults(func=cmd_robustness)


def cmd_robustness(args: argparse.Namespace) -> int:
    """``hashlearn robustness``: the table of near-duplicate robustness per transform."""
    require_files(args.model)
    require_folder(args.images)
    model = load_hasher(args.model)
    result = measure_robustness(
        model,
        args.images,
        transforms=args.transforms,
        radius=args.radius,
        flip_invariant=args.flip_invariant,
        image_shape=image_shape(args.image_shape),
        verbose=not args.quiet,
    )
    flip = ", flip-invariant" if result.flip_invariant else ""
    print(
        f"{len(result.names)} photos of {args.images}, {result.n_bits}-bit codes, "
        f"radius {result.radius}{flip}"
    )
    print(result.table())
    if args.out:
        print(f"-> {result.write(args.out)}")
    return 0
