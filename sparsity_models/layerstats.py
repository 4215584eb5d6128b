"""Per-layer statistics: the operands of one layer and its (cached) statistics sections."""

from __future__ import annotations

import contextlib
import math
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Iterable, Iterator, Mapping, Sequence

import torch

from sparsity_models import synthetic
from sparsity_models.cache import StatsCache, cache_key, tensor_digest
from sparsity_models.grouping import as_matrix
from sparsity_models.quantizers import bbs
from sparsity_models.quantizers.integer import int8_per_channel
from sparsity_models.sections import SECTIONS, section_params
from sparsity_models.sources import TensorSource, open_source


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch with one intra-op thread (statistics are many small ops; processes give the parallelism)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class LayerStats:
    """Operands of one layer and its statistics sections (computed on demand, cached).

    Args:
        layer: layer (module) name.
        weight: float weight tensor (any rank >= 2; viewed as ``[M, K]``).
        inputs: calibration input rows ``[T, K]``; None = synthetic inputs of ``profile``.
        weight_name: checkpoint tensor name of the weight.
        source: label of the tensor source.
        weights_synthetic: True when ``weight`` itself comes from a synthetic profile.
        profile: synthetic profile used for missing operands.
        cache: disk cache (None: no disk cache).
    """

    def __init__(self, layer: str, weight: torch.Tensor, inputs: torch.Tensor | None = None, *,
                 weight_name: str | None = None, source: str = "<tensor>", weights_synthetic: bool = False,
                 profile: str = synthetic.DEFAULT_PROFILE, cache: StatsCache | None = None):
        self.layer = layer
        self.weight = weight.detach().float()
        self._inputs = None if inputs is None else inputs.detach().float()
        self._inputs_measured = inputs is not None
        self.weight_name = weight_name or f"{layer}.weight"
        self.source = source
        self.weights_synthetic = weights_synthetic
        self.profile = synthetic.check_profile(profile)
        self.cache = cache
        self.sensitive: dict[tuple[float, int], int] = {}
        self._memo: dict[str, dict[str, Any]] = {}
        self._int8: tuple[torch.Tensor, torch.Tensor] | None = None
        self._digests: dict[tuple[str, ...], str] = {}

    # ---- operands ------------------------------------------------------------------------
    def weight2d(self) -> torch.Tensor:
        """Weights as ``[M, K]``."""
        return as_matrix(self.weight)

    @property
    def inputs_measured(self) -> bool:
        """True when the inputs were captured from the model (not from the synthetic profile)."""
        return self._inputs_measured

    def inputs2d(self) -> torch.Tensor:
        """Calibration inputs ``[T, K]`` (synthetic from the profile when none were captured)."""
        if self._inputs is None:
            self._inputs = synthetic.synthetic_inputs(self.profile, self.weight2d().shape[1])
        return self._inputs

    def int8(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel symmetric INT8 weights ``[M, K]`` and their scales ``[M]``."""
        if self._int8 is None:
            self._int8 = int8_per_channel(self.weight2d())
        return self._int8

    def provenance(self) -> dict[str, Any]:
        """Where the operands come from (measured tensors or a named synthetic profile)."""
        w = f"synthetic:{self.profile}" if self.weights_synthetic else "measured"
        x = "measured" if self._inputs_measured else f"synthetic:{self.profile}"
        out = {"provenance": "synthetic" if self.weights_synthetic else "measured", "layer": self.layer,
               "weight_tensor": self.weight_name, "weights": w, "inputs": x, "source": self.source,
               "weight_shape": list(self.weight2d().shape)}
        if self.weights_synthetic or x != "measured":
            out["profile"] = self.profile
            out["profile_definition"] = synthetic.PROFILES[self.profile]
        return out

    # ---- sections ------------------------------------------------------------------------
    def _digest(self, needs: tuple[str, ...]) -> str:
        if needs not in self._digests:
            tensors = [self.weight2d()]
            if "inputs" in needs:
                tensors.append(self.inputs2d())
            self._digests[needs] = tensor_digest(*tensors)
        return self._digests[needs]

    def key(self, name: str, params: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Memo key and the full parameters of a section."""
        p = section_params(name, params)
        return f"{name}:{sorted(p.items())}", p

    def section(self, name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Statistics of section ``name`` with ``params`` (memory, then disk cache, then computed)."""
        memo, p = self.key(name, params)
        if memo in self._memo:
            return self._memo[memo]
        sec = SECTIONS[name]
        ck = cache_key(self._digest(sec.needs), name, p) if self.cache is not None else None
        result = self.cache.get(ck) if ck is not None else None
        if result is None:
            with single_thread():
                result = sec.compute(self, p)
            if ck is not None:
                self.cache.put(ck, result)
        self._memo[memo] = result
        return result

    def put(self, name: str, params: dict[str, Any] | None, result: dict[str, Any]) -> None:
        """Store a section computed elsewhere (e.g. by a worker process)."""
        memo, _ = self.key(name, params)
        self._memo[memo] = result

    def sensitive_count(self, fraction: float, parallel: int) -> tuple[int, str]:
        """Sensitive channels for BBS global pruning: ``(count, 'global' | 'local')``."""
        if fraction <= 0:
            return 0, "none"
        if (fraction, parallel) in self.sensitive:
            return self.sensitive[(fraction, parallel)], "global"
        m = self.weight2d().shape[0]
        return min(m, math.ceil(fraction * m / parallel) * parallel), "local"

    def __repr__(self) -> str:
        return f"LayerStats({self.layer!r}, weight={tuple(self.weight.shape)}, sections={len(self._memo)})"


def select_sensitive(stats: Mapping[str, LayerStats], fraction: float, parallel: int) -> dict[str, int]:
    """Global channel selection (BBS Algorithm 2) over all layers; stores each layer's count."""
    counts = bbs.sensitive_counts({n: s.int8()[1] for n, s in stats.items()}, fraction, parallel)
    for n, s in stats.items():
        s.sensitive[(fraction, parallel)] = counts[n]
    return counts


SectionSpec = tuple[str, dict[str, Any]]
_WORK: dict[str, LayerStats] = {}


def keep_freed_memory() -> None:
    """Make glibc keep freed blocks for reuse (no mmap/trim per large buffer).

    Statistics allocate and free many buffers of a few MB; returning each to the kernel
    and faulting it in again costs more than the arithmetic. Called only in the worker
    processes that :func:`compute_sections` starts (no effect outside glibc).
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)      # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 31 - 1)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def _init_worker() -> None:
    keep_freed_memory()
    torch.set_num_threads(1)


def _worker(job: tuple[str, list[SectionSpec]]) -> tuple[str, list[dict[str, Any]]]:
    name, specs = job
    ls = _WORK[name]
    return name, [ls.section(s, p) for s, p in specs]


def compute_sections(stats: Mapping[str, LayerStats], specs: Sequence[SectionSpec] | Mapping[str, Sequence[SectionSpec]],
                     workers: int = 1) -> None:
    """Compute sections for every layer, in ``workers`` processes (fork) when > 1.

    ``specs`` is one list for all layers or a mapping layer -> list.
    """
    per_layer = {n: list(specs[n] if isinstance(specs, Mapping) else specs) for n in stats}
    if workers <= 1 or len(stats) <= 1:
        for n, ls in stats.items():
            for s, p in per_layer[n]:
                ls.section(s, p)
        return
    import multiprocessing as mp

    _WORK.clear()
    _WORK.update(stats)
    try:
        ctx = mp.get_context("fork")
        order = sorted(stats, key=lambda n: -stats[n].weight.numel())   # big layers first
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool:
            for name, results in pool.map(_worker, [(n, per_layer[n]) for n in order]):
                for (s, p), r in zip(per_layer[name], results):
                    stats[name].put(s, p, r)
    finally:
        _WORK.clear()


def layer_stats(source: TensorSource | str | os.PathLike | torch.nn.Module, layers: Iterable[str] | None = None, *,
                sections: Sequence[SectionSpec] | None = None, cache_dir: str | os.PathLike | None = None,
                use_cache: bool = True, activations: bool = True, workers: int = 1,
                profile: str = synthetic.DEFAULT_PROFILE) -> dict[str, LayerStats]:
    """Per-layer statistics of a tensor source.

    Args:
        source: a :class:`TensorSource`, ``'minilm'``, a checkpoint folder, a ``.safetensors``
            file or an ``nn.Module``.
        layers: layer names (default: every layer of the source).
        sections: ``[(section, params), ...]`` to compute now (others are computed on demand).
        cache_dir: disk cache folder (default ``$BITLOOP_CACHE_DIR`` or ``.bitloop_cache``).
        use_cache: False disables the disk cache.
        activations: False skips running the model (inputs then come from ``profile``).
        workers: processes used for ``sections``.
        profile: synthetic profile for operands the source cannot provide.
    """
    src = source if isinstance(source, TensorSource) else open_source(source)
    names = list(layers) if layers is not None else src.layers()
    acts = src.activations(names) if activations else {}
    cache = StatsCache(cache_dir, enabled=use_cache)
    out = {n: LayerStats(n, src.weight(n), acts.get(n), weight_name=src.weight_name(n), source=src.label,
                         profile=profile, cache=cache) for n in names}
    if sections:
        compute_sections(out, sections, workers)
    return out


def synthetic_stats(profile: str = synthetic.DEFAULT_PROFILE, shape: tuple[int, int] = synthetic.DEFAULT_SHAPE,
                    layer: str = "<synthetic>", cache: StatsCache | None = None) -> LayerStats:
    """Statistics of a stated synthetic profile (used when no weights are given)."""
    w = synthetic.synthetic_weight(profile, *shape)
    return LayerStats(layer, w, None, weight_name="<synthetic>",
                      source=f"synthetic profile {profile}", weights_synthetic=True, profile=profile, cache=cache)


def map_to_graph(stats: Mapping[str, LayerStats], graph: Any) -> dict[str, LayerStats]:
    """Statistics keyed by the layer names of a ``workloads.graph.LayerGraph``.

    Layers are matched by checkpoint tensor name (``graph.layer_for_tensor``), which
    tolerates task-head prefixes; unmatched statistics are left out.
    """
    out: dict[str, LayerStats] = {}
    for ls in stats.values():
        name = graph.layer_for_tensor(ls.weight_name) or graph.layer_for_tensor(ls.layer)
        if name is not None:
            out.setdefault(name, ls)
    return out
