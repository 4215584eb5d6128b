"""Workloads: problem shapes (Timeloop problem YAML) and model layer graphs.

Names are imported on first use (PEP 562), so reading YAML or a problem never loads the
layer-graph machinery (networkx) it does not need.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "workloads.problem": ("INPUTS", "OUTPUTS", "WEIGHTS", "DataSpace", "Problem", "Term", "batched_matmul", "conv2d",
                          "depthwise_conv2d", "gemm", "load_problem", "problem_from_dict"),
    "workloads.graph": ("KINDS", "Layer", "LayerGraph", "problem_label"),
    "workloads.yamlio": ("InputError",),
    "workloads.zoo": ("build_graph", "known_models", "model_entry"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'workloads' has no attribute {name!r}")
    return getattr(import_module(_MODULE_OF[name]), name)
