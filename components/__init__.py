"""Accelergy-compatible component library, primitive estimators and ERT/ART generation.

Main entry point: :func:`resolve` turns arch component instances into a
:class:`ComponentTables` (ERT: pJ per action per instance; ART: um^2 per instance).
"""

from .estimators.base import Estimator, PrimitiveQuery
from .estimators.table import TableEstimator
from .compound import ComponentClass, Library, load_library, read_library_file
from .resolve import ComponentInstance, Resolver, builtin_estimators, instances_from_arch, resolve
from .tables import ComponentTables

__all__ = [
    "ComponentClass", "ComponentInstance", "ComponentTables", "Estimator", "Library", "PrimitiveQuery",
    "Resolver", "TableEstimator", "builtin_estimators", "instances_from_arch", "load_library", "read_library_file", "resolve",
]
