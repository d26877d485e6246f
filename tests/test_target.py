"""Per-group values for a target shape (scalelaw.target), checked against the proxies'
own optimizer groups, and the refusals where a law's lr does not carry over."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

import scalelaw
from scalelaw.exceptions import InputError
from scalelaw.lawcard import LawCard
from scalelaw.proxy.model import GPT
from scalelaw.runspec import RunSpec
from scalelaw.synthetic import make_runs
from scalelaw.target import TargetShape, group_settings

ROW_GROUP = {"embedding": "embedding", "query": "hidden", "attention": "hidden", "mlp": "hidden"}
ROW_GROUP.update(readout="readout", norms="gain")


def _mup_law(base_width: int = 64, base_depth: int = 2, parametrization: str = "mup"):
    law = scalelaw.get_law("default")
    card = LawCard(
        parametrization=parametrization, base_width=base_width, base_depth=base_depth, weight_decay=0.1
    )
    return dataclasses.replace(law, card=card)


@pytest.mark.parametrize(
    ("parametrization", "width", "depth"),
    [("mup", 64, 2), ("mup", 512, 2), ("completep", 256, 6), ("sp", 128, 3)],
)
def test_groups_equal_the_proxies_own_optimizer_groups(parametrization, width, depth):
    """The same Parametrization code path as the trainer, so the same numbers: the
    proxy's AdamW groups and initial weights at this shape (base shape 64 x 2)."""
    lr, decay = 3e-3, 0.1
    spec = RunSpec(
        width=width, depth=depth, lr=lr, batch_size=256, tokens=1024, seq_len=64,
        parametrization=parametrization, base_width=64, base_depth=2, head_dim=32, weight_decay=decay,
    )  # fmt: skip
    torch.manual_seed(0)
    model = GPT(spec.model_config(vocab_size=256))
    groups = {g["name"]: g for g in model.optimizer_groups(lr, decay)}
    card = LawCard(parametrization=parametrization, base_width=64, base_depth=2, weight_decay=decay)
    shape = TargetShape(width, depth, head_dim=32, seq_len=64, parametrization=parametrization)
    if parametrization == "sp":
        card = LawCard(parametrization="sp", weight_decay=decay)
    table = group_settings(shape, lr, card=card).set_index("group")
    for row, group in ROW_GROUP.items():
        assert table.loc[row, "lr"] == pytest.approx(groups[group]["lr"], rel=1e-12), row
        assert table.loc[row, "eps"] == pytest.approx(groups[group]["eps"], rel=1e-12), row
        assert table.loc[row, "weight_decay"] == pytest.approx(groups[group]["weight_decay"]), row
    block = model.blocks[0]
    measured = {
        "embedding": model.embed.weight,
        "attention": block.attn.k.weight,
        "query": block.attn.q.weight,
        "readout": model.readout.weight,
    }
    for row, weight in measured.items():
        assert float(weight.detach().std()) == pytest.approx(
            table.loc[row, "init_std"], rel=0.05, abs=1e-12
        ), row
    assert table.loc["readout", "multiplier"] == pytest.approx(model.logit_scale, rel=1e-12)
    assert table.loc["mlp", "multiplier"] == pytest.approx(block.branch_scale, rel=1e-12)
    assert table.attrs["attention_scale"] == pytest.approx(block.attn.scale, rel=1e-12)


def test_width_x8_under_mup():
    base = group_settings(TargetShape(256, 4, head_dim=64), 1e-2, card=_mup_law(256, 4).card).set_index(
        "group"
    )
    wide = group_settings(TargetShape(2048, 4, head_dim=64), 1e-2, card=_mup_law(256, 4).card).set_index(
        "group"
    )
    assert wide.loc["mlp", "lr"] == pytest.approx(base.loc["mlp", "lr"] / 8)
    assert wide.loc["attention", "lr"] == pytest.approx(base.loc["attention", "lr"] / 8)
    assert wide.loc["embedding", "lr"] == base.loc["embedding", "lr"] == pytest.approx(1e-2)
    assert wide.loc["attention", "init_std"] == pytest.approx(
        base.loc["attention", "init_std"] / math.sqrt(8)
    )
    assert wide.loc["readout", "multiplier"] == pytest.approx(base.loc["readout", "multiplier"] / 8)
    assert wide.loc["mlp", "eps"] == pytest.approx(base.loc["mlp", "eps"] / 8)


def test_predict_derives_model_size_and_adds_groups():
    law = _mup_law(256, 4)
    shape = TargetShape(4096, 32, head_dim=128, seq_len=4096)
    p = scalelaw.predict(None, 1.4e12, law=law, shape=shape)
    assert p.model_size == shape.model_size == 32 * (4 * 4096**2 + 3 * 4096 * 10928)
    assert p.seq_len == 4096 and p.batch_size_seqs == round(p.batch_size / 4096)
    hidden = p.groups.set_index("group").loc["mlp", "lr"]
    assert hidden == pytest.approx(p.lr * 256 / 4096)
    assert shape.flops_per_token == pytest.approx(6 * shape.model_size + 6 * 32 * 4096 * 4096)
    back = scalelaw.Prediction.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back.shape == shape and back.groups.equals(p.groups)
    assert "per group (mup target from a mup law, base 256 x 4" in p.table()
    other = scalelaw.predict(1e9, 1.4e12, law=law, shape=shape)  # a typed size wins, with a warning
    assert other.model_size == 1e9 and any("differs from the shape's N" in w for w in other.warnings)


