"""Per-layer statistics sections (see docs/statistics.md for every definition).

Each section is a function ``(LayerOperands, params) -> dict`` whose values are floats,
ints, strings, small lists or numpy arrays (per-group / per-tile distributions).
"""
