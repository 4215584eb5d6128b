"""Calibration inputs: the small text shipped with bitloop or a user's own text file."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from workloads.yamlio import InputError, read_text


def calibration_texts(path: str | Path | None = None) -> list[str]:
    """Paragraphs of calibration text (blank-line separated); default: ``sparsity_models/data/calibration.txt``."""
    if path is None:
        text = resources.files("sparsity_models").joinpath("data/calibration.txt").read_text(encoding="utf-8")
    else:
        text = read_text(path, "calibration text file")
    paras = [" ".join(p.split()) for p in text.split("\n\n")]
    paras = [p for p in paras if p]
    if not paras:
        raise InputError(path or "<calibration>", None, "calibration text is empty")
    return paras
