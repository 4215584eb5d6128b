"""Timeloop architectures: storage levels (outer to inner) and the compute level.

Reads both Timeloop forms into one :class:`Arch`:

* v0.3: nested ``subtree``/``local`` lists, ``name[0..N-1]`` instance counts, ``meshX``
  attributes; components in a ``local`` list are ordered outer to inner.
* v0.4: a flat ``nodes`` list of ``!Container`` and ``!Component`` entries, where a
  ``spatial: {meshX, meshY}`` on a node multiplies the instances of that node and of
  everything after it.

In both, the last leaf component is the compute level; every other leaf is a storage level.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from workloads.yamlio import InputError, as_float, as_int, as_list, as_mapping, load_yaml, normalize_keys

NEST_ANALYSES = ("timeloop", "exact")

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
        """Index of a storage level by name or full path."""
        for i, lvl in enumerate(self.levels):
            if name in (lvl.name, lvl.path):
                return i
        raise InputError(source, key, f"unknown level {name!r} (arch levels: {', '.join(self.level_names)})")

    def fanout(self, i: int) -> tuple[int, int]:
        """(X, Y) fanout from storage level ``i`` to the next level inward (or compute)."""
        outer = self.levels[i]
        inner = self.levels[i + 1] if i + 1 < len(self.levels) else self.compute
        return inner.mesh_x // outer.mesh_x, inner.mesh_y // outer.mesh_y


# ---- parsing ------------------------------------------------------------------------------

def _split_instances(raw_name: str, source: str, key: str) -> tuple[str, int]:
    match = _INSTANCE_RE.match(raw_name)
    if not match:
        if "[" in raw_name or "]" in raw_name:
            raise InputError(source, key, f"expected 'name' or 'name[0..N-1]', got {raw_name!r}")
        return raw_name, 1
    lo, hi = int(match["lo"]), int(match["hi"])
    if lo != 0 or hi < lo:
        raise InputError(source, key, f"instance range must be [0..N-1], got {raw_name!r}")
    return match["name"], hi - lo + 1


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


def _build(leaves: list[tuple[str, str, str, dict[str, Any], tuple[int, int]]], source: str) -> Arch:
    if len(leaves) < 2:
        raise InputError(source, "architecture", "expected at least one storage level and one compute component")
    *storage, compute = leaves
    levels = tuple(_make_storage(n, p, c, a, m, source) for n, p, c, a, m in storage)
    cname, cpath, ccls, cattrs, cmesh = compute
    return Arch(levels, ComputeLevel(cname, cpath, ccls, cattrs, cmesh[0], cmesh[1]), source)


def _parse_v03(node: dict[str, Any], prefix: str, inherited: dict[str, Any], mesh: tuple[int, int],
               source: str, key: str, leaves: list) -> None:
    raw = node.get("name")
    if not isinstance(raw, str):
        raise InputError(source, f"{key}.name", f"expected a name, got {raw!r}")
    name, count = _split_instances(raw, source, f"{key}.name")
    own = as_mapping(node.get("attributes"), source, f"{key}.attributes")
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
        cls = comp.get("class")
        if not isinstance(cls, str):
            raise InputError(source, f"{ckey}.class", f"expected a component class name, got {cls!r}")
        cattrs_own = comp.get("attributes") or {}
        if not isinstance(cattrs_own, dict):
            raise InputError(source, f"{ckey}.attributes", "expected a mapping")
        cmesh = _mesh_from(cattrs_own, ccount, node_mesh, source, ckey)
        leaves.append((cname, f"{path}.{cname}", cls, _without_mesh({**attrs, **cattrs_own}), cmesh))
    for i, child in enumerate(as_list(node.get("subtree"), source, f"{key}.subtree")):
        if not isinstance(child, dict):
            raise InputError(source, f"{key}.subtree[{i}]", "expected a subtree mapping")
        _parse_v03(child, path, attrs, node_mesh, source, f"{key}.subtree[{i}]", leaves)


def _parse_v04(nodes: list[Any], source: str) -> list:
    leaves: list = []
    mesh = (1, 1)
    inherited: dict[str, Any] = {}
    path: list[str] = []
    for i, node in enumerate(nodes):
        key = f"architecture.nodes[{i}]"
        if not isinstance(node, dict):
            raise InputError(source, key, "expected a !Container or !Component mapping")
        tag = node.get("_tag") or ("Component" if "class" in node else "Container")
        name = node.get("name")
        if not isinstance(name, str) or not name:
            raise InputError(source, f"{key}.name", f"expected a name, got {name!r}")
        spatial = node.get("spatial") or {}
        if not isinstance(spatial, dict):
            raise InputError(source, f"{key}.spatial", "expected a mapping with meshX/meshY")
        sx = as_int(spatial.get("meshX", spatial.get("mesh_x", 1)), source, f"{key}.spatial.meshX", minimum=1)
        sy = as_int(spatial.get("meshY", spatial.get("mesh_y", 1)), source, f"{key}.spatial.meshY", minimum=1)
        attrs_own = node.get("attributes") or {}
        if not isinstance(attrs_own, dict):
            raise InputError(source, f"{key}.attributes", "expected a mapping")
        if tag == "Container":
            mesh = (mesh[0] * sx, mesh[1] * sy)
            inherited = {**inherited, **attrs_own}
            path.append(name)
        elif tag == "Component":
            cls = node.get("class")
            if not isinstance(cls, str):
                raise InputError(source, f"{key}.class", f"expected a component class name, got {cls!r}")
            mesh = (mesh[0] * sx, mesh[1] * sy)
            leaves.append((name, ".".join([*path, name]), cls, _without_mesh({**inherited, **attrs_own}), mesh))
        else:
            raise InputError(source, key, f"unsupported node tag !{tag} (expected !Container or !Component)")
    return leaves


def arch_from_dict(data: Any, source: str | os.PathLike = "<arch>") -> Arch:
    """Build an :class:`Arch` from Timeloop architecture YAML data (v0.3 or v0.4 form)."""
    source = str(source)
    data = normalize_keys(data)
    if not isinstance(data, dict) or "architecture" not in data:
        raise InputError(source, "architecture", "missing required key")
    arch = data["architecture"]
    if not isinstance(arch, dict):
        raise InputError(source, "architecture", "expected a mapping")
    if "nodes" in arch:
        if not isinstance(arch["nodes"], list):
            raise InputError(source, "architecture.nodes", "expected a list of nodes")
        leaves = _parse_v04(arch["nodes"], source)
    elif "subtree" in arch:
        if not isinstance(arch["subtree"], list):
            raise InputError(source, "architecture.subtree", "expected a list of subtrees")
        leaves = []
        for i, node in enumerate(arch["subtree"]):
            if not isinstance(node, dict):
                raise InputError(source, f"architecture.subtree[{i}]", "expected a subtree mapping")
            _parse_v03(node, "", {}, (1, 1), source, f"architecture.subtree[{i}]", leaves)
    else:
        raise InputError(source, "architecture", "expected 'nodes' (v0.4) or 'subtree' (v0.3)")
    return _build(leaves, source)


def load_arch(path: str | os.PathLike) -> Arch:
    """Read a Timeloop architecture YAML file."""
    return arch_from_dict(load_yaml(path), path)
