"""Ray, imported when first needed: the ``ray`` extra is optional, and importing it takes seconds."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from hashlearn.exceptions import HashlearnError, InvalidInputError

__all__ = ["connect", "import_ray", "worker_error"]


def import_ray() -> ModuleType:
    """The ``ray`` module.

    Raises
    ------
    HashlearnError
        Ray is not installed; the message says how to install it.
    """
    try:
        import ray
    except ImportError:
        raise HashlearnError("distributed work needs Ray: pip install 'hashlearn[ray]'") from None
    return ray


def connect(address: str | None = "local") -> ModuleType:
    """Join a Ray cluster (or start a local one), unless this process is already connected.

    Parameters
    ----------
    address : str or None
        ``"local"``: start a Ray instance on this machine for this process; ``"auto"``: the
        cluster started on this machine with ``ray start``; ``"HOST:PORT"``: that cluster's head
        (its GCS port). None: the running connection, else as ``"local"``. A process already
        connected keeps its connection, whatever ``address`` says.

    Returns
    -------
    module
        ``ray``, connected.

    Raises
    ------
    HashlearnError
        Ray is not installed.
    InvalidInputError
        The cluster cannot be reached.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray
    options: dict[str, Any] = {
        "address": address or "local",
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": "ERROR",
    }
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise InvalidInputError(
            f"cannot connect to the Ray cluster at {address!r}: {exc}"
        ) from None
    _quiet_data(ray)
    return ray


def _quiet_data(ray: ModuleType) -> None:
    """Ray Data's own progress bars and execution logs off: hashlearn shows its own progress."""
    import logging

    import ray.data

    logging.getLogger("ray.data").setLevel(logging.ERROR)  # no "execution finished" lines
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def worker_error(exc: BaseException) -> HashlearnError | None:
    """The hashlearn error a Ray task or actor raised, when ``exc`` (what ``ray.get`` raised)
    carries one: found in the chain of causes Ray keeps, else read from the last line of its
    message (an actor that failed to start reports only that); None otherwise."""
    import hashlearn.exceptions as exceptions

    seen: set[int] = set()
    current: object = exc
    while isinstance(current, BaseException) and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, HashlearnError) and type(current).__module__.startswith("hashlearn"):
            return type(current)(*current.args)
        current = getattr(current, "cause", None) or current.__cause__
    for line in reversed(str(exc).strip().splitlines()):
        name, sep, message = line.strip().partition(": ")
        kind = getattr(exceptions, name.removeprefix("hashlearn.exceptions."), None)
        if sep and name.startswith("hashlearn.") and isinstance(kind, type):
            if issubclass(kind, HashlearnError):
                return kind(message)
    return None
