"""Work models: compute-level cycles and actions per MAC for a lock-step domain of lanes.

``n_lanes // group_lanes`` operand groups (at least one) run in lock-step and each step
waits for the slowest. With the per-group cycle distribution F (values ``v_1 < ... < v_m``)
the expected step time is ``E[max of N] = v_1 + sum_j (v_{j+1} - v_j) (1 - F(v_j)^N)``,
i.e. ``sum_k 1 - F(k-1)^N`` for integer cycles. In ``exact`` mode the actual tiles are
walked instead: rows (lock-step parallel groups) are taken N at a time and the step time is
the mean over those sets of their maximum.

Actions per MAC: ``compute`` = active lane-cycles (the lane's own group busy time, or its
own work for lane-level families), ``idle`` = cycles per step minus that; dense families
emit ``mac``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workloads.yamlio import InputError

MODES = ("expected", "exact")


@dataclass(frozen=True)
class Distribution:
    """Per-group cycles as a histogram: sorted distinct ``values`` and their ``counts``.

    What a measured profile keeps of a layer's tiles (their layout is gone, so only
    ``expected`` mode can use it).
    """

    values: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, tiles: np.ndarray) -> "Distribution":
        v, c = np.unique(np.asarray(tiles, np.float64).ravel(), return_counts=True)
        return cls(v, c.astype(np.int64))

    def mean(self) -> float:
        return float((self.values * self.counts).sum() / self.counts.sum())

    def max(self) -> float:
        return float(self.values[-1])


def expected_max(values: np.ndarray | Distribution, n: np.ndarray) -> np.ndarray:
    """Expected maximum of ``n`` i.i.d. draws from the empirical distribution of ``values``."""
    dist = values if isinstance(values, Distribution) else Distribution.of(values)
    v, counts = np.asarray(dist.values, np.float64), np.asarray(dist.counts, np.float64)
    cdf = np.cumsum(counts) / counts.sum()
    n = np.asarray(n, np.float64)
    if v.size == 1:
        return np.full(n.shape, v[0])
    gaps = np.diff(v)
    tail = 1.0 - cdf[:-1][None, :] ** n.reshape(-1, 1)
    return (v[0] + (tail * gaps[None, :]).sum(axis=1)).reshape(n.shape)


def exact_lockstep(tiles: np.ndarray, n: int) -> float:
    """Mean over lock-step sets (n consecutive rows at one column) of their maximum cycles."""
    t = np.asarray(tiles, np.float64)
    if t.ndim == 1:
        t = t[:, None]
    rows = t.shape[0]
    n = max(1, min(int(n), rows))
    sets = -(-rows // n)
    pad = sets * n - rows
    if pad:
        t = np.concatenate([t, np.full((pad, t.shape[1]), -np.inf)], axis=0)
    return float(t.reshape(sets, n, -1).max(axis=1).mean())


def _groups(n_lanes: np.ndarray, group_lanes: int) -> np.ndarray:
    return np.maximum(1, np.asarray(n_lanes, np.int64) // group_lanes)


class MeasuredWorkModel:
    """Work model from a per-group cycle array (``[lock-step rows, columns]``).

    Args:
        family: accelerator family name.
        group_lanes: lanes that process one operand group together.
        tiles: cycles per step of every operand group; rows are groups that run in lock-step
            (or their :class:`Distribution`, from a measured profile).
        mode: ``expected`` (E[max] from the distribution) or ``exact`` (walk the tiles; needs the array).
        busy_per_mac: active lane-cycles per MAC (default: mean group cycles).
        info: provenance and statistics returned by :meth:`describe`.
    """

    def __init__(self, family: str, group_lanes: int, tiles: np.ndarray | Distribution, *, mode: str = "expected",
                 busy_per_mac: float | None = None, info: dict[str, Any] | None = None):
        self.family = family
        self.group_lanes = int(group_lanes)
        if isinstance(tiles, Distribution):
            if mode == "exact":
                raise InputError("<work_model>", "work_model.mode",
                                 "'expected': 'exact' walks the layer's own tiles, and a measured profile keeps only "
                                 "their distribution (give --weights for exact mode)")
            self.tiles: np.ndarray | Distribution = tiles
        else:
            self.tiles = np.asarray(tiles, np.float64)
        self.mode = mode
        self.busy = float(self.tiles.mean()) if busy_per_mac is None else float(busy_per_mac)
        self.info = dict(info or {})
        self._memo: dict[int, float] = {}

    def _step(self, n: int) -> float:
        if n not in self._memo:
            if self.mode == "exact":
                self._memo[n] = exact_lockstep(self.tiles, n)
            else:
                self._memo[n] = float(expected_max(self.tiles, np.array([n]))[0])
        return self._memo[n]

    def cycles_per_step(self, n_lanes: np.ndarray) -> np.ndarray:
        groups = _groups(n_lanes, self.group_lanes)
        uniq, inv = np.unique(groups, return_inverse=True)
        vals = np.array([self._step(int(u)) for u in uniq])
        return vals[inv].reshape(groups.shape)

    def actions_per_mac(self, n_lanes: np.ndarray) -> dict[str, np.ndarray]:
        cycles = self.cycles_per_step(n_lanes)
        busy = np.minimum(np.full(cycles.shape, self.busy), cycles)
        return {"compute": busy, "idle": cycles - busy}

    def describe(self) -> dict:
        out = {"family": self.family, "group_lanes": self.group_lanes, "mode": self.mode,
               "mean_group_cycles": float(self.tiles.mean()), "max_group_cycles": float(self.tiles.max()),
               "busy_cycles_per_mac": self.busy}
        out.update(self.info)
        return out


class FixedWorkModel:
    """Work model with data-independent cycles per step (dense, Stripes, BitMoD, SBQ, TQ).

    ``actions`` gives the action counts per MAC (e.g. ``{'mac': 1}`` or
    ``{'compute': u*B, 'idle': (1-u)*B}``).
    """

    def __init__(self, family: str, group_lanes: int, cycles: float, actions: dict[str, float],
                 info: dict[str, Any] | None = None):
        self.family = family
        self.group_lanes = int(group_lanes)
        self.cycles = float(cycles)
        self.actions = {k: float(v) for k, v in actions.items()}
        self.info = dict(info or {})

    def cycles_per_step(self, n_lanes: np.ndarray) -> np.ndarray:
        return np.full(np.shape(n_lanes), self.cycles)

    def actions_per_mac(self, n_lanes: np.ndarray) -> dict[str, np.ndarray]:
        return {k: np.full(np.shape(n_lanes), v) for k, v in self.actions.items()}

    def describe(self) -> dict:
        out = {"family": self.family, "group_lanes": self.group_lanes, "cycles_per_step": self.cycles,
               "actions_per_mac": dict(self.actions)}
        out.update(self.info)
        return out
