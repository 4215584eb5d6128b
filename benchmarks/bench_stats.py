"""Statistics for every linear layer of a ~110M-parameter model (BERT-base shape, random weights).

    python benchmarks/bench_stats.py [--workers 2] [--tokens 512]
    python benchmarks/bench_stats.py --checkpoint path/to/model.gguf    # a real checkpoint, any loader format

With ``--checkpoint`` the weights come from the file (e.g. SmolLM2-135M's GGUF, dequantized)
and the inputs from the synthetic profile (no model is run).

Computes, per layer, the sections behind the default work and format models of every
family plus BBS conservative/moderate pruning, with calibration activations captured by
hooks on random token ids. Prints wall-clock seconds per phase and the peak resident
memory of the main process and of the worker processes. Target: < 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # the checkout's packages, not a stale install


def sections() -> list[tuple[str, dict]]:
    g32 = {"group_size": 32, "sub_group": 8}
    return [
        ("bitcols", {"group_size": 16, "sub_group": 8}),                               # stripes/pragmatic/bitlet/bitwave
        ("bbs", {}),                                                                    # bitvert, no pruning
        ("bbs", {**g32, "pruned_columns": 2, "method": "rounded_average"}),           # conservative
        ("bbs", {**g32, "pruned_columns": 4, "method": "zero_point"}),                # moderate
        ("bitwave", {}),
        ("bitmod", {"dtype": "fp4"}),
        ("panacea", {}), ("sibia", {}), ("sbq", {}), ("tq", {}),
    ]


def _cpu() -> float:
    """User + system CPU seconds of this process and its finished children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description="bitloop statistics benchmark")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=512, help="calibration rows per layer")
    ap.add_argument("--checkpoint", help="a checkpoint file (.gguf, .onnx, .pth, .safetensors, .h5, model.bin)")
    args = ap.parse_args()
    torch.set_num_threads(2)

    import sparsity_models as sm

    t0 = time.time()
    if args.checkpoint:
        src = sm.CheckpointSource(args.checkpoint)
        n_params = sum(int(w.size) for w in src.checkpoint.tensors.values())
    else:
        from transformers import BertConfig, BertModel

        torch.manual_seed(0)
        model = BertModel(BertConfig())                      # bert-base: 12 layers, hidden 768, 110M parameters
        n_params = sum(p.numel() for p in model.parameters())
        batches = [{"input_ids": torch.randint(1000, 30000, (1, 128))} for _ in range(-(-args.tokens // 128))]
        src = sm.ModuleSource(model, batches, max_tokens=args.tokens, label="bert-base (random weights)")
    t1 = time.time()
    stats = sm.layer_stats(src, use_cache=False)
    t2 = time.time()
    cpu0 = _cpu()
    sm.compute_sections(stats, sections(), workers=args.workers)
    t3 = time.time()
    cpu_stats = _cpu() - cpu0
    lin = sum(ls.weight.numel() for ls in stats.values())
    bits = sum(sm.build_format_model("bitvert", {"pruning": "moderate", "group_size": 32}, ls).bits_per_element("Weights")
               * ls.weight.numel() for ls in stats.values()) / lin
    t4 = time.time()
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"model: {n_params / 1e6:.1f} M parameters{' (layer weights in the file)' if args.checkpoint else ''}, "
          f"{len(stats)} layers, {lin / 1e6:.1f} M layer weights")
    print(f"build model: {t1 - t0:.1f} s; weights + calibration activations ({args.tokens} rows/layer): {t2 - t1:.1f} s")
    print(f"statistics ({len(sections())} sections per layer, {args.workers} workers): {t3 - t2:.1f} s wall, "
          f"{cpu_stats:.1f} s CPU (all processes)")
    print(f"work/format models for all layers: {t4 - t3:.2f} s (moderate BBS, G=32: {bits:.3f} bits/weight)")
    print(f"total: {t4 - t0:.1f} s wall; peak RSS main {me:.0f} MiB, largest worker {kids:.0f} MiB; "
          f"load average at the end {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
