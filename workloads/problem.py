"""Timeloop problem shapes: dimensions, coefficients, data spaces with affine projections.

A :class:`Problem` is one layer's operation space (e.g. conv: N, C, M, R, S, P, Q) and
the tensors it touches (Weights, Inputs, Outputs). Each data-space dimension is a sum
of terms ``coefficient * problem_dimension`` as in Timeloop's problem YAML, where a
projection entry ``[[R, Wdilation], [P, Wstride]]`` means ``Wdilation*R + Wstride*P``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from workloads.yamlio import InputError, as_int, as_list, dump_yaml, load_yaml, normalize_keys, require

WEIGHTS, INPUTS, OUTPUTS = "Weights", "Inputs", "Outputs"


@dataclass(frozen=True)
class Term:
    """One term ``coefficient * dim`` of a projection; ``coefficient`` names a problem coefficient or is None (=1)."""

    dim: str
    coefficient: str | None = None


@dataclass(frozen=True)
class DataSpace:
    """A tensor of the problem: one tuple of terms per tensor dimension."""

    name: str
    projection: tuple[tuple[Term, ...], ...]
    read_write: bool = False

    def dims(self) -> frozenset[str]:
        """Problem dimensions that index this data space."""
        return frozenset(t.dim for axis in self.projection for t in axis)


@dataclass(frozen=True)
class Problem:
    """A problem shape plus its instance (bounds and coefficient values).

    Attributes:
        name: shape name (e.g. ``CNN-Layer``, ``GEMM``).
        dims: problem dimension names in declaration order.
        bounds: dimension -> bound (iterations, >= 1).
        coefficients: coefficient name -> integer value (strides, dilations).
        dataspaces: the tensors; exactly one of them should be read-write (Outputs).
    """

    name: str
    dims: tuple[str, ...]
    bounds: Mapping[str, int]
    coefficients: Mapping[str, int] = field(default_factory=dict)
    dataspaces: tuple[DataSpace, ...] = ()

    def __post_init__(self) -> None:
        for d in self.dims:
            if d not in self.bounds:
                raise InputError("<problem>", f"instance.{d}", "missing bound for dimension")
            if int(self.bounds[d]) < 1:
                raise InputError("<problem>", f"instance.{d}", f"expected a bound >= 1, got {self.bounds[d]}")
        for ds in self.dataspaces:
            for axis in ds.projection:
                for term in axis:
                    if term.dim not in self.dims:
                        raise InputError("<problem>", f"data_spaces.{ds.name}", f"unknown dimension {term.dim!r}")
                    if term.coefficient is not None and term.coefficient not in self.coefficients:
                        raise InputError("<problem>", f"data_spaces.{ds.name}", f"unknown coefficient {term.coefficient!r}")

    def __hash__(self) -> int:
        return hash(self.key())

    # ---- queries -------------------------------------------------------------------------
    @property
    def macs(self) -> int:
        """Number of operation-space points (multiply-accumulates)."""
        return math.prod(int(self.bounds[d]) for d in self.dims)

    def dataspace(self, name: str) -> DataSpace:
        """Return the data space called ``name`` (KeyError-free: raises InputError)."""
        for ds in self.dataspaces:
            if ds.name == name:
                return ds
        raise InputError("<problem>", "data_spaces", f"no data space named {name!r}")

    @property
    def dataspace_names(self) -> tuple[str, ...]:
        return tuple(ds.name for ds in self.dataspaces)

    def coefficient(self, term: Term) -> int:
        """Integer value of a term's coefficient (1 when it has none)."""
        return 1 if term.coefficient is None else int(self.coefficients[term.coefficient])

    def axis_extent(self, axis: tuple[Term, ...], extents: Mapping[str, int]) -> int:
        """Extent (points) of one tensor axis over a hyper-rectangle of problem ``extents``."""
        return sum(self.coefficient(t) * (int(extents[t.dim]) - 1) for t in axis) + 1

    def tile_size(self, dataspace: str | DataSpace, extents: Mapping[str, int] | None = None) -> int:
        """Points (elements) of a data space's bounding box for problem ``extents`` (default: full bounds)."""
        ds = self.dataspace(dataspace) if isinstance(dataspace, str) else dataspace
        ext = self.bounds if extents is None else extents
        return math.prod(self.axis_extent(axis, ext) for axis in ds.projection)

    def with_bounds(self, **bounds: int) -> "Problem":
        """A copy with some bounds replaced."""
        merged = dict(self.bounds)
        merged.update(bounds)
        return Problem(self.name, self.dims, merged, dict(self.coefficients), self.dataspaces)

    def key(self) -> tuple:
        """Hashable identity of the shape and instance (used to map identical layers once)."""
        return (
            tuple(self.dims),
            tuple(int(self.bounds[d]) for d in self.dims),
            tuple(sorted((k, int(v)) for k, v in self.coefficients.items())),
            tuple((ds.name, ds.projection, ds.read_write) for ds in self.dataspaces),
        )

    # ---- Timeloop YAML -----------------------------------------------------------------
    def to_yaml_dict(self) -> dict[str, Any]:
        """Timeloop problem YAML (``problem: shape/instance``) as plain data."""
        data_spaces = []
        for ds in self.dataspaces:
            proj = [[[t.dim] if t.coefficient is None else [t.dim, t.coefficient] for t in axis] for axis in ds.projection]
            entry: dict[str, Any] = {"name": ds.name, "projection": proj}
            if ds.read_write:
                entry["read-write"] = True
            data_spaces.append(entry)
        shape: dict[str, Any] = {"name": self.name, "dimensions": list(self.dims)}
        if self.coefficients:
            shape["coefficients"] = [{"name": k, "default": int(v)} for k, v in self.coefficients.items()]
        shape["data-spaces"] = data_spaces
        instance = {d: int(self.bounds[d]) for d in self.dims}
        instance.update({k: int(v) for k, v in self.coefficients.items()})
        return {"problem": {"version": 0.4, "shape": shape, "instance": instance}}

    def to_yaml(self) -> str:
        return dump_yaml(self.to_yaml_dict())


