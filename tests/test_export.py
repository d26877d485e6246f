"""Training configs from a prediction: each emitted config parses (TOML, JSON, a nanoGPT
config file read with ``ast``, Megatron flags read with ``shlex``) and gives back the
lr, the global batch in tokens and the sequence length; the law's card sets the schedule."""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import shlex
import subprocess
import sys

import pandas as pd
import pytest

import scalelaw
from scalelaw.cli import main
from scalelaw.export import KINDS, ConfigText, split_batch, to_config
from scalelaw.lawcard import LawCard
from scalelaw.proxy.parametrization import GROUPS, Parametrization

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - python 3.10 (pyproject: tomli)
    import tomli as tomllib

# Option names each trainer defines (the files export.py cites): every emitted key must be one.
TORCHTITAN = {  # torchtitan/config/job_config.py
    "optimizer": {"name", "lr", "beta1", "beta2", "eps", "weight_decay", "implementation"},
    "lr_scheduler": {"warmup_steps", "decay_ratio", "decay_type", "lr_min"},
    "training": {"local_batch_size", "global_batch_size", "seq_len", "max_norm", "steps"},
}
HF = {  # transformers TrainingArguments
    "learning_rate",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_steps",
    "warmup_steps",
    "lr_scheduler_type",
    "lr_scheduler_kwargs",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
}
NANOGPT = {  # nanoGPT train.py globals
    "learning_rate",
    "batch_size",
    "block_size",
    "gradient_accumulation_steps",
    "max_iters",
    "decay_lr",
    "warmup_iters",
    "lr_decay_iters",
    "min_lr",
    "weight_decay",
    "beta1",
    "beta2",
    "grad_clip",
}
MEGATRON = {  # megatron/training/arguments.py
    "--lr",
    "--min-lr",
    "--micro-batch-size",
    "--global-batch-size",
    "--seq-length",
    "--train-iters",
    "--lr-warmup-iters",
    "--lr-decay-style",
    "--lr-wsd-decay-style",
    "--lr-wsd-decay-iters",
    "--weight-decay",
    "--adam-beta1",
    "--adam-beta2",
    "--adam-eps",
    "--clip-grad",
}
RECIPE = LawCard(  # a full card: every schedule option is written
    optimizer="adamw",
    beta1=0.9,
    beta2=0.95,
    eps=1e-8,
    weight_decay=0.1,
    schedule="cosine",
    decay_floor=0.1,
    warmup=2_000 * 4_194_304,  # tokens
    grad_clip=1.0,
    seq_len=4096,
)


def _with_card(card: LawCard | None, n=7e9, d=1.4e12, seq_len=4096):
    law = dataclasses.replace(scalelaw.get_law("steplaw"), card=card)
    return scalelaw.predict(n, d, law=law, seq_len=seq_len)


def parse(text: str, kind: str) -> dict:
    """The emitted config as {option: value}, read the way each format is read: TOML,
    JSON, literal assignments (ast, no exec) or shell words (shlex)."""
    if kind == "torchtitan":
        return tomllib.loads(text)
    if kind == "hf":
        return json.loads(text)
    if kind == "nanogpt":
        values = {}
        for node in ast.parse(text).body:
            assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.dump(node)
            values[node.targets[0].id] = ast.literal_eval(node.value)
        return values
    words = shlex.split(text, comments=True)
    assert len(words) % 2 == 0 and all(w.startswith("--") for w in words[::2]), words
    return dict(zip(words[::2], words[1::2], strict=True))


