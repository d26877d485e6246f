"""The GPT proxy: a modern decoder-only transformer, in one readable file.

Pre-norm RMSNorm blocks, rotary positions, causal ``scaled_dot_product_attention``,
SwiGLU MLP, untied embedding and readout, no biases. Everything width- or
depth-dependent comes from :class:`scalelaw.proxy.parametrization.Parametrization`; the μP /
CompleteP changes relative to a standard GPT are exactly these, all marked "μP" below:

1. hidden matrices initialised with std σ/√m (``init_weights``);
2. attention logits scaled by √d_base / d_head instead of 1/√d_head;
3. logits multiplied by α_out / m;
4. residual branches multiplied by 1/l (CompleteP only);
5. per-group Adam lr, ε and weight decay (``optimizer_groups``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from scalelaw import shapes
from scalelaw.exceptions import InputError
from scalelaw.proxy.parametrization import Parametrization


@dataclass(frozen=True)
class ModelConfig:
    """Shape and parametrization of one proxy model (frozen; validated on creation)."""

    width: int = 128
    depth: int = 2
    head_dim: int = 32
    vocab_size: int = 256
    seq_len: int = 128
    parametrization: str = "mup"
    base_width: int = 128
    base_depth: int = 2
    init_std: float = 0.02
    zero_init: bool = True  # readout and query start at 0 (TP5 §F), in every parametrization
    rope_base: float = 10000.0
    ffn_width: int = field(init=False)

    def __post_init__(self) -> None:
        for name in ("width", "depth", "head_dim", "vocab_size", "seq_len"):
            if int(getattr(self, name)) <= 0:
                raise InputError(
                    f"ModelConfig.{name} must be a positive integer, got {getattr(self, name)!r}"
                )
        if self.width % self.head_dim:
            raise InputError(
                f"ModelConfig.width ({self.width}) must be a multiple of head_dim ({self.head_dim})"
            )
        if self.head_dim % 2:
            raise InputError(f"ModelConfig.head_dim ({self.head_dim}) must be even for rotary embeddings")
        object.__setattr__(self, "ffn_width", shapes.ffn_width(self.width))
        self.rules  # noqa: B018 - validates the parametrization name and base shape

    @property
    def n_heads(self) -> int:
        return self.width // self.head_dim

    @property
    def rules(self) -> Parametrization:
        return Parametrization(
            self.parametrization,
            self.width,
            self.depth,
            self.base_width,
            self.base_depth,
            self.head_dim,
            init_std=self.init_std,
        )

    @property
    def non_embedding_params(self) -> int:
        """N = depth x (4 w^2 + 3 w ffn): the runs-table ``params`` (see scalelaw.shapes)."""
        return shapes.non_embedding_params(self.width, self.depth)

    def flops_per_token(self) -> float:
        """Training FLOPs per token: 6N + attention + readout (see scalelaw.shapes)."""
        return shapes.flops_per_token(self.width, self.depth, self.seq_len, self.vocab_size)


class RMSNorm(nn.Module):
    def __init__(self, width: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.gain = nn.Parameter(torch.ones(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.gain


def rotary_tables(seq_len: int, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of shape (seq_len, head_dim / 2)."""
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x1, x2) of the last axis; x: (batch, heads, T, head_dim)."""
    x1, x2 = x[..., ::2], x[..., 1::2]
    rotated = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return rotated.flatten(-2).type_as(x)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        self.scale = cfg.rules.attention_scale  # μP: √d_base / d_head
        self.q = nn.Linear(cfg.width, cfg.width, bias=False)
        self.k = nn.Linear(cfg.width, cfg.width, bias=False)
        self.v = nn.Linear(cfg.width, cfg.width, bias=False)
        self.o = nn.Linear(cfg.width, cfg.width, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, t, w = x.shape

        def heads(proj: nn.Linear) -> torch.Tensor:  # (b, t, w) -> (b, heads, t, head_dim)
            return proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)

        q, k = apply_rotary(heads(self.q), cos, sin), apply_rotary(heads(self.k), cos, sin)
        y = F.scaled_dot_product_attention(q, k, heads(self.v), is_causal=True, scale=self.scale)
        return self.o(y.transpose(1, 2).reshape(b, t, w))


class SwiGLU(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gate = nn.Linear(cfg.width, cfg.ffn_width, bias=False)
        self.up = nn.Linear(cfg.width, cfg.ffn_width, bias=False)
        self.down = nn.Linear(cfg.ffn_width, cfg.width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attn_norm, self.attn = RMSNorm(cfg.width), Attention(cfg)
        self.mlp_norm, self.mlp = RMSNorm(cfg.width), SwiGLU(cfg)
        self.branch_scale = cfg.rules.residual_multiplier  # CompleteP: 1/l

    def forward(self, x, cos, sin, record: dict | None = None, index: int = 0):
        a = self.attn(self.attn_norm(x), cos, sin)
        x = x + self.branch_scale * a
        m = self.mlp(self.mlp_norm(x))
        x = x + self.branch_scale * m
        if record is not None:
            record[f"block{index}.attn"] = a
            record[f"block{index}.mlp"] = m
            record[f"block{index}.out"] = x
        return x


class GPT(nn.Module):
    """Decoder-only LM. ``forward(idx, targets)`` -> (logits, mean cross-entropy or None)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        rules = cfg.rules
        self.embed = nn.Embedding(cfg.vocab_size, cfg.width)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = RMSNorm(cfg.width)
        self.readout = nn.Linear(cfg.width, cfg.vocab_size, bias=False)
        self.emb_scale = rules.embedding_multiplier
        self.logit_scale = rules.readout_multiplier  # μP: α_out / m
        cos, sin = rotary_tables(cfg.seq_len, cfg.head_dim, cfg.rope_base)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.init_weights()

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by parametrization group: embedding, hidden, readout, gain."""
        groups: dict[str, list[nn.Parameter]] = {
            "embedding": [],
            "hidden": [],
            "readout": [],
            "gain": [],
        }
        for name, p in self.named_parameters():
            if name.startswith("embed."):
                groups["embedding"].append(p)
            elif name.startswith("readout."):
                groups["readout"].append(p)
            elif name.endswith(".gain"):
                groups["gain"].append(p)
            else:
                groups["hidden"].append(p)
        return groups

    @torch.no_grad()
    def init_weights(self) -> None:
        rules = self.cfg.rules
        for group, params in self.parameter_groups().items():
            for p in params:
                if group == "gain":
                    p.fill_(1.0)
                else:
                    p.normal_(0.0, rules.init_std_of(group))  # μP: hidden σ/√m
        if self.cfg.zero_init:  # logits and attention start width-independent (TP5 §F)
            self.readout.weight.zero_()
            for block in self.blocks:
                block.attn.q.weight.zero_()

    def optimizer_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """AdamW parameter groups with the parametrization's lr, ε and weight decay."""
        return self.cfg.rules.param_groups(self.parameter_groups(), lr, weight_decay)

    @property
    def non_embedding_params(self) -> int:
        return sum(p.numel() for p in self.parameter_groups()["hidden"])

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, record: dict | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx, targets: (batch, T) token ids. ``record`` collects intermediate outputs."""
        t = idx.shape[1]
        x = self.embed(idx) * self.emb_scale
        if record is not None:
            record["embedding"] = x
        cos, sin = self.cos[:t], self.sin[:t]
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, record, i)
        logits = self.readout(self.norm(x)) * self.logit_scale
        if record is not None:
            record["logits"] = logits
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1))
        return logits, loss
