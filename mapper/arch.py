"""Timeloop architectures: storage levels (outer to inner) and the compute level.

Reads both Timeloop forms into one :class:`Arch`:

* v0.3: nested ``subtree``/``local`` lists, ``name[0..N-1]`` instance counts, ``meshX``
  attributes; components in a ``local`` list are ordered outer to inner.
* v0.4: a flat ``nodes`` list of ``!Container`` and ``!Component`` entries (``!Parallel``,
  ``!Hierarchical`` and ``!Pipelined`` branches are flattened in order, as timeloopfe does),
  where a ``spatial: {meshX, meshY}`` on a node multiplies the instances of that node and of
  everything after it. Two readings of that fanout (``spatial_dummies``):

  - timeloopfe's (``spatial_dummies=True``, what Timeloop evaluates): the fanout becomes a
    ``dummy_storage`` level ``inter_<node>_spatial`` that keeps nothing, placed where the node
    is (``pytimeloop/timeloopfe/common/version_transpilers/v4_to_v3.py`` ``transpile``);
  - bitloop specs' (the default): the fanout belongs to the storage level above.

  Either way a mapping or constraint may name the container (``target: PE``) or its dummy
  (``inter_PE_spatial``): it means the level that carries the container's fanout (``Arch.aliases``).

In both forms, the last leaf component is the compute level; every other leaf is a storage
level. A ``dummy_storage`` level keeps no data space unless a mapping says otherwise.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from workloads.yamlio import InputError, as_float, as_int, as_list, load_yaml, normalize_keys

NEST_ANALYSES = ("timeloop", "exact")
DUMMY_CLASS = "dummy_storage"
# Generic v0.3/v0.4 component classes whose Accelergy class is given by ``subclass``.
_GENERIC_CLASSES = ("storage", "compute", "buffer", "arithmetic")

_INSTANCE_RE = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<lo>\d+)\.\.(?P<hi>\d+)\]$")

# Attribute spellings accepted for the same storage parameter (Timeloop accepts several).
_DEPTH_KEYS = ("depth", "entries", "memory_depth")
_WIDTH_KEYS = ("width", "memory_width")
_WORD_KEYS = ("datawidth", "word_bits", "word_width")
_MESH_KEYS = ("meshX", "meshY", "mesh_x", "mesh_y")


def _without_mesh(attrs: dict[str, Any]) -> dict[str, Any]:
    """Attributes minus mesh shape keys (the mesh is kept in Level.mesh_x/mesh_y instead)."""
    return {k: v for k, v in attrs.items() if k not in _MESH_KEYS}


@dataclass(frozen=True)
class Level:
    """One arch level (a storage level or the compute level).

    Attributes:
        name: the component's own name (last path component, e.g. ``GLB``).
        path: full dotted name in the hierarchy (e.g. ``system.chip.GLB``), as Accelergy names it.
        component_class: Accelergy class name (e.g. ``smartbuffer_SRAM``, ``intmac``).
        attributes: all attributes, inherited container attributes included.
        mesh_x, mesh_y: total instances of this level along X and Y (instances = mesh_x * mesh_y).
    """

    name: str
    path: str
    component_class: str
    attributes: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)
    mesh_x: int = 1
    mesh_y: int = 1

    @property
    def instances(self) -> int:
        return self.mesh_x * self.mesh_y

    @property
    def is_dummy(self) -> bool:
        """A ``dummy_storage`` level (timeloopfe's spatial placeholder): keeps nothing, costs 0 pJ."""
        return self.component_class == DUMMY_CLASS


@dataclass(frozen=True)
class StorageLevel(Level):
    """A storage level.

    Attributes:
        word_bits: bits per word (``datawidth``).
        block_size: words per vector access (``width / datawidth``); accesses are ceil(words / block_size).
        depth: rows of ``width`` bits, None for unbounded (DRAM).
        read_bandwidth, write_bandwidth, shared_bandwidth: words per cycle per instance, None = unlimited.
        cluster_size: instances that share one physical ``width``-bit array (Timeloop
            ``cluster_size``: block = width / cluster_size / datawidth; an access costs the
            array's energy divided among the used instances of a used cluster).
    """

    word_bits: int = 8
    block_size: int = 1
    cluster_size: int = 1
    depth: int | None = None
    read_bandwidth: float | None = None
    write_bandwidth: float | None = None
    shared_bandwidth: float | None = None

    @property
    def capacity_words(self) -> int | None:
        """Words per instance, None when unbounded."""
        return None if self.depth is None else self.depth * self.block_size

    @property
    def capacity_bits(self) -> int | None:
        """Bits per instance, None when unbounded."""
        cap = self.capacity_words
        return None if cap is None else cap * self.word_bits


@dataclass(frozen=True)
class ComputeLevel(Level):
    """The arithmetic level (MAC units); ``instances`` is the number of parallel MAC lanes."""


@dataclass(frozen=True)
class Arch:
    """Storage levels outer to inner, then compute; ``source`` is where it was read from.

    ``nest_analysis`` selects the access-count semantics (docs/nest_analysis.md):
    ``"timeloop"`` (default, equal to timeloop-model's counts) or ``"exact"`` (exact point-set
    reuse with partial multicast; an explicit alternative).
    """

    levels: tuple[StorageLevel, ...]
    compute: ComputeLevel
    source: str = "<arch>"
    nest_analysis: str = "timeloop"
    # Names that are not levels but may be targeted: a spatial container -> the level that
    # carries its fanout (its timeloopfe dummy level, or the storage level above it).
    aliases: dict[str, str] = field(default_factory=dict, compare=False)
    # Constraints written on v0.4 nodes, as Timeloop constraint entries with their targets.
    constraints: tuple[dict[str, Any], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.nest_analysis not in NEST_ANALYSES:
            raise InputError(self.source, "nest_analysis", f"expected one of {', '.join(NEST_ANALYSES)}, got {self.nest_analysis!r}")
        chain: list[Level] = [*self.levels, self.compute]
        for outer, inner in zip(chain, chain[1:]):
            if inner.mesh_x % outer.mesh_x or inner.mesh_y % outer.mesh_y:
                raise InputError(
                    self.source, inner.path,
                    f"mesh {inner.mesh_x}x{inner.mesh_y} is not a multiple of its parent "
                    f"{outer.path}'s mesh {outer.mesh_x}x{outer.mesh_y}",
                )

    @property
    def level_names(self) -> tuple[str, ...]:
        return tuple(l.name for l in self.levels)

    def level_index(self, name: str, source: str = "<mapping>", key: str = "target") -> int:
        """Index of a storage level by name, full path or container alias (``Arch.aliases``)."""
        for candidate in (name, self.aliases.get(name)):
            for i, lvl in enumerate(self.levels):
                if candidate in (lvl.name, lvl.path):
                    return i
        raise InputError(source, key, f"unknown level {name!r} (arch levels: {', '.join(self.level_names)})")

    def fanout(self, i: int) -> tuple[int, int]:
        """(X, Y) fanout from storage level ``i`` to the next level inward (or compute)."""
        outer = self.levels[i]
        inner = self.levels[i + 1] if i + 1 < len(self.levels) else self.compute
        return inner.mesh_x // outer.mesh_x, inner.mesh_y // outer.mesh_y


# ---- parsing ------------------------------------------------------------------------------

# A flattened leaf: (name, path, Accelergy class, attributes, total mesh (X, Y)).
Leaf = tuple[str, str, str, dict[str, Any], tuple[int, int]]


def _split_instances(raw_name: str, source: str, key: str) -> tuple[str, int]:
    """``name[lo..hi]`` -> (name, hi - lo + 1). timeloopfe writes 1-based ranges (``[1..N]``)."""
    match = _INSTANCE_RE.match(raw_name)
    if not match:
        if "[" in raw_name or "]" in raw_name:
            raise InputError(source, key, f"expected 'name' or 'name[lo..hi]', got {raw_name!r}")
        return raw_name, 1
    lo, hi = int(match["lo"]), int(match["hi"])
    if hi < lo:
        raise InputError(source, key, f"instance range [lo..hi] needs lo <= hi, got {raw_name!r}")
    return match["name"], hi - lo + 1


def _component_class(comp: dict[str, Any], source: str, key: str) -> str:
    """The Accelergy class of a component: ``class``, or ``subclass`` under a generic ``class: storage``."""
    cls = comp.get("class")
    if not isinstance(cls, str):
        raise InputError(source, f"{key}.class", f"expected a component class name, got {cls!r}")
    sub = comp.get("subclass")
    if sub is not None and cls.lower() in _GENERIC_CLASSES:
        if not isinstance(sub, str):
            raise InputError(source, f"{key}.subclass", f"expected a component class name, got {sub!r}")
        return sub
    return cls


def _attributes(node: dict[str, Any], source: str, key: str) -> dict[str, Any]:
    attrs = node.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise InputError(source, f"{key}.attributes", "expected a mapping")
    return attrs


def _first(attrs: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        if k in attrs and attrs[k] is not None:
            return attrs[k]
    return None


def _optional_bw(attrs: dict[str, Any], key: str, source: str, where: str) -> float | None:
    value = attrs.get(key)
    if value is None or (isinstance(value, str) and value.lower() in ("inf", "infinity", "unlimited")):
        return None
    bw = as_float(value, source, f"{where}.attributes.{key}")
    if bw <= 0:
        raise InputError(source, f"{where}.attributes.{key}", f"expected a bandwidth > 0 words/cycle, got {bw}")
    return bw


def _make_storage(name: str, path: str, cls: str, attrs: dict[str, Any], mesh: tuple[int, int], source: str) -> StorageLevel:
    where = path
    word = _first(attrs, _WORD_KEYS)
    word_bits = as_int(word if word is not None else 8, source, f"{where}.attributes.datawidth", minimum=1)
    width_raw = _first(attrs, _WIDTH_KEYS)
    width = as_int(width_raw, source, f"{where}.attributes.width", minimum=1) if width_raw is not None else word_bits
    block_raw = attrs.get("block_size")
    cluster_raw = attrs.get("cluster_size")
    cluster = as_int(cluster_raw, source, f"{where}.attributes.cluster_size", minimum=1) if cluster_raw is not None else None
    if block_raw is not None:
        block = as_int(block_raw, source, f"{where}.attributes.block_size", minimum=1)
        if cluster is None:
            # Timeloop (buffer.cpp ParseSpecs): a width wider than one block makes a cluster.
            cluster = max(width // (word_bits * block), 1) if width_raw is not None else 1
    else:
        if width % (word_bits * (cluster or 1)):
            raise InputError(source, f"{where}.attributes.width",
                             f"width {width} bits is not a multiple of datawidth {word_bits} x cluster_size {cluster or 1}")
        block = width // (cluster or 1) // word_bits
    depth_raw = _first(attrs, _DEPTH_KEYS)
    depth: int | None
    if depth_raw is not None and not (isinstance(depth_raw, str) and depth_raw.lower() in ("inf", "unbounded")):
        depth = as_int(depth_raw, source, f"{where}.attributes.depth", minimum=0)
    elif attrs.get("size") is not None:
        words = as_int(attrs["size"], source, f"{where}.attributes.size", minimum=0)
        depth = math.ceil(words / block)
    elif attrs.get("sizeKB") is not None:
        bits = as_float(attrs["sizeKB"], source, f"{where}.attributes.sizeKB", minimum=0) * 8192
        depth = int(bits // (block * word_bits))
    else:
        depth = None
    return StorageLevel(
        name=name, path=path, component_class=cls, attributes=attrs, mesh_x=mesh[0], mesh_y=mesh[1],
        word_bits=word_bits, block_size=block, cluster_size=cluster or 1, depth=depth,
        read_bandwidth=_optional_bw(attrs, "read_bandwidth", source, where),
        write_bandwidth=_optional_bw(attrs, "write_bandwidth", source, where),
        shared_bandwidth=_optional_bw(attrs, "shared_bandwidth", source, where),
    )


def _mesh_from(attrs: dict[str, Any], count: int, parent: tuple[int, int], source: str, key: str) -> tuple[int, int]:
    """Total mesh (X, Y) for ``count`` instances per parent instance, meshX taken from attributes if given."""
    total = parent[0] * parent[1] * count
    if "meshX" in attrs or "mesh_x" in attrs:
        mesh_x = as_int(attrs.get("meshX", attrs.get("mesh_x")), source, f"{key}.attributes.meshX", minimum=1)
        if total % mesh_x:
            raise InputError(source, f"{key}.attributes.meshX", f"meshX {mesh_x} does not divide {total} instances")
        return mesh_x, total // mesh_x
    return parent[0] * count, parent[1]


def _build(leaves: list[Leaf], source: str, aliases: dict[str, str] | None = None,
           constraints: tuple[dict[str, Any], ...] = ()) -> Arch:
    if len(leaves) < 2:
        raise InputError(source, "architecture", "expected at least one storage level and one compute component")
    *storage, compute = leaves
    levels = tuple(_make_storage(n, p, c, a, m, source) for n, p, c, a, m in storage)
    cname, cpath, ccls, cattrs, cmesh = compute
    return Arch(levels, ComputeLevel(cname, cpath, ccls, cattrs, cmesh[0], cmesh[1]), source,
                aliases=aliases or {}, constraints=constraints)


def _parse_v03(node: dict[str, Any], prefix: str, inherited: dict[str, Any], mesh: tuple[int, int],
               source: str, key: str, leaves: list[Leaf]) -> None:
    raw = node.get("name")
    if not isinstance(raw, str):
        raise InputError(source, f"{key}.name", f"expected a name, got {raw!r}")
    name, count = _split_instances(raw, source, f"{key}.name")
    own = _attributes(node, source, key)
    attrs = {**inherited, **own}
    node_mesh = _mesh_from(own, count, mesh, source, key)
    path = f"{prefix}.{name}" if prefix else name
    for i, comp in enumerate(as_list(node.get("local"), source, f"{key}.local")):
        ckey = f"{key}.local[{i}]"
        if not isinstance(comp, dict):
            raise InputError(source, ckey, "expected a component mapping")
        craw = comp.get("name")
        if not isinstance(craw, str):
            raise InputError(source, f"{ckey}.name", f"expected a name, got {craw!r}")
        cname, ccount = _split_instances(craw, source, f"{ckey}.name")
        cls = _component_class(comp, source, ckey)
        cattrs_own = _attributes(comp, source, ckey)
        cmesh = _mesh_from(cattrs_own, ccount, node_mesh, source, ckey)
        leaves.append((cname, f"{path}.{cname}", cls, _without_mesh({**attrs, **cattrs_own}), cmesh))
    for i, child in enumerate(as_list(node.get("subtree"), source, f"{key}.subtree")):
        if not isinstance(child, dict):
            raise InputError(source, f"{key}.subtree[{i}]", "expected a subtree mapping")
        _parse_v03(child, path, attrs, node_mesh, source, f"{key}.subtree[{i}]", leaves)


_BRANCH_TAGS = ("Hierarchical", "Parallel", "Pipelined")
# timeloopfe's dummy_storage attributes (v4/arch.py dummy_storage): a 1-bit, 1-entry store.
_DUMMY_ATTRIBUTES = {"width": 1, "depth": 1, "datawidth": 1}


class _V04Flattener:
    """Walks a v0.4 node list in order, as timeloopfe's ``transpile`` does, collecting leaves."""

    def __init__(self, source: str, spatial_dummies: bool):
        self.source = source
        self.dummies = spatial_dummies
        self.leaves: list[Leaf] = []
        self.aliases: dict[str, str] = {}
        self.constraints: list[dict[str, Any]] = []
        self.mesh = (1, 1)
        self.inherited: dict[str, Any] = {}
        self.path: list[str] = []

    def walk(self, nodes: Any, key: str, parallel: bool = False) -> None:
        if not isinstance(nodes, list):
            raise InputError(self.source, key, "expected a list of nodes")
        for i, node in enumerate(nodes):
            self.node(node, f"{key}[{i}]", parallel)

    def node(self, node: Any, key: str, parallel: bool) -> None:
        if not isinstance(node, dict):
            raise InputError(self.source, key, "expected a !Container or !Component mapping")
        if node.get("enabled", True) is False:
            return
        tag = node.get("_tag") or ("Component" if "class" in node else "Container")
        if tag in _BRANCH_TAGS:
            if parallel and tag != "Parallel":
                raise InputError(self.source, key, f"a !{tag} branch under a !Parallel is not supported")
            self.walk(node.get("nodes") or [], f"{key}.nodes", parallel or tag == "Parallel")
            return
        if tag == "Nothing":
            return
        if tag not in ("Container", "Component"):
            raise InputError(self.source, key, f"unsupported node tag !{tag} (expected !Container, !Component, "
                                               f"!Parallel, !Hierarchical, !Pipelined or !Nothing)")
        name = node.get("name")
        if not isinstance(name, str) or not name:
            raise InputError(self.source, f"{key}.name", f"expected a name, got {name!r}")
        spatial = node.get("spatial") or {}
        if not isinstance(spatial, dict):
            raise InputError(self.source, f"{key}.spatial", "expected a mapping with meshX/meshY")
        sx = as_int(spatial.get("meshX", spatial.get("mesh_x", 1)), self.source, f"{key}.spatial.meshX", minimum=1)
        sy = as_int(spatial.get("meshY", spatial.get("mesh_y", 1)), self.source, f"{key}.spatial.meshY", minimum=1)
        attrs_own = _attributes(node, self.source, key)
        fanout = sx * sy > 1
        if parallel and (tag == "Container" or fanout):
            what = "containers" if tag == "Container" else "components with a spatial fanout"
            raise InputError(self.source, key, f"{what} under a !Parallel are not supported (as in timeloopfe)")
        spatial_target = self.fanout(name, sx, sy, tag == "Container") if fanout else None
        self.node_constraints(node, name, tag, spatial_target, key)
        if tag == "Container":
            self.inherited = {**self.inherited, **attrs_own}
            self.path.append(name)
            return
        cls = _component_class(node, self.source, key)
        self.leaves.append((name, ".".join([*self.path, name]), cls,
                            _without_mesh({**self.inherited, **attrs_own}), self.mesh))

    def fanout(self, name: str, sx: int, sy: int, container: bool) -> str | None:
        """Node ``name`` multiplies everything from here on by sx x sy; returns the level carrying it."""
        dummy = f"inter_{name}_spatial"
        carrier: str | None = None
        if self.dummies:
            self.leaves.append((dummy, ".".join([*self.path, dummy]), DUMMY_CLASS,
                                {**self.inherited, **_DUMMY_ATTRIBUTES}, self.mesh))
            carrier = dummy
        elif self.leaves:   # the level above carries the fanout; Timeloop's dummy name means it too
            carrier = self.aliases[dummy] = self.leaves[-1][0]
        if container and carrier is not None:
            self.aliases[name] = carrier
        self.mesh = (self.mesh[0] * sx, self.mesh[1] * sy)
        return carrier

    def node_constraints(self, node: dict[str, Any], name: str, tag: str, spatial_target: str | None, key: str) -> None:
        """A node's ``constraints: {spatial, temporal, dataspace, ...}`` as targeted entries, where
        timeloopfe attaches them: a fanout's spatial constraints go to the level carrying it; a
        container keeps no other constraint (it is no level)."""
        raw = node.get("constraints")
        if raw is None:
            return
        if not isinstance(raw, dict):
            raise InputError(self.source, f"{key}.constraints", "expected a mapping of constraint types")
        for kind, body in raw.items():
            if not isinstance(body, dict):
                raise InputError(self.source, f"{key}.constraints.{kind}", "expected a mapping")
            target = spatial_target if kind == "spatial" and spatial_target else (None if tag == "Container" else name)
            if target is not None and body:
                self.constraints.append({**body, "type": kind, "target": target})


def arch_from_dict(data: Any, source: str | os.PathLike = "<arch>", spatial_dummies: bool = False) -> Arch:
    """Build an :class:`Arch` from Timeloop architecture YAML data (v0.3 or v0.4 form).

    ``spatial_dummies``: read a v0.4 ``spatial`` fanout as timeloopfe does (a ``dummy_storage``
    level ``inter_<node>_spatial``) instead of giving it to the storage level above.
    """
    source = str(source)
    data = normalize_keys(data)
    if not isinstance(data, dict) or "architecture" not in data:
        raise InputError(source, "architecture", "missing required key")
    arch = data["architecture"]
    if not isinstance(arch, dict):
        raise InputError(source, "architecture", "expected a mapping")
    if "nodes" in arch:
        flat = _V04Flattener(source, spatial_dummies)
        flat.walk(arch["nodes"], "architecture.nodes")
        built = _build(flat.leaves, source, flat.aliases, tuple(flat.constraints))
    elif "subtree" in arch:
        if not isinstance(arch["subtree"], list):
            raise InputError(source, "architecture.subtree", "expected a list of subtrees")
        leaves: list[Leaf] = []
        for i, node in enumerate(arch["subtree"]):
            if not isinstance(node, dict):
                raise InputError(source, f"architecture.subtree[{i}]", "expected a subtree mapping")
            _parse_v03(node, "", {}, (1, 1), source, f"architecture.subtree[{i}]", leaves)
        built = _build(leaves, source)
    else:
        raise InputError(source, "architecture", "expected 'nodes' (v0.4) or 'subtree' (v0.3)")
    if "nest_analysis" in arch:  # bitloop's switch (docs/nest_analysis.md); Timeloop has no such key
        return dataclasses.replace(built, nest_analysis=str(arch["nest_analysis"]))
    return built


def load_arch(path: str | os.PathLike, spatial_dummies: bool = False) -> Arch:
    """Read a Timeloop architecture YAML file (``spatial_dummies``: see :func:`arch_from_dict`).

    The Timeloop-facing verbs (``mapper model --arch``, ``mapper search --arch``) read with
    ``spatial_dummies=True``, so their levels are the ones Timeloop evaluates.
    """
    return arch_from_dict(load_yaml(path), path, spatial_dummies)