def test_refusals_name_the_problem():
    mup = _mup_law(256, 4)
    with pytest.raises(InputError, match="translate='hidden'"):
        mup.predict(None, 1e12, shape=TargetShape(4096, 32, parametrization="sp"))
    sp = mup.predict(None, 1e12, shape=TargetShape(4096, 32, parametrization="sp", translate="hidden"))
    assert list(sp.groups["lr"]) == pytest.approx([sp.lr * 256 / 4096] * len(sp.groups))
    with pytest.raises(InputError, match="fitted on SP"):
        scalelaw.predict(None, 1e12, law="default", shape=TargetShape(4096, 32))
    with pytest.raises(InputError, match="base_width = 128 but the law's proxies used base_width 256"):
        mup.predict(None, 1e12, shape=TargetShape(4096, 32, base_width=128))
    unknown = dataclasses.replace(mup, card=LawCard(parametrization="mup"))
    with pytest.raises(InputError, match="does not record its proxies' base shape"):
        unknown.predict(None, 1e12, shape=TargetShape(4096, 32))
    assert (
        unknown.predict(None, 1e12, shape=TargetShape(4096, 32, base_width=256, base_depth=4)).groups
        is not None
    )
    with pytest.raises(InputError, match="completep target"):
        mup.predict(None, 1e12, shape=TargetShape(4096, 32, parametrization="completep"))
    with pytest.raises(InputError, match="not a multiple of head_dim"):
        TargetShape(1000, 4, head_dim=128)
    with pytest.raises(InputError, match="give model_size"):
        scalelaw.predict(None, 1e12)


def test_a_fitted_law_records_its_proxies_base_shape(tmp_path):
    runs = make_runs(seed=0).assign(parametrization="mup", base_width=128, base_depth=2)
    law = scalelaw.fit(runs, n_boot=0, loss_law=False, calibrate=False)
    assert (law.card.parametrization, law.card.base_width, law.card.base_depth) == ("mup", 128, 2)
    law.to_json(tmp_path / "law.json")
    assert scalelaw.load_law(tmp_path / "law.json").card.base_width == 128


def test_weight_decay_keeps_the_adamw_timescale_fraction_and_warmup_its_fraction():
    """Wang & Aitchison 2024: tau = 1/(lr lambda) steps, the same fraction of training
    as at the law's largest proxy cell; warmup: the proxies' fraction of tokens."""
    runs = make_runs(seed=0).assign(weight_decay=0.1, warmup=lambda t: (0.05 * t["tokens"]).round())
    law = scalelaw.fit(runs, n_boot=0, loss_law=False, calibrate=False)
    assert law.card.warmup_fraction == pytest.approx(0.05)
    p = law.predict(1e9, 1e11)
    cell = law.optima.sort_values(["params", "tokens"]).iloc[-1]
    proxy = 1 / (cell["lr_opt"] * 0.1 * cell["tokens"] / cell["batch_size_opt"])
    target = 1 / (p.lr * p.weight_decay * p.tokens / p.batch_size)
    assert target == pytest.approx(proxy, rel=1e-9)
    assert p.warmup_tokens == pytest.approx(0.05 * 1e11)
    assert any("Wang & Aitchison" in r for r in p.rules)
    unknown = scalelaw.predict(7e9, 1.4e12, law="default")
    assert unknown.weight_decay is None and "does not record" in unknown.rules[0]


def test_cli_predict_with_a_target_shape(capsys):
    from scalelaw.cli import main

    argv = ["predict", "auto", "1.4T", "--width", "4096", "--depth", "32"]
    assert main([*argv, "--parametrization", "sp"]) == 0
    text = capsys.readouterr().out
    assert f"N = {TargetShape(4096, 32).model_size:.3g}" in text and "per group (sp target" in text
    # the Step Law proxies' init is not known: not the scalelaw proxies' 0.02, not a placeholder
    groups = scalelaw.predict(None, 1.4e12, shape=TargetShape(4096, 32, parametrization="sp")).groups
    assert groups.set_index("group")["init_std"].isna().sum() == 5
    assert groups.set_index("group").loc["norms", "init_std"] == 1.0
    assert main(["predict", "auto", "1.4T", "--width", "4096"]) == 2
    assert "needs both --width and --depth" in capsys.readouterr().err
    assert main(["predict", "auto", "1.4T"]) == 2
    assert main(argv) == 2  # a μP target of the default (SP) law
    assert "fitted on SP" in capsys.readouterr().err


def test_decoupled_weight_decay_keeps_its_own_timescale():
    """A card whose decay is not scaled by lr: τ = 1/λ steps, so λ scales with 1/steps alone,
    and the export turns it into PyTorch's lr-coupled coefficient once (λ / lr)."""
    runs = make_runs(seed=0).assign(weight_decay=1e-4)
    law = scalelaw.fit(runs, n_boot=0, loss_law=False, calibrate=False)
    law = dataclasses.replace(law, card=law.card.replace(weight_decay_scaled_by_lr=False))
    p = law.predict(1e9, 1e11)
    cell = law.optima.sort_values(["params", "tokens"]).iloc[-1]
    proxy_steps = cell["tokens"] / cell["batch_size_opt"]
    assert p.weight_decay == pytest.approx(1e-4 * proxy_steps / (p.tokens / p.batch_size), rel=1e-9)
    assert "1/λ (decay not scaled by lr)" in p.rules[0]
    flags = p.to_config("megatron").splitlines()[-1].split()
    assert float(flags[flags.index("--weight-decay") + 1]) == pytest.approx(p.weight_decay / p.lr, rel=1e-5)
