"""Inference phases a model's layer graph can describe (no heavy imports: the CLI parser reads these)."""

PHASES = ("prefill", "decode", "generate")
DEFAULT_DECODE_TOKENS = 20   # BitMoD's generative metric: prefill + 20 generated tokens (yc2367/BitMoD figures/speedup)
