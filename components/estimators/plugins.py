"""Load user estimator plug-ins from paths the user names (never from anywhere else).

* ``*.csv``: a :class:`~components.estimators.table.TableEstimator`.
* ``*.py``: the module is loaded with ``importlib.util.spec_from_file_location``; every
  class defined in it that has ``energy``, ``area`` and ``accuracy`` members is instantiated
  (no arguments). A module may instead define ``ESTIMATORS`` (a list of instances).
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import os
from pathlib import Path
from typing import Any, Iterable

from workloads.yamlio import InputError

from .table import TableEstimator


def _is_estimator_class(obj: Any, module_name: str) -> bool:
    return (inspect.isclass(obj) and obj.__module__ == module_name
            and all(hasattr(obj, m) for m in ("energy", "area", "accuracy")))


def load_python_estimators(path: str | os.PathLike) -> list[Any]:
    """Instantiate the estimator classes defined in one Python file."""
    p = Path(path).resolve()
    if not p.is_file():
        raise InputError(p, None, "estimator plug-in file not found")
    module_name = "bitloop_user_estimator_" + hashlib.sha1(str(p).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(module_name, p)
    if spec is None or spec.loader is None:
        raise InputError(p, None, "cannot load as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code failed: report it as their input error
        raise InputError(p, None, f"plug-in raised {type(exc).__name__}: {exc}") from exc
    if hasattr(module, "ESTIMATORS"):
        found = list(module.ESTIMATORS)
    else:
        found = [obj() for _, obj in vars(module).items() if _is_estimator_class(obj, module_name)]
    if not found:
        raise InputError(p, None, "no estimator class (with energy, area and accuracy members) found")
    for est in found:
        if not hasattr(est, "name"):
            est.name = f"{type(est).__name__}@{p.name}"
    return found


def load_plugins(paths: Iterable[str | os.PathLike | Any]) -> list[Any]:
    """Estimators from user-named CSV/.py paths; estimator objects are passed through."""
    out: list[Any] = []
    for item in paths:
        if not isinstance(item, (str, os.PathLike)):
            if not all(hasattr(item, m) for m in ("energy", "area", "accuracy")):
                raise InputError("<estimators>", None, f"{item!r} is not an estimator (needs energy, area, accuracy)")
            out.append(item)
            continue
        p = Path(item)
        suffix = p.suffix.lower()
        if suffix == ".csv":
            out.append(TableEstimator(p))
        elif suffix == ".py":
            out.extend(load_python_estimators(p))
        else:
            raise InputError(p, None, "estimator plug-ins must be .csv tables or .py files")
    return out
