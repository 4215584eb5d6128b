"""Reshape a weight matrix ``[M, K]`` into groups of ``G`` consecutive elements along K.

A layer's weight is viewed as ``[M, K]`` (output channels x reduction length; conv
kernels are flattened to ``K = C*R*S``). When K is not a multiple of G the last group of
every row is padded by repeating the row's last element, which leaves the group's range
(and therefore every scale and redundant-column count) unchanged; callers drop the padded
positions with :func:`ungroup`.
"""

from __future__ import annotations

import torch


def as_matrix(w: torch.Tensor) -> torch.Tensor:
    """View a weight of rank >= 2 as ``[M, K]`` (rank-1 tensors become ``[1, K]``)."""
    if w.dim() == 1:
        return w.unsqueeze(0)
    return w.reshape(w.shape[0], -1)


def to_groups(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """``[M, K] -> [M, ceil(K/G), G]`` with edge-replicated padding."""
    m, k = x.shape
    pad = (-k) % group_size
    if pad:
        x = torch.cat([x, x[:, -1:].expand(m, pad)], dim=1)
    return x.reshape(m, -1, group_size)


def ungroup(xg: torch.Tensor, k: int) -> torch.Tensor:
    """Inverse of :func:`to_groups`: ``[M, C, G] -> [M, K]`` without the padding."""
    return xg.reshape(xg.shape[0], -1)[:, :k]


