"""SP, μP and CompleteP in one place: per parameter group, init std, forward
multiplier, Adam learning rate, epsilon and weight decay, relative to a base shape.

Width multiplier m = width / base_width, depth multiplier l = depth / base_depth.
``init_std`` (σ), the base lr (η) and the base weight decay (λ) are the numbers a sweep
tunes and the laws predict. At m = l = 1 every parametrization is the same model.

| group | SP | μP (Yang et al. 2022, TP5 Table 3) | CompleteP (Dey et al. 2025, α = 1) |
|---|---|---|---|
| embedding | init σ, lr η, out × α_emb | same | same |
| hidden (q, k, v, o, MLP) | init σ, lr η | init σ/√m, lr η/m | μP; residual branch × 1/l |
| readout (untied) | init σ, lr η, logits × α_out | logits × α_out/m | as μP |
| attention logits | × 1/√d_head | × √d_base/d_head | as μP |
| norm gains | lr η, no decay | same | same |
| Adam ε | ε | ε/m (Everett et al. 2024) | ε/(m·l) |

Weight decay is lr-coupled, as torch's AdamW applies it: a group decays by
lr_group · λ per step, so μP hidden matrices decay by (η/m)·λ. Embeddings and norm gains
are not decayed. Width grows through the number of heads at fixed ``head_dim``, so the
attention scale only differs from SP if ``head_dim`` differs from the base's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scalelaw.exceptions import InputError

NAMES = ("sp", "mup", "completep")
GROUPS = ("embedding", "hidden", "readout", "gain")


@dataclass(frozen=True)
class Parametrization:
    """The rules of one parametrization at one shape (see the module docstring)."""

    name: str = "mup"
    width: int = 128
    depth: int = 2
    base_width: int = 128
    base_depth: int = 2
    head_dim: int = 32
    base_head_dim: int | None = None  # None: the same as head_dim
    init_std: float = 0.02
    emb_multiplier: float = 1.0  # α_emb
    out_multiplier: float = 1.0  # α_out
    adam_eps: float = 1e-8

    def __post_init__(self) -> None:
        if self.name not in NAMES:
            raise InputError(f"parametrization must be one of {NAMES}, got {self.name!r}")
        for field in ("width", "depth", "base_width", "base_depth", "head_dim"):
            if int(getattr(self, field)) <= 0:
                raise InputError(f"{field} must be a positive integer, got {getattr(self, field)!r}")
        if self.init_std <= 0:
            raise InputError(f"init_std must be positive, got {self.init_std!r}")

    @property
    def width_multiplier(self) -> float:
        """m in the papers: width relative to the base shape."""
        return self.width / self.base_width

    @property
    def depth_multiplier(self) -> float:
        """l in the papers: depth relative to the base shape."""
        return self.depth / self.base_depth

    @property
    def width_scaled(self) -> bool:
        """Whether the μP width rules apply (μP and CompleteP; not SP)."""
        return self.name in ("mup", "completep")

    def init_std_of(self, group: str) -> float:
        """Initial standard deviation of the weights of a parameter group."""
        if group == "hidden" and self.width_scaled:
            return self.init_std / math.sqrt(self.width_multiplier)
        return self.init_std

    def lr_multiplier(self, group: str) -> float:
        """Adam lr of the group = base lr x this."""
        if group not in GROUPS:
            raise InputError(f"unknown parameter group {group!r}; groups: {GROUPS}")
        return 1.0 / self.width_multiplier if (group == "hidden" and self.width_scaled) else 1.0

    def eps(self) -> float:
        """Adam epsilon (small relative to the per-coordinate gradient scale)."""
        if self.name == "mup":
            return self.adam_eps / self.width_multiplier
        if self.name == "completep":
            return self.adam_eps / (self.width_multiplier * self.depth_multiplier)
        return self.adam_eps

    def decays(self, group: str) -> bool:
        return group in ("hidden", "readout")

    @property
    def embedding_multiplier(self) -> float:
        return self.emb_multiplier

    @property
    def readout_multiplier(self) -> float:
        """Logits = readout(h) x this."""
        return self.out_multiplier / self.width_multiplier if self.width_scaled else self.out_multiplier

    @property
    def residual_multiplier(self) -> float:
        """Each residual branch's output x this before it joins the stream."""
        return 1.0 / self.depth_multiplier if self.name == "completep" else 1.0

    @property
    def attention_scale(self) -> float:
        """Multiplier of q.k in attention (SP: 1/sqrt(d_head))."""
        if not self.width_scaled:
            return 1.0 / math.sqrt(self.head_dim)
        base = self.base_head_dim or self.head_dim
        return math.sqrt(base) / self.head_dim

    def param_groups(
        self, named_groups: dict[str, list[Any]], lr: float, weight_decay: float
    ) -> list[dict[str, Any]]:
        """torch.optim.AdamW parameter groups from {group name: [parameters]}.

        Each group keeps ``lr_multiplier`` so a schedule can set
        ``group["lr"] = lr_t * group["lr_multiplier"]``.
        """
        groups = []
        for name, params in named_groups.items():
            if not params:
                continue
            mult = self.lr_multiplier(name)
            groups.append(
                {
                    "params": params,
                    "name": name,
                    "lr": lr * mult,
                    "lr_multiplier": mult,
                    "weight_decay": weight_decay if self.decays(name) else 0.0,
                    "eps": self.eps(),
                }
            )
        return groups
