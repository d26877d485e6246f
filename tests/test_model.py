"""Model and parametrizations: rules per group, μP == SP at the base shape, N and FLOPs."""

from __future__ import annotations

import math

import pytest
import torch

from scalelaw.proxy.model import GPT, ModelConfig
from scalelaw.proxy.parametrization import Parametrization


def test_mup_rules_at_twice_the_base_width():
    p = Parametrization("mup", width=256, depth=2, base_width=128, base_depth=2)
    assert p.lr_multiplier("hidden") == 0.5
    assert p.lr_multiplier("embedding") == p.lr_multiplier("readout") == p.lr_multiplier("gain") == 1.0
    assert p.init_std_of("hidden") == pytest.approx(0.02 / math.sqrt(2))
    assert p.init_std_of("embedding") == p.init_std_of("readout") == 0.02
    assert p.readout_multiplier == 0.5 and p.residual_multiplier == 1.0
    assert p.eps() == pytest.approx(0.5e-8)
    sp = Parametrization("sp", width=256, depth=2, base_width=128, base_depth=2)
    assert sp.lr_multiplier("hidden") == 1.0 and sp.readout_multiplier == 1.0
    assert sp.init_std_of("hidden") == 0.02 and sp.eps() == 1e-8


def test_completep_scales_residual_branches_by_depth():
    p = Parametrization("completep", width=128, depth=8, base_width=128, base_depth=2)
    assert p.residual_multiplier == 0.25 and p.lr_multiplier("hidden") == 1.0
    assert p.eps() == pytest.approx(1e-8 / 4)


def test_attention_scale_follows_head_dim_under_mup():
    assert Parametrization("sp", head_dim=64).attention_scale == pytest.approx(1 / 8)
    assert Parametrization("mup", head_dim=64, base_head_dim=16).attention_scale == pytest.approx(4 / 64)
    assert Parametrization("mup", head_dim=64).attention_scale == pytest.approx(1 / 8)


def test_optimizer_groups_carry_lr_and_decay():
    model = GPT(ModelConfig(width=256, depth=2, base_width=64, parametrization="mup"))
    groups = {g["name"]: g for g in model.optimizer_groups(lr=1e-2, weight_decay=0.1)}
    assert groups["hidden"]["lr"] == pytest.approx(1e-2 / 4)
    assert groups["readout"]["lr"] == pytest.approx(1e-2) and groups["embedding"]["lr"] == pytest.approx(1e-2)
    assert groups["hidden"]["weight_decay"] == 0.1 and groups["gain"]["weight_decay"] == 0.0
    assert groups["embedding"]["weight_decay"] == 0.0
    n_params = sum(p.numel() for g in groups.values() for p in g["params"])
    assert n_params == sum(p.numel() for p in model.parameters())  # every parameter in one group


@pytest.mark.parametrize("param", ["mup", "completep"])
def test_mu_parametrizations_equal_sp_at_the_base_shape(param):
    x = torch.randint(0, 256, (2, 32))
    logits = {}
    for name in ("sp", param):
        torch.manual_seed(0)
        cfg = ModelConfig(
            width=96,
            depth=3,
            base_width=96,
            base_depth=3,
            seq_len=32,
            parametrization=name,
            zero_init=False,
        )
        logits[name] = GPT(cfg)(x)[0]
    torch.testing.assert_close(logits["sp"], logits[param], rtol=0, atol=0)


@pytest.mark.parametrize(("width", "depth"), [(64, 2), (192, 3), (512, 1)])
def test_non_embedding_params_formula_counts_the_hidden_matrices(width, depth):
    cfg = ModelConfig(width=width, depth=depth)
    model = GPT(cfg)
    assert cfg.non_embedding_params == model.non_embedding_params
    everything = sum(p.numel() for p in model.parameters())
    embeddings = 2 * cfg.vocab_size * width  # embedding + untied readout
    gains = (2 * depth + 1) * width
    assert everything == cfg.non_embedding_params + embeddings + gains
    assert (
        cfg.flops_per_token()
        == 6 * cfg.non_embedding_params + 6 * depth * cfg.seq_len * width + 6 * width * 256
    )


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"width \(100\) must be a multiple of head_dim \(32\)"):
        ModelConfig(width=100)
    with pytest.raises(ValueError, match="parametrization must be one of"):
        ModelConfig(parametrization="ntk")


def test_model_compiles():
    cfg = ModelConfig(width=64, depth=1, seq_len=16)
    model = GPT(cfg)
    x = torch.randint(0, 256, (2, 16))
    eager = model(x, x)[1]
    compiled = torch.compile(model, backend="eager")(x, x)[1]
    torch.testing.assert_close(eager, compiled)
