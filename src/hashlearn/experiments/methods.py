"""Which methods a benchmark runs, and their settings given as ``METHOD.KEY=VALUE`` flags.

:func:`expand_methods` turns groups (``"all"``, ``"shallow"``) into hasher names from the
registry; :func:`method_params_from` and :func:`method_grids_from` turn ``METHOD.KEY`` settings
(``deep.KEY`` for every deep method) into per-method parameters and grids for
:func:`hashlearn.experiments.benchmark_config`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hashlearn.exceptions import InvalidInputError
from hashlearn.hashers import get_hasher_class, list_hashers

__all__ = ["deep_methods", "expand_methods", "method_grids_from", "method_params_from"]


def deep_methods(methods: Sequence[str]) -> list[str]:
    """The deep methods among ``methods``, in their order: those whose hasher class reads images
    (``input_kind == "images"``). Raises UnknownNameError for an unknown name."""
    return [m for m in methods if get_hasher_class(m).input_kind == "images"]


def expand_methods(methods: str | Sequence[str]) -> list[str]:
    """Method names from a group name (``"all"``, ``"shallow"``), a comma-separated string, or a
    list.

    ``"all"``: every registered hasher; ``"shallow"``: those of feature vectors (their class's
    ``input_kind`` is ``"features"``), both in name order, read from the hasher registry.
    ``"lsh, itq"``: ``["lsh", "itq"]`` (empty items dropped). A list is returned as a list.

    >>> expand_methods("lsh,itq")
    ['lsh', 'itq']
    """
    if not isinstance(methods, str):
        return list(methods)
    if methods == "all":
        return list_hashers()
    if methods == "shallow":
        return [m for m in list_hashers() if get_hasher_class(m).input_kind == "features"]
    return [m.strip() for m in methods.split(",") if m.strip()]


def _method_key(key: str, what: str, form: str) -> tuple[str, str]:
    method, dot, name = key.partition(".")
    if not dot:
        raise InvalidInputError(f"{what} takes {form}, got {key!r}")
    return method, name


def method_params_from(
    settings: Iterable[tuple[str, Any]],
    methods: Sequence[str] | None = None,
    *,
    what: str = "a method parameter",
) -> dict[str, dict[str, Any]]:
    """``(METHOD.KEY, value)`` settings as ``method_params`` (``{method: {key: value}}``).

    ``deep.KEY`` sets ``KEY`` of every deep method of ``methods`` (:func:`deep_methods`; none when
    ``methods`` is None). A later setting of the same key wins. ``what`` names the settings in
    the error of a key without a dot (the command line says ``--param``).

    >>> method_params_from([("dsh.epochs", 10), ("lsh.normalize", False)])
    {'dsh': {'epochs': 10}, 'lsh': {'normalize': False}}

    Raises
    ------
    InvalidInputError
        A key is not ``METHOD.KEY``.
    UnknownNameError
        ``methods`` names an unknown hasher (checked once there is a setting).
    """
    params: dict[str, dict[str, Any]] = {}
    deep: list[str] | None = None
    for key, value in settings:
        method, name = _method_key(key, what, "METHOD.KEY=VALUE")
        if deep is None:
            deep = deep_methods(methods or [])
        for target in deep if method == "deep" else [method]:
            params.setdefault(target, {})[name] = value
    return params


def method_grids_from(
    settings: Iterable[tuple[str, Sequence[Any]]], *, what: str = "a method grid"
) -> dict[str, dict[str, list[Any]]]:
    """``(METHOD.KEY, values)`` settings as ``method_grids`` (``{method: {key: [values]}}``);
    the values of a key given twice are joined. ``what`` names the settings in the error of a key
    without a dot (the command line says ``--grid``).

    >>> method_grids_from([("ksh.n_anchors", [100]), ("ksh.n_anchors", [300])])
    {'ksh': {'n_anchors': [100, 300]}}
    """
    grids: dict[str, dict[str, list[Any]]] = {}
    for key, values in settings:
        method, name = _method_key(key, what, "METHOD.KEY=V1,V2,...")
        grids.setdefault(method, {}).setdefault(name, []).extend(values)
    return grids
