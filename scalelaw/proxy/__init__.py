"""The proxy layer: the only part of scalelaw that imports torch.

``parametrization`` (SP / μP / CompleteP rules) and ``data`` (corpus, tokenizer,
batch indices) are plain numpy and can be imported anywhere; ``model`` (the reference
GPT), ``train`` (one run), ``fused`` (K runs as one stacked model) and ``coordcheck``
import torch. This ``__init__`` imports nothing, so planning a sweep stays torch-free.
"""