def lr_batch_seq(config: dict, kind: str, gpus: int) -> tuple[float, int, int]:
    """(lr, global batch in tokens = micro x accumulation x gpus x seq_len, seq_len)."""
    if kind == "torchtitan":
        t = config["training"]
        micro, total = t["local_batch_size"], t["global_batch_size"]
        assert total % (micro * gpus) == 0  # torchtitan/train.py asserts this
        accumulation = total // (micro * gpus)
        return config["optimizer"]["lr"], micro * accumulation * gpus * t["seq_len"], t["seq_len"]
    if kind == "hf":
        micro, accumulation = config["per_device_train_batch_size"], config["gradient_accumulation_steps"]
        seq_len = None  # TrainingArguments has no sequence length: it is in the notes
        return config["learning_rate"], micro * accumulation * gpus, seq_len
    if kind == "nanogpt":
        all_ranks = config["gradient_accumulation_steps"]
        assert all_ranks % gpus == 0  # nanoGPT's train.py asserts this, then divides
        accumulation = all_ranks // gpus
        seq_len = config["block_size"]
        return config["learning_rate"], config["batch_size"] * accumulation * gpus * seq_len, seq_len
    micro, total = int(config["--micro-batch-size"]), int(config["--global-batch-size"])
    assert total % (micro * gpus) == 0
    seq_len = int(config["--seq-length"])
    return float(config["--lr"]), micro * (total // (micro * gpus)) * gpus * seq_len, seq_len


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("law", "seq_len", "gpus", "micro"),
    [("default", 2048, 7, None), ("deepseek", 4096, 1, None), ("steplaw", 2048, 5, 4)],
)
def test_each_config_parses_and_gives_back_lr_batch_and_seq_len(kind, law, seq_len, gpus, micro):
    p = scalelaw.predict(7e9, 1.4e12, law=law, seq_len=seq_len)
    text = p.to_config(kind, gpus=gpus, micro_batch=micro)
    assert isinstance(text, ConfigText) and text.kind == kind
    config = parse(text, kind)
    lr, batch, seq = lr_batch_seq(config, kind, gpus)
    assert lr == pytest.approx(p.lr, rel=1e-5)
    split = text.split
    if kind == "hf":  # sequences per step; the sequence length is stated in the notes
        assert batch == split.global_seqs and any(f"({seq_len} tokens)" in n for n in text.notes)
        batch, seq = batch * seq_len, seq_len
    assert seq == seq_len == p.seq_len
    assert batch == split.tokens
    if split.exact:
        assert abs(batch - p.batch_size) <= seq_len / 2  # round(B / seq_len) sequences
        assert not any("rounded" in w for w in text.warnings)
    if micro is not None:
        assert split.micro_batch == micro
    assert text.steps == round(p.tokens / split.tokens)
    keys = {
        "torchtitan": lambda c: {(s, k) for s in c for k in c[s]},
        "hf": set,
        "nanogpt": set,
        "megatron": set,
    }[kind](config)
    allowed = {
        "torchtitan": {(s, k) for s, ks in TORCHTITAN.items() for k in ks},
        "hf": HF,
        "nanogpt": NANOGPT,
        "megatron": MEGATRON,
    }[kind]
    assert keys <= allowed, keys - allowed


def test_split_prefers_the_largest_exact_micro_batch_up_to_8():
    s = split_batch(1435, 2048, gpus=7)  # 1435 = 5 x 7 x 41: 205 per rank
    assert (s.micro_batch, s.accumulation, s.gpus, s.exact) == (5, 41, 7, True)
    s = split_batch(1024, 4096, gpus=8)
    assert (s.micro_batch, s.accumulation, s.tokens, s.exact) == (8, 16, 1024 * 4096, True)
    s = split_batch(3, 2048, gpus=1)
    assert (s.micro_batch, s.accumulation) == (3, 1)


def test_split_rounds_to_the_nearest_batch_that_splits():
    s = split_batch(1435, 2048, gpus=64)  # 22.4 per rank -> 22
    assert (s.global_seqs, s.micro_batch, s.accumulation, s.exact) == (1408, 2, 11, False)
    s = split_batch(1435, 2048, gpus=8, micro_batch=4)  # multiples of 32: 1440 is nearest
    assert (s.global_seqs, s.micro_batch, s.accumulation, s.exact) == (1440, 4, 45, False)
    s = split_batch(10, 2048, gpus=64)  # fewer sequences than ranks: one each
    assert (s.global_seqs, s.micro_batch, s.accumulation) == (64, 1, 1)


