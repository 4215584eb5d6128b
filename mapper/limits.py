"""Range guards applied where problems, architectures and results enter or leave bitloop.

The cost model counts accesses in int64 and casts cycles to int64; the mapspace enumerates
every ordered factorization of each dimension. These checks turn inputs that would overflow
those counts, or make the enumeration explode, into one-line :class:`InputError` messages
that name the limit, and refuse any result holding a NaN, an infinity, a negative or an
overflowed number instead of writing it.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from workloads.yamlio import InputError

MAX_DIM_BOUND = 2**24             # iterations of one problem dimension
MAX_LAYER_MACS = 2**50            # operation-space points of one layer
MAX_FACTORIZATIONS = 1_000_000    # ordered factorizations of one dimension over the mapspace's slots
MAX_INSTANCES = 2**24             # instances of one arch level
MAX_CYCLES = 2**62                # cycles of one layer (int64 with headroom)
MAX_COUNT = 2**62                 # any count written to an output
# Upper bound on scalar reads + writes per MAC at one level (reads, fills, updates of three
# data spaces), used to bound the bandwidth-limited cycles before searching.
ACCESSES_PER_MAC = 6


def prime_exponents(n: int) -> list[int]:
    """Exponents of the prime factorization of ``n`` (trial division; n <= MAX_DIM_BOUND here)."""
    out, p = [], 2
    while p * p <= n:
        e = 0
        while n % p == 0:
            n //= p
            e += 1
        if e:
            out.append(e)
        p += 1 if p == 2 else 2
    if n > 1:
        out.append(1)
    return out


def factorization_count(n: int, slots: int) -> int:
    """Ordered ``slots``-tuples of positive integers with product ``n``: prod_p C(e_p + slots - 1, slots - 1)."""
    return math.prod(math.comb(e + slots - 1, slots - 1) for e in prime_exponents(n))


def mapspace_slots(arch: Any) -> int:
    """Factor slots of the mapspace: a temporal slot per storage level plus one per spatial X/Y fanout."""
    slots = 0
    for i in range(len(arch.levels)):
        fx, fy = arch.fanout(i)
        slots += 1 + (fx > 1) + (fy > 1)
    return slots


def check_problem(problem: Any, source: str, arch: Any | None = None) -> None:
    """Dimension bounds, MACs, data-space names; with ``arch``, the mapspace size and cycle range."""
    names = [ds.name for ds in problem.dataspaces]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise InputError(source, f"data_spaces.{dup}", "data space named twice (names must be unique)")
    for d in problem.dims:
        if problem.bounds[d] > MAX_DIM_BOUND:
            raise InputError(source, f"instance.{d}", f"bound {problem.bounds[d]} exceeds the limit {MAX_DIM_BOUND} "
                             "(MAX_DIM_BOUND) iterations per dimension")
    macs = math.prod(int(problem.bounds[d]) for d in problem.dims)
    if macs > MAX_LAYER_MACS:
        raise InputError(source, "instance", f"{macs:.3g} MACs exceed the limit {MAX_LAYER_MACS:.3g} (MAX_LAYER_MACS) "
                         "per layer")
    if arch is None:
        return
    slots = mapspace_slots(arch)
    for d in problem.dims:
        count = factorization_count(int(problem.bounds[d]), slots)
        if count > MAX_FACTORIZATIONS:
            raise InputError(source, f"instance.{d}", f"{d}={problem.bounds[d]} has {count:,} ordered factorizations over "
                             f"the {slots} mapspace slots, beyond the limit {MAX_FACTORIZATIONS:,} (MAX_FACTORIZATIONS); "
                             "use a smaller batch/sequence or a bound with fewer prime factors")
    for lvl in arch.levels:
        for what in ("read_bandwidth", "write_bandwidth", "shared_bandwidth"):
            bw = getattr(lvl, what)
            if bw and ACCESSES_PER_MAC * macs / bw > MAX_CYCLES:
                raise InputError(lvl.path, what, f"{bw:g} words/cycle would need more than {MAX_CYCLES:.3g} cycles "
                                 f"(MAX_CYCLES) for {macs:.3g} MACs; expected >= {ACCESSES_PER_MAC * macs / MAX_CYCLES:.3g}")


def check_arch(arch: Any, source: str) -> None:
    """Instances per level and storage sizes in range (bandwidths are checked with the problem)."""
    for lvl in [*arch.levels, arch.compute]:
        if lvl.instances > MAX_INSTANCES:
            raise InputError(source, lvl.path, f"{lvl.instances} instances exceed the limit {MAX_INSTANCES} (MAX_INSTANCES)")
    for lvl in arch.levels:
        for what in ("read_bandwidth", "write_bandwidth", "shared_bandwidth"):
            bw = getattr(lvl, what)
            if bw is not None and not (math.isfinite(bw) and bw > 0):
                raise InputError(source, f"{lvl.path}.{what}", f"expected a finite number > 0 words/cycle, got {bw}")
        if lvl.capacity_bits is not None and lvl.capacity_bits > MAX_COUNT:
            raise InputError(source, f"{lvl.path}.depth", f"{lvl.capacity_bits:.3g} bits exceed the limit {MAX_COUNT:.3g}")


def bad_number(value: Any) -> str | None:
    """Why ``value`` cannot appear in an output (NaN, infinite, negative, beyond int64), or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value}"
    if value < 0:
        return f"negative ({value:g})"
    if value > MAX_COUNT and isinstance(value, int):
        return f"beyond 64-bit counts ({value:.3g})"
    return None


def check_numbers(data: Any, source: str, key: str = "", skip: Iterable[str] = ()) -> None:
    """Raise :class:`InputError` at the first NaN, infinite, negative or overflowed number in ``data``."""
    skipped = set(skip)
    stack: list[tuple[str, Any]] = [(key, data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in value.items() if k not in skipped)
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(value))
        else:
            why = bad_number(value)
            if why is not None:
                raise InputError(source, path, f"the cost model produced a {why} value: an input is out of range "
                                 "(energy/area per action, bandwidth, or a problem too large to count in 64 bits)")
