"""Workloads: problem shapes (Timeloop problem YAML) and model layer graphs."""

from workloads.problem import (
    INPUTS, OUTPUTS, WEIGHTS, DataSpace, Problem, Term,
    batched_matmul, conv2d, depthwise_conv2d, gemm, load_problem, problem_from_dict,
)
from workloads.yamlio import InputError

__all__ = [
    "INPUTS", "OUTPUTS", "WEIGHTS", "DataSpace", "InputError", "Problem", "Term",
    "batched_matmul", "conv2d", "depthwise_conv2d", "gemm", "load_problem", "problem_from_dict",
]