@pytest.mark.parametrize("kind", KINDS)
def test_an_inexact_split_warns_in_the_result_and_the_text(kind):
    p = scalelaw.predict(7e9, 1.4e12, seq_len=2048)  # 1435 sequences do not split over 64 ranks
    text = p.to_config(kind, gpus=64)
    assert text.split.global_seqs == 1408 and not text.split.exact
    (warning,) = [w for w in text.warnings if "rounded" in w]
    assert "1435 sequences" in warning and "1408 sequences" in warning and "-1.9%" in warning
    assert any(note.startswith("warning: the predicted batch of 1435") for note in text.notes)
    if kind != "hf":  # JSON holds no comments: the notes are text.notes / text.comments()
        assert "# warning: the predicted batch of 1435" in text
    else:
        assert "# warning: the predicted batch of 1435" in text.comments()
    assert lr_batch_seq(parse(text, kind), kind, 64)[1] in (1408, 1408 * 2048)


def test_the_card_sets_the_schedule_and_optimizer():
    p = _with_card(RECIPE)
    batch_tokens = p.to_config("hf", gpus=1).split.tokens
    warmup = round(RECIPE.warmup / batch_tokens)  # the same warmup tokens at this batch

    tt = tomllib.loads(p.to_config("torchtitan"))
    assert tt["optimizer"] == {
        "name": "AdamW",
        "lr": pytest.approx(p.lr, rel=1e-5),
        "beta1": 0.9,
        "beta2": 0.95,
        "eps": 1e-8,
        "weight_decay": 0.1,
    }
    assert tt["lr_scheduler"] == {"warmup_steps": warmup, "decay_type": "cosine", "lr_min": 0.1}
    assert tt["training"]["max_norm"] == 1.0

    hf = json.loads(p.to_config("hf"))
    assert hf["lr_scheduler_type"] == "cosine_with_min_lr" and hf["lr_scheduler_kwargs"] == {
        "min_lr_rate": 0.1
    }
    assert (hf["warmup_steps"], hf["adam_beta2"], hf["adam_epsilon"], hf["max_grad_norm"]) == (
        warmup,
        0.95,
        1e-8,
        1.0,
    )

    nano = parse(p.to_config("nanogpt"), "nanogpt")
    assert nano["decay_lr"] is True and nano["lr_decay_iters"] == nano["max_iters"]
    assert nano["min_lr"] == pytest.approx(0.1 * p.lr, rel=1e-5) and nano["warmup_iters"] == warmup

    meg = parse(p.to_config("megatron"), "megatron")
    assert meg["--lr-decay-style"] == "cosine" and float(meg["--min-lr"]) == pytest.approx(
        0.1 * p.lr, rel=1e-5
    )
    assert int(meg["--lr-warmup-iters"]) == warmup and float(meg["--adam-eps"]) == 1e-8


def test_warmup_rule_is_stated_and_steps_kept_when_the_card_gives_steps():
    p = scalelaw.predict(7e9, 1.4e12, law="deepseek", seq_len=4096)  # card: warmup_steps 2000
    text = p.to_config("torchtitan")
    assert tomllib.loads(text)["lr_scheduler"]["warmup_steps"] == 2000 == text.warmup_steps
    assert "2,000 optimizer steps" in text and "stays fixed in the unit they held it" in text
    p = _with_card(RECIPE)
    assert "warmed up over 8,388,608,000 tokens" in p.to_config("megatron")


def test_wsd_is_written_with_its_assumed_decay_and_says_so():
    p = _with_card(dataclasses.replace(RECIPE, schedule="wsd", decay_floor=0.0))
    tt = p.to_config("torchtitan")
    sched = tomllib.loads(tt)["lr_scheduler"]
    assert sched["decay_type"] == "linear" and sched["decay_ratio"] == pytest.approx(0.2, abs=1e-4)
    assert any("does not record the length or shape of its WSD decay" in w for w in tt.warnings)
    hf = json.loads(p.to_config("hf"))
    assert hf["lr_scheduler_type"] == "warmup_stable_decay"
    assert hf["lr_scheduler_kwargs"] == {
        "num_decay_steps": round(0.2 * hf["max_steps"]),
        "decay_type": "linear",
        "min_lr_ratio": 0.0,
    }
    meg = parse(p.to_config("megatron"), "megatron")
    assert (meg["--lr-decay-style"], meg["--lr-wsd-decay-style"]) == ("WSD", "linear")
    assert int(meg["--lr-wsd-decay-iters"]) == round(0.2 * int(meg["--train-iters"]))
    nano = p.to_config("nanogpt")
    assert any("decays by cosine only" in w for w in nano.warnings)


