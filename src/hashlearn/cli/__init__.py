"""The ``hashlearn`` command: thin argument parsing over the library (no logic of its own).

One module per group of verbs, each adding its verbs' parsers beside the functions that run
them: :mod:`~hashlearn.cli.demo` (demo), :mod:`~hashlearn.cli.experiments` (benchmark, tune,
report), :mod:`~hashlearn.cli.serve` (serve), :mod:`~hashlearn.cli.data` (list, split),
:mod:`~hashlearn.cli.models` (fit, encode), :mod:`~hashlearn.cli.search` (index, search) and
:mod:`~hashlearn.cli.analysis` (info, dedup, evaluate) and :mod:`~hashlearn.cli.robustness`
(robustness); :mod:`~hashlearn.cli.main` wires them. Flags mean one thing everywhere
(``--data`` an array file, ``--images`` a folder of pictures to code, ``--index`` an index file,
``--index-type`` its kind...); renamed flags keep their old names as deprecated aliases
(:func:`~hashlearn.cli._args.add_deprecated_alias`).
"""

from hashlearn.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
