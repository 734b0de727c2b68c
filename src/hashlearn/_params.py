"""Constructor parameters of estimators (hashers, feature extractors), scikit-learn style.

An estimator's ``__init__`` stores each keyword argument under its own name and does nothing
else; :class:`Parameters` then reads them back (``get_params``), changes them (``set_params``)
and prints them (``repr``). ``get_params(deep=True)`` also lists the parameters of parameters
that are estimators themselves, as ``outer__inner``, so ``sklearn.base.clone`` and
``set_params(hasher__n_bits=64)`` work as they do on scikit-learn estimators.
"""

from __future__ import annotations

import inspect
from typing import Any

from hashlearn.exceptions import InvalidInputError


class Parameters:
    """``get_params``, ``set_params`` and ``__repr__`` from the ``__init__`` signature."""

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [
            p.name
            for p in signature.parameters.values()
            if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, as stored by ``__init__``; with ``deep``, also those of the
        arguments that are estimators, as ``name__param``."""
        params = {name: getattr(self, name) for name in self._param_names()}
        if deep:
            for name, value in list(params.items()):
                if isinstance(value, Parameters):
                    for inner, inner_value in value.get_params(deep=True).items():
                        params[f"{name}__{inner}"] = inner_value
        return params

    def set_params(self, **params: Any) -> Parameters:
        """Set constructor arguments (``name=value``, or ``name__param=value`` for one of an
        estimator argument); returns ``self``. Learned state is left as it is: refit after.

        Raises
        ------
        InvalidInputError
            A name that is not a parameter (of this estimator, or of the named argument).
        """
        names = self._param_names()
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, _, inner = key.partition("__")
            if name not in names:
                raise InvalidInputError(
                    f"{type(self).__name__} has no parameter {name!r}; its parameters are: "
                    f"{', '.join(names) if names else '(none)'}"
                )
            if inner:
                nested.setdefault(name, {})[inner] = value
            else:
                setattr(self, name, value)
        for name, inner_params in nested.items():
            target = getattr(self, name)
            if not isinstance(target, Parameters):
                raise InvalidInputError(
                    f"{type(self).__name__}.{name} is {target!r}, which has no parameters to set"
                )
            target.set_params(**inner_params)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params(deep=False).items())
        return f"{type(self).__name__}({args})"
