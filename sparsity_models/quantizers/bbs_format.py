"""The BBS stored-group format (bbs_bitvert.txt Sec. III-B/C): field widths and pruning methods.
No torch: spec validation needs only these (the quantizer is sparsity_models.quantizers.bbs).
"""

BITS = 8
MAX_REDUNDANT = 3   # 2-bit field of the BBS metadata
CONST_BITS = 6      # BBS constant field
METADATA_BITS = 8   # per pruned group
METHODS = ("rounded_average", "zero_point")