# Timeloop's built-in shape names (problem-shapes/cnn-layer.yaml; workload.cpp ParseWorkload
# assumes cnn_layer when no shape is given); bitloop builds them with conv2d.
_CNN_LAYER_NAMES = ("cnn_layer", "cnn-layer")


def problem_from_dict(data: Any, source: str | os.PathLike = "<problem>") -> Problem:
    """Build a :class:`Problem` from Timeloop problem YAML data (v0.3 or v0.4 layout).

    As Timeloop (``src/workload/workload.cpp`` ``ParseWorkload``/``ParseWorkloadInstance``):
    the bounds sit under ``instance`` or, in the older layout, directly under ``problem``;
    instance keys that are neither dimensions nor coefficients are ignored; a missing shape or
    the shape name ``cnn_layer`` means the CNN-Layer shape.
    """
    data = normalize_keys(data)
    top = require(data, "problem", source, "", dict)
    if "instance" in top:
        instance = require(top, "instance", source, "problem", dict)
        ikey = "problem.instance"
    else:
        instance, ikey = top, "problem"
    raw_shape = top.get("shape", "cnn_layer")
    if isinstance(raw_shape, str):
        if raw_shape.lower() not in _CNN_LAYER_NAMES:
            raise InputError(source, "problem.shape", f"expected a shape mapping or the built-in name cnn_layer, got {raw_shape!r}")
        return _cnn_layer(instance, source, ikey)
    shape = require(top, "shape", source, "problem", dict)
    if "instance" not in top and not any(k in top for k in shape.get("dimensions") or []):
        raise InputError(source, "problem.instance", "missing required key (bounds of the dimensions)")
    name = str(shape.get("name", "problem"))
    dims_raw = require(shape, "dimensions", source, "problem.shape", list)
    dims = []
    for i, d in enumerate(dims_raw):
        if not isinstance(d, str) or not d:
            raise InputError(source, f"problem.shape.dimensions[{i}]", f"expected a dimension name, got {d!r}")
        dims.append(d)
    if len(set(dims)) != len(dims):
        raise InputError(source, "problem.shape.dimensions", "dimension names must be unique")

    coefficients: dict[str, int] = {}
    for i, c in enumerate(as_list(shape.get("coefficients"), source, "problem.shape.coefficients")):
        key = f"problem.shape.coefficients[{i}]"
        cname = require(c, "name", source, key, str)
        coefficients[cname] = as_int(c.get("default", 1), source, f"{key}.default", minimum=1)
    for cname in list(coefficients):
        if cname in instance:
            coefficients[cname] = as_int(instance[cname], source, f"{ikey}.{cname}", minimum=1)

    dataspaces = []
    for i, ds in enumerate(require(shape, "data_spaces", source, "problem.shape", list)):
        key = f"problem.shape.data_spaces[{i}]"
        ds_name = require(ds, "name", source, key, str)
        projection_raw = require(ds, "projection", source, key, list)
        axes = []
        for a, axis in enumerate(projection_raw):
            akey = f"{key}.projection[{a}]"
            # Timeloop allows a bare dimension name for a single-term axis.
            if isinstance(axis, str):
                axis = [[axis]]
            if not isinstance(axis, list) or not axis:
                raise InputError(source, akey, f"expected a list of [dimension] or [dimension, coefficient] terms, got {axis!r}")
            terms = []
            for t, term in enumerate(axis):
                if isinstance(term, str):
                    term = [term]
                if not isinstance(term, list) or not 1 <= len(term) <= 2 or not all(isinstance(x, str) for x in term):
                    raise InputError(source, f"{akey}[{t}]", f"expected [dimension] or [dimension, coefficient], got {term!r}")
                dim, coef = term[0], (term[1] if len(term) == 2 else None)
                # Timeloop accepts [Coefficient, Dim] too; detect the order by name lookup.
                if dim not in dims and coef in dims:
                    dim, coef = coef, dim
                if dim not in dims:
                    raise InputError(source, f"{akey}[{t}]", f"unknown dimension {dim!r} (known: {', '.join(dims)})")
                if coef is not None and coef not in coefficients:
                    raise InputError(source, f"{akey}[{t}]", f"unknown coefficient {coef!r}")
                terms.append(Term(dim, coef))
            axes.append(tuple(terms))
        rw = ds.get("read_write", False)
        if not isinstance(rw, bool):
            raise InputError(source, f"{key}.read_write", f"expected true or false, got {rw!r}")
        dataspaces.append(DataSpace(ds_name, tuple(axes), rw))
    if not dataspaces:
        raise InputError(source, "problem.shape.data_spaces", "expected at least one data space")

    return Problem(name, tuple(dims), _bounds(instance, dims, source, ikey), coefficients, tuple(dataspaces))