def test_a_schedule_the_trainer_cannot_express_warns():
    p = scalelaw.predict(7e9, 1.4e12, law="deepseek", seq_len=4096)  # multi-step
    for kind in ("torchtitan", "hf", "megatron"):
        text = p.to_config(kind)
        assert any("'multi-step' schedule, to a final lr of 0.1 x peak" in w for w in text.warnings), kind
    assert "decay_type" not in tomllib.loads(p.to_config("torchtitan"))["lr_scheduler"]


def test_unknown_card_fields_are_left_out_with_a_comment():
    p = scalelaw.predict(7e9, 1.4e12)  # the default law's card knows seq_len, not the optimizer
    tt = p.to_config("torchtitan")
    config = tomllib.loads(tt)
    assert set(config["optimizer"]) == {"lr"} and "warmup_steps" not in config["lr_scheduler"]
    for option in ("beta1", "beta2", "eps", "weight_decay", "warmup_steps", "decay_type", "max_norm"):
        assert f"# {option}" in tt and "not known for the law's runs" in tt, option
    assert "warmup: not known" in tt
    hf = p.to_config("hf")
    assert set(json.loads(hf)) == {
        "learning_rate",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "max_steps",
    }
    assert "adam_beta1 (beta1): not known" in hf.comments()
    no_card = _with_card(None).to_config("megatron")
    assert any("has no card" in w for w in no_card.warnings)


def _mup_groups(base_lr: float, width: int, depth: int) -> pd.DataFrame:
    """Per-group values by the proxies' own μP rules (scalelaw.proxy.parametrization)."""
    rules = Parametrization("mup", width=width, depth=depth, base_width=256, base_depth=depth, head_dim=128)
    groups = rules.param_groups({g: [g] for g in GROUPS}, lr=base_lr, weight_decay=0.1)
    multipliers = {"embedding": rules.embedding_multiplier, "readout": rules.readout_multiplier}
    return pd.DataFrame(
        [
            {
                "group": g["name"],
                "lr": g["lr"],
                "init_std": rules.init_std_of(g["name"]),
                "multiplier": multipliers.get(g["name"], 1.0),
                "eps": g["eps"],
                "weight_decay": g["weight_decay"],
            }
            for g in groups
        ]
    )


@pytest.mark.parametrize("kind", KINDS)
def test_mup_groups_are_listed_where_the_trainer_has_no_option(kind):
    p = _with_card(dataclasses.replace(RECIPE, parametrization="mup"))
    assert any("were mup" in w for w in p.to_config(kind).warnings)  # no groups: the lr is the base's
    groups = _mup_groups(p.lr, width=4096, depth=32)
    object.__setattr__(p, "groups", groups)  # the attribute predict(..., shape=...) sets
    text = p.to_config(kind)
    assert not any("were mup" in w for w in text.warnings)
    notes = "\n".join(text.notes)
    assert "μP per-group values for the target shape" in notes
    hidden = groups.set_index("group").loc["hidden"]
    assert hidden["lr"] == pytest.approx(p.lr / 16)  # width x16 over the base: hidden lr / 16
    for value in (hidden["lr"], hidden["init_std"], hidden["eps"]):
        assert f"{value:.6g}" in notes
    if kind != "hf":
        assert "# μP per-group values" in text
    assert lr_batch_seq(parse(text, kind), kind, 1)[0] == pytest.approx(p.lr, rel=1e-5)


