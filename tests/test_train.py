"""The trainer on the real embedded corpus: learning, divergence, determinism, accounting."""

from __future__ import annotations

import json
import math

import pytest

import scalelaw
from scalelaw.proxy.data import ByteTokenizer, load_dataset
from scalelaw.proxy.train import RunSpec, lr_factor, train

TINY = {
    "width": 64,
    "depth": 2,
    "batch_size": 2048,
    "seq_len": 64,
    "base_width": 64,
    "val_tokens": 8192,
}


def test_corpus_is_real_english_with_a_fixed_split():
    data = load_dataset()
    assert len(data.train) > 10_000_000 and len(data.val) > 100_000 and data.vocab_size == 256
    text = ByteTokenizer().decode(data.train[:2000])
    assert text.count(" the ") + text.count(" of ") >= 5


def test_loss_falls_within_a_few_dozen_steps(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    result = train(RunSpec(lr=1e-2, tokens=40 * 2048, **TINY), metrics_path=metrics)
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert len(lines) == 40 and lines[-1]["tokens"] == 40 * 2048
    assert lines[0]["loss"] > 5.0  # ~ln 256 at the start
    assert not result.diverged and result.loss < 3.2 and result.loss < lines[0]["loss"] - 2
    assert result.tokens_per_s > 0 and result.flops == pytest.approx(
        result.tokens_trained
        * scalelaw.proxy.model.ModelConfig(width=64, depth=2, seq_len=64).flops_per_token()
    )


def test_absurd_lr_is_reported_as_diverged_not_raised():
    result = train(RunSpec(lr=30.0, tokens=30 * 2048, **TINY))
    assert result.diverged and math.isnan(result.loss) and result.steps < 30
    row = result.to_row()
    assert row["tokens"] == 30 * 2048 and row["diverged"]


def test_same_seed_same_loss_and_accumulation_is_exact():
    spec = RunSpec(lr=1e-2, tokens=8 * 2048, seed=3, **TINY)
    a, b = train(spec), train(spec)
    assert a.loss == b.loss and a.train_loss == b.train_loss
    accumulated = train(RunSpec(lr=1e-2, tokens=8 * 2048, seed=3, micro_batch_size=512, **TINY))
    assert accumulated.loss == pytest.approx(a.loss, rel=1e-5)
    other_seed = train(RunSpec(lr=1e-2, tokens=8 * 2048, seed=4, **TINY))
    assert other_seed.loss != a.loss


def test_result_is_a_valid_runs_table_row():
    rows = [train(RunSpec(lr=lr, tokens=4 * 2048, **TINY)).to_row() for lr in (3e-3, 1e-2, 3e-2)]
    table = scalelaw.validate_runs(__import__("pandas").DataFrame(rows))
    assert table["params"].nunique() == 1 and table["run_id"].is_unique
    assert set(table["parametrization"]) == {"mup"} and (table["loss_kind"] == "validation").all()


def test_schedules():
    spec = RunSpec(
        width=64, depth=2, lr=1.0, batch_size=1024, tokens=100 * 1024, warmup=10 * 1024, seq_len=64
    )
    assert [lr_factor(spec, s) for s in (0, 9)] == [0.1, 1.0]
    assert lr_factor(spec, 79) == 1.0 and lr_factor(spec, 80) == pytest.approx(1.0)
    assert lr_factor(spec, 99) == pytest.approx(0.05)
    cosine = RunSpec(**{**spec.__dict__, "schedule": "cosine"})
    assert lr_factor(cosine, 10) == pytest.approx(1.0) and lr_factor(cosine, 55) == pytest.approx(
        0.5, abs=0.02
    )
    linear = RunSpec(**{**spec.__dict__, "schedule": "linear"})
    assert lr_factor(linear, 55) == pytest.approx(0.5, abs=0.02) and lr_factor(linear, 99) < 0.02


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"batch_size": 1000}, r"RunSpec.batch_size = 1000: must be a multiple of seq_len \(64\)"),
        ({"lr": -1.0}, r"RunSpec.lr = -1.0: must be a positive finite number"),
        ({"schedule": "step"}, r"RunSpec.schedule = 'step': must be one of"),
        ({"tokens": 100}, r"RunSpec.tokens = 100: must be at least one batch"),
    ],
)
def test_bad_specs_name_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        RunSpec(**{"lr": 1e-2, "tokens": 8 * 2048, **TINY, **change})