def _bounds(instance: dict[str, Any], dims: Any, source: str | os.PathLike, ikey: str) -> dict[str, int]:
    """Each dimension's bound from the instance; other keys are ignored, as Timeloop does."""
    bounds = {}
    for d in dims:
        if d not in instance:
            raise InputError(source, f"{ikey}.{d}", "missing bound for dimension")
        bounds[d] = as_int(instance[d], source, f"{ikey}.{d}", minimum=1)
    return bounds


def _cnn_layer(instance: dict[str, Any], source: str | os.PathLike, ikey: str) -> Problem:
    """Timeloop's built-in CNN-Layer shape with the instance's bounds and coefficients (default 1)."""
    base = conv2d(N=1, C=1, M=1, R=1, S=1, P=1, Q=1)
    coefficients = {c: as_int(instance.get(c, 1), source, f"{ikey}.{c}", minimum=1) for c in base.coefficients}
    return Problem(base.name, base.dims, _bounds(instance, base.dims, source, ikey), coefficients, base.dataspaces)


def load_problem(path: str | os.PathLike) -> Problem:
    """Read a Timeloop problem YAML file."""
    return problem_from_dict(load_yaml(path), path)


# ---- builders --------------------------------------------------------------------------

def gemm(M: int, N: int, K: int, name: str = "GEMM") -> Problem:
    """GEMM ``Outputs[M,N] += Weights[M,K] * Inputs[K,N]`` (weights are the M x K operand)."""
    return Problem(
        name,
        ("M", "N", "K"),
        {"M": M, "N": N, "K": K},
        {},
        (
            DataSpace(WEIGHTS, ((Term("M"),), (Term("K"),))),
            DataSpace(INPUTS, ((Term("K"),), (Term("N"),))),
            DataSpace(OUTPUTS, ((Term("M"),), (Term("N"),)), read_write=True),
        ),
    )


