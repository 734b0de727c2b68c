"""``hashlearn``: the parser of every verb, wired from the verb groups, and the run of one verb.

Each group module (:mod:`~hashlearn.cli.demo`, :mod:`~hashlearn.cli.experiments`, ...) adds its
verbs, with their arguments, through ``register(subparsers)``; a verb's ``func`` runs it. Here a
hashlearn error or an OS error becomes one line on stderr and exit status 2, and a reader that
went away (``hashlearn list | head``) exit status 141, without a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import hashlearn.cli.analysis as analysis
import hashlearn.cli.data as data
import hashlearn.cli.demo as demo
import hashlearn.cli.experiments as experiments
import hashlearn.cli.models as models
import hashlearn.cli.robustness as robustness
import hashlearn.cli.search as search
import hashlearn.cli.serve as serve
from hashlearn._version import __version__
from hashlearn.exceptions import HashlearnError

__all__ = ["EPILOG", "GROUPS", "build_parser", "main", "one_line"]

EPILOG = """\
A typical pipeline on arrays stored as .npy/.npz (npz files hold X and y):
  hashlearn split --dataset mnist5k --out data/
  hashlearn fit --method dsh --bits 12 --data data/train.npz --out dsh.safetensors
  hashlearn encode --model dsh.safetensors --data data/database.npz --out db_codes.npy
  hashlearn encode --model dsh.safetensors --data data/query.npz --out q_codes.npy
  hashlearn index --codes db_codes.npy --model dsh.safetensors --out db.hlindex
  hashlearn search --index db.hlindex --queries q_codes.npy -k 10 --out hits.npz
  hashlearn evaluate --query-codes q_codes.npy --query-labels data/query.npz \\
                     --db-codes db_codes.npy --db-labels data/database.npz --ks 10,100
A folder of photos:
  hashlearn encode --model dsh.safetensors --images photos/ --out photos.npz
  hashlearn dedup --codes photos.npz --radius 2 --out groups.csv
  hashlearn serve --model dsh.safetensors --images photos/
Every command that shows progress takes --quiet. Renamed options (the old names still work for
this release, with a warning): index --type -> --index-type, --features -> --item-features;
dedup --index -> --index-type; search --metric -> --rerank-metric; tune --metric -> --select-by;
evaluate -k K... -> --ks K,K; serve --folder -> --images, --images -> --item-images,
--data-dir -> --store.
"""

GROUPS = (demo, experiments, serve, data, models, search, analysis, robustness)
"""The verb groups, in the order ``hashlearn --help`` lists their verbs."""


def build_parser() -> argparse.ArgumentParser:
    """The ``hashlearn`` parser: ``--version`` and one sub-command per verb."""
    parser = argparse.ArgumentParser(
        prog="hashlearn",
        description="Learn binary hash codes for images, index them, search them and measure retrieval.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hashlearn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``hashlearn`` with ``argv`` (default: the command line); returns the exit status."""
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
    except (FileNotFoundError, IsADirectoryError) as exc:  # worded as the file options' checks
        message = str(exc)
        if exc.filename is not None:
            missing = isinstance(exc, FileNotFoundError)
            message = f"{exc.filename}: {'no such file' if missing else 'is a folder, not a file'}"
        print(f"hashlearn {args.command}: error: {one_line(message)}", file=sys.stderr)
        return 2
    except (HashlearnError, OSError) as exc:
        print(f"hashlearn {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2


def one_line(message: str) -> str:
    """``message`` on one line: its lines (a file name or a library's message may hold line
    breaks) joined by ``" / "``, so that an error is always the one line a script reads."""
    return " / ".join(part.strip() for part in message.splitlines() if part.strip())