def test_bad_arguments_are_input_errors():
    p = scalelaw.predict(7e9, 1.4e12)
    with pytest.raises(scalelaw.InputError, match="kind must be one of"):
        p.to_config("deepspeed")
    with pytest.raises(scalelaw.InputError, match="gpus must be a positive integer"):
        to_config(p, "hf", gpus=0)
    with pytest.raises(scalelaw.InputError, match="micro_batch must be a positive integer"):
        to_config(p, "hf", micro_batch=0)
    with pytest.raises(scalelaw.InputError, match="tokens must be"):
        to_config(p, "hf", tokens=-1.0)


def test_tokens_override_sets_the_steps():
    p = scalelaw.predict(7e9, 1.4e12)
    text = p.to_config("megatron", gpus=7, tokens=1e9)
    assert int(parse(text, "megatron")["--train-iters"]) == round(1e9 / text.split.tokens)


def test_cli_emits_torchtitan_toml(capsys):
    assert main(["predict", "7e9", "1.4e12", "--emit", "torchtitan"]) == 0
    out = capsys.readouterr().out
    config = tomllib.loads(out)
    assert set(config) == {"optimizer", "lr_scheduler", "training"}
    p = scalelaw.predict(7e9, 1.4e12)
    assert config["optimizer"]["lr"] == pytest.approx(p.lr, rel=1e-5)
    assert config["training"]["seq_len"] == 2048
    assert config["training"]["global_batch_size"] == round(p.batch_size / 2048)  # one rank: exact
    assert "[optimizer]" in out and "[lr_scheduler]" in out and "[training]" in out
    assert "torchtitan/config/job_config.py" in out


def test_cli_splits_over_gpus_and_keeps_json_clean(capsys):
    argv = [
        "predict",
        "7e9",
        "1.4e12",
        "--seq-len",
        "4096",
        "--emit",
        "hf",
        "--gpus",
        "8",
        "--micro-batch",
        "2",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    config = json.loads(captured.out)
    assert config["per_device_train_batch_size"] == 2
    assert all(line.startswith("#") for line in captured.err.splitlines())
    assert "transformers src/transformers/training_args.py" in captured.err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--emit", "hf", "--json"], "give one of them"),
        (["--emit", "megatron", "--gpus", "0"], "--gpus must be a positive integer, got 0"),
        (["--emit", "nanogpt", "--micro-batch", "-1"], "--micro-batch must be a positive integer"),
        (["--gpus", "64"], "--gpus splits the batch of an emitted config: give --emit too"),
    ],
)
def test_cli_bad_combinations_are_one_error_line(extra, message, capsys):
    assert main(["predict", "7e9", "1.4e12", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("scalelaw predict: error: ") and message in err[0]


def test_export_imports_no_torch():
    code = (
        "import sys, scalelaw\n"
        "p = scalelaw.predict(7e9, 1.4e12)\n"
        "[p.to_config(k, gpus=8) for k in ('torchtitan', 'hf', 'nanogpt', 'megatron')]\n"
        "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules, 'heavy import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_floats_read_back_as_floats_in_every_format():
    p = _with_card(dataclasses.replace(RECIPE, grad_clip=1.0, beta1=0.9))
    tt = tomllib.loads(p.to_config("torchtitan"))
    assert isinstance(tt["training"]["max_norm"], float) and isinstance(tt["optimizer"]["lr"], float)
    nano = parse(p.to_config("nanogpt"), "nanogpt")
    assert isinstance(nano["grad_clip"], float) and isinstance(nano["batch_size"], int)
    assert math.isclose(nano["learning_rate"], p.lr, rel_tol=1e-5)


def test_sp_target_of_a_mup_law_exports_the_translated_lr():
    import dataclasses

    from scalelaw.lawcard import LawCard

    law = dataclasses.replace(
        scalelaw.get_law("default"), card=LawCard(parametrization="mup", base_width=256, base_depth=4)
    )
    shape = scalelaw.TargetShape(4096, 32, parametrization="sp", translate="hidden")
    p = law.predict(None, 1e12, shape=shape)
    flags = shlex.split(p.to_config("megatron").splitlines()[-1])
    lr = float(flags[flags.index("--lr") + 1])
    assert lr == pytest.approx(p.lr * 256 / 4096, rel=1e-5) == pytest.approx(p.groups["lr"].iloc[0], rel=1e-5)
