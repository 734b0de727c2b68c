"""One registry type for everything hashlearn builds by name.

Hashers, feature extractors, datasets, evaluation protocols, index types, backbones, losses and
regularisers are each a :class:`Registry`: a table of ``name -> (target, one-line description)``
filled by one ``register`` line per entry in the registry's own module. A target is either the
object itself or the string ``"package.module:attribute"``, imported on first use, so listing
names never imports a heavy dependency (``import hashlearn`` stays free of torch).

Every ``list_*()`` function of the package returns :meth:`Registry.names` (a sorted list of
str); every ``describe_*()`` returns :meth:`Registry.describe` (a dict of name -> description).
Names are what users type and what saved files record.

>>> from hashlearn._registry import Registry
>>> shapes = Registry("shape")
>>> shapes.register("square", "builtins:dict", "a dict standing in for a square")
>>> shapes.names(), shapes.get("square") is dict
(['square'], True)
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from hashlearn.exceptions import UnknownNameError

__all__ = ["Registry"]

T = TypeVar("T")


@dataclass(frozen=True)
class _Entry:
    target: Any  # the object, or "module:attribute" to import on first use
    description: str


class Registry(Generic[T]):
    """Names -> objects (usually classes or factories), imported lazily.

    Parameters
    ----------
    kind : str
        What the entries are, as error messages say it ("hasher", "index type", "loss").
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, _Entry] = {}
        self._aliases: dict[str, str] = {}
        self._loaded: dict[str, T] = {}
        self._lock = threading.Lock()

    def register(self, name: str, target: Any, description: str) -> None:
        """Add ``name``; ``target`` is the object or ``"module:attribute"`` (imported on first get)."""
        if not isinstance(name, str) or not name or name != name.strip():
            raise ValueError(f"a {self.kind} name must be a non-empty str, got {name!r}")
        if name in self._entries or name in self._aliases:
            raise ValueError(f"{self.kind} {name!r} is registered already")
        if isinstance(target, str) and target.count(":") != 1:
            raise ValueError(f"a lazy target is 'module:attribute', got {target!r}")
        if not isinstance(description, str) or not description or "\n" in description:
            raise ValueError(f"{self.kind} {name!r} needs a one-line description")
        self._entries[name] = _Entry(target, description)

    def alias(self, old: str, name: str) -> None:
        """Let ``old`` (a name that saved files may still hold) resolve to ``name``; not listed."""
        if name not in self._entries:
            raise ValueError(f"cannot alias {old!r} to unregistered {self.kind} {name!r}")
        if old in self._entries or old in self._aliases:
            raise ValueError(f"{self.kind} {old!r} is registered already")
        self._aliases[old] = name

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._entries or name in self._aliases)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def names(self, pattern: str | None = None) -> list[str]:
        """Registered names, sorted; only those matching the shell-style ``pattern`` if given."""
        names = sorted(self._entries)
        return names if pattern is None else [n for n in names if fnmatch.fnmatchcase(n, pattern)]

    def describe(self, pattern: str | None = None) -> dict[str, str]:
        """``{name: one-line description}`` in name order."""
        return {name: self._entries[name].description for name in self.names(pattern)}

    def canonical(self, name: Any) -> str:
        """The registered name ``name`` stands for (itself, or what an alias points to)."""
        if isinstance(name, str):
            if name in self._entries:
                return name
            if name in self._aliases:
                return self._aliases[name]
        raise UnknownNameError(self._unknown_message(name))

    def get(self, name: Any) -> T:
        """The object registered under ``name`` (imported now if it was registered lazily)."""
        name = self.canonical(name)
        loaded = self._loaded.get(name)
        if loaded is not None:
            return loaded
        target = self._entries[name].target
        if isinstance(target, str):
            module_name, attribute = target.split(":")
            target = getattr(importlib.import_module(module_name), attribute)
        with self._lock:
            self._loaded[name] = target
        return target

    def create(self, name: Any, *args: Any, **params: Any) -> Any:
        """``get(name)(*args, **params)``."""
        return self.get(name)(*args, **params)

    def name_of(self, target: Any) -> str:
        """The registered name of ``target`` (an object some entry resolves to)."""
        for name in self.names():
            if self.get(name) is target:
                return name
        raise UnknownNameError(f"{target!r} is not a registered {self.kind}")

    def _unknown_message(self, name: Any) -> str:
        known = self.names()
        message = f"unknown {self.kind} {name!r}; available: {', '.join(known)}"
        if isinstance(name, str):
            close = difflib.get_close_matches(name, known, n=1)
            if close:
                message += f" (did you mean {close[0]!r}?)"
        return message
