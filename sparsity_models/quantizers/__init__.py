"""Quantizers (vectorized torch, CPU): integer, BitMoD, Panacea, BBS, SBQ, TQ, ANT, OliVe."""
