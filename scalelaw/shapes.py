"""Sizes and costs of the proxy model from its shape, without torch (sweeps plan with these).

N = non-embedding parameters = depth x (4 w^2 + 3 w ffn): the attention and SwiGLU
matrices, excluding embedding, readout and norm gains (the Step Law / Kaplan convention).
"""

from __future__ import annotations

import math

# Peak dense bf16 tensor FLOP/s per device (vendor datasheets), for MFU and cost
# estimates; "cpu" is a rough figure for a 2-core laptop.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "cpu": 1e11}


def ffn_width(width: int) -> int:
    """SwiGLU hidden size: 8/3 x width (the parameters of a 4x GELU MLP), a multiple of 16."""
    return 16 * math.ceil(8 * width / 3 / 16)


def non_embedding_params(width: int, depth: int) -> int:
    """N of the proxy: the ``params`` column of the runs table."""
    return depth * (4 * width**2 + 3 * width * ffn_width(width))


def flops_per_token(width: int, depth: int, seq_len: int, vocab_size: int) -> float:
    """Training FLOPs per token: 6N + 6 L T w (attention) + 6 w V (readout).

    Forward + backward = 3 x forward; attention costs 2 L T w per token forward
    (QK^T and AV, causal half; Kaplan et al. 2020, Table 1).
    """
    return 6.0 * non_embedding_params(width, depth) + 6 * depth * seq_len * width + 6 * width * vocab_size
