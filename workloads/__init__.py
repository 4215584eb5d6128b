"""Workloads: problem shapes (Timeloop problem YAML) and model layer graphs."""

from workloads.problem import (
    INPUTS, OUTPUTS, WEIGHTS, DataSpace, Problem, Term,
    batched_matmul, conv2d, depthwise_conv2d, gemm, load_problem, problem_from_dict,
)
from workloads.graph import KINDS, Layer, LayerGraph, problem_label
from workloads.yamlio import InputError
from workloads.zoo import build_graph, known_models, model_entry

__all__ = [
    "INPUTS", "KINDS", "OUTPUTS", "WEIGHTS", "DataSpace", "InputError", "Layer", "LayerGraph", "Problem", "Term",
    "build_graph", "known_models", "model_entry", "problem_label",
    "batched_matmul", "conv2d", "depthwise_conv2d", "gemm", "load_problem", "problem_from_dict",
]