def batched_matmul(B: int, M: int, N: int, K: int, name: str = "BMM") -> Problem:
    """Batched matmul ``Outputs[B,M,N] += Weights[B,M,K] * Inputs[B,K,N]`` (both operands per batch, e.g. attention)."""
    return Problem(
        name,
        ("B", "M", "N", "K"),
        {"B": B, "M": M, "N": N, "K": K},
        {},
        (
            DataSpace(WEIGHTS, ((Term("B"),), (Term("M"),), (Term("K"),))),
            DataSpace(INPUTS, ((Term("B"),), (Term("K"),), (Term("N"),))),
            DataSpace(OUTPUTS, ((Term("B"),), (Term("M"),), (Term("N"),)), read_write=True),
        ),
    )


# Input feature map of a (depthwise) convolution: W = Wdilation*R + Wstride*P, H likewise.
_CONV_INPUTS = DataSpace(
    INPUTS,
    ((Term("N"),), (Term("C"),), (Term("R", "Wdilation"), Term("P", "Wstride")), (Term("S", "Hdilation"), Term("Q", "Hstride"))),
)


def _conv_coefficients(stride: int | tuple[int, int], dilation: int | tuple[int, int]) -> dict[str, int]:
    """Coefficient values from an int or (W, H) stride and dilation."""
    ws, hs = (stride, stride) if isinstance(stride, int) else stride
    wd, hd = (dilation, dilation) if isinstance(dilation, int) else dilation
    return {"Wstride": ws, "Hstride": hs, "Wdilation": wd, "Hdilation": hd}


def conv2d(
    N: int, C: int, M: int, R: int, S: int, P: int, Q: int,
    stride: int | tuple[int, int] = 1, dilation: int | tuple[int, int] = 1, name: str = "CNN-Layer",
) -> Problem:
    """2-D convolution in Timeloop's CNN-Layer shape (W axis: R/P, H axis: S/Q).

    ``stride`` and ``dilation`` are ints or (W, H) pairs. Input width = stride*(P-1) + dilation*(R-1) + 1.
    """
    return Problem(
        name,
        ("C", "M", "R", "S", "N", "P", "Q"),
        {"N": N, "C": C, "M": M, "R": R, "S": S, "P": P, "Q": Q},
        _conv_coefficients(stride, dilation),
        (
            DataSpace(WEIGHTS, ((Term("C"),), (Term("M"),), (Term("R"),), (Term("S"),))),
            _CONV_INPUTS,
            DataSpace(OUTPUTS, ((Term("N"),), (Term("M"),), (Term("P"),), (Term("Q"),)), read_write=True),
        ),
    )


def depthwise_conv2d(
    N: int, C: int, R: int, S: int, P: int, Q: int,
    stride: int | tuple[int, int] = 1, dilation: int | tuple[int, int] = 1, name: str = "DW-Layer",
) -> Problem:
    """Depthwise 2-D convolution: one filter per channel, so channel C indexes all three tensors."""
    return Problem(
        name,
        ("C", "R", "S", "N", "P", "Q"),
        {"N": N, "C": C, "R": R, "S": S, "P": P, "Q": Q},
        _conv_coefficients(stride, dilation),
        (
            DataSpace(WEIGHTS, ((Term("C"),), (Term("R"),), (Term("S"),))),
            _CONV_INPUTS,
            DataSpace(OUTPUTS, ((Term("N"),), (Term("C"),), (Term("P"),), (Term("Q"),)), read_write=True),
        ),
    )
