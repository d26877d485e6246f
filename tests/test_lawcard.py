"""Law cards: the recipe a law's runs used, its JSON, its fill from a fit, recipe warnings."""

from __future__ import annotations

import json

import pytest

import scalelaw
from scalelaw.cli import main
from scalelaw.exceptions import InputError
from scalelaw.lawcard import RECIPE_FIELDS, LawCard, card_from_runs
from scalelaw.laws import HyperparameterLaw
from scalelaw.predict import get_law, predict
from scalelaw.synthetic import make_runs

CARD = LawCard(
    optimizer="adamw",
    beta1=0.9,
    beta2=0.95,
    eps=1e-8,
    weight_decay=0.1,
    weight_decay_scaled_by_lr=True,
    schedule="cosine",
    decay_floor=0.1,
    warmup=1_000_000,
    grad_clip=1.0,
    seq_len=2048,
    loss_kind="validation",
    parametrization="mup",
    n_range=(1e7, 1e9),
    d_range=(1e9, 1e11),
    batch_range=(32768, 1048576),
    notes=("test card",),
)


@pytest.fixture(scope="module")
def recipe_runs():
    """Synthetic runs with recipe columns: three with one value, schedule with two."""
    runs = make_runs(seed=0)
    runs["parametrization"] = "mup"
    runs["weight_decay"] = 0.1
    runs["seq_len"] = 1024
    runs["schedule"] = ["wsd" if n > runs["params"].min() else "cosine" for n in runs["params"]]
    return runs


@pytest.fixture(scope="module")
def recipe_law(recipe_runs):
    return scalelaw.fit(recipe_runs, method="optima", n_boot=0, loss_law=False)


def test_card_round_trips_through_json():
    again = LawCard.from_dict(json.loads(json.dumps(CARD.to_dict())))
    assert again == CARD
    assert again.batch_range == (32768.0, 1048576.0) and again.notes == ("test card",)


def test_card_round_trips_inside_a_law(tmp_path):
    law = get_law("steplaw")
    assert law.card is not None and law.card.seq_len == 2048
    path = tmp_path / "law.json"
    law.to_json(path)
    assert scalelaw.load_law(path).card == law.card


def test_law_without_card_still_loads():
    d = get_law("deepseek").to_dict()
    del d["card"]
    assert HyperparameterLaw.from_dict(d).card is None


def test_bad_card_in_a_law_file_is_a_law_file_error():
    d = get_law("deepseek").to_dict()
    d["card"]["colour"] = "red"
    with pytest.raises(scalelaw.LawFileError, match="colour"):
        HyperparameterLaw.from_dict(d)


def test_fitted_card_takes_single_valued_recipe_columns_and_domain(recipe_runs, recipe_law):
    card = recipe_law.card
    assert (card.parametrization, card.weight_decay, card.seq_len) == ("mup", 0.1, 1024)
    assert card.schedule is None and card.varied == ("schedule",)
    assert card.warmup is None and "warmup" not in card.varied  # no such column: unknown
    assert card.n_range == recipe_law.fit_range["N"] and card.d_range == recipe_law.fit_range["D"]
    assert card.batch_range == (recipe_runs["batch_size"].min(), recipe_runs["batch_size"].max())
    text = card.describe()
    assert "several values" in text and "schedule" in text and "parametrization mup" in text
    assert "law card:" in str(recipe_law.summary())
    assert scalelaw.HyperparameterLaw.from_dict(recipe_law.to_dict()).card == card


@pytest.mark.parametrize("method", ["average", "auto", "band", "surface"])
def test_every_fit_method_fills_the_card(recipe_runs, method):
    law = scalelaw.fit(recipe_runs, method=method, n_boot=0, loss_law=False)
    assert law.card is not None and law.card.parametrization == "mup" and law.card.varied == ("schedule",)


def test_card_from_runs_treats_missing_values_as_varied():
    runs = make_runs(seed=0).head(12).copy()
    runs["weight_decay"] = [0.1] * 11 + [None]
    assert card_from_runs(runs).varied == ("weight_decay",)


def test_recipe_mismatch_warns_per_key_with_both_values():
    law = get_law("deepseek")
    p = predict(7e9, 1.4e12, law=law, recipe={"weight_decay": 0.0, "beta2": 0.99, "optimizer": "AdamW"})
    diffs = [w for w in p.warnings if w.startswith("your recipe differs")]
    assert len(diffs) == 2
    assert any("weight_decay 0 vs 0.1" in w for w in diffs)
    assert any("beta2 0.99 vs 0.95" in w for w in diffs)
    assert all(w in p.table() for w in diffs)


def test_recipe_within_tolerance_gives_no_warning():
    recipe = {
        "weight_decay": 0.105,
        "beta1": 0.9,
        "beta2": 0.951,
        "grad_clip": "1.05",
        "schedule": "Multi-Step",
    }
    assert get_law("deepseek").card.differences(recipe) == []
    p = predict(7e9, 1.4e12, law="deepseek", recipe=recipe)
    assert not [w for w in p.warnings if "your recipe" in w]


def test_unknown_card_fields_are_not_differences():
    card = get_law("steplaw").card
    assert card.differences({"tokenizer": "llama", "seq_len": 2048}) == ["tokenizer: unknown for this law"]
    p = predict(1e9, 1e11, law="steplaw", recipe={"weight_decay": 0.1})
    assert [w for w in p.warnings if "your recipe" in w] == [
        "your recipe's weight_decay cannot be checked: unknown for this law"
    ]


def test_betas_compare_on_one_minus_beta():
    assert CARD.differences({"beta2": 0.999}) == ["beta2 0.999 vs 0.95"]


def test_unknown_recipe_key_is_an_input_error_naming_it():
    with pytest.raises(InputError, match="'lr_floor'") as err:
        predict(1e9, 1e11, law="steplaw", recipe={"lr_floor": 0.1})
    assert all(k in str(err.value) for k in RECIPE_FIELDS)
    with pytest.raises(InputError, match="weight_decay"):
        CARD.differences({"weight_decay": "lots"})


def test_default_law_carries_the_steplaw_recipe():
    law = get_law("default")
    assert law.card.seq_len == 2048 and law.card.loss_kind == "smoothed_train"
    assert law.card.n_range == law.fit_range["N"]


def test_cli_recipe_warns(capsys):
    argv = ["predict", "7e9", "1.4e12", "--preset", "deepseek", "--recipe", "weight_decay=0", "--json"]
    assert main([*argv, "--recipe", "beta1=0.9"]) == 0
    warnings = json.loads(capsys.readouterr().out)["warnings"]
    assert [w for w in warnings if "your recipe" in w] == [
        "your recipe differs from the law's: weight_decay 0 vs 0.1 (yours vs the law's)"
    ]


@pytest.mark.parametrize("item", ["colour=red", "weight_decay", "weight_decay=abc"])
def test_cli_bad_recipe_exits_2_with_one_error_line(item, capsys):
    assert main(["predict", "7e9", "1.4e12", "--preset", "deepseek", "--recipe", item]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in captured.err
    assert captured.out == ""


def test_default_card_matches_what_a_fit_of_the_steplaw_table_records(steplaw_runs):
    """When default.json is regenerated, fit() writes its card: it must say the same."""
    fitted, shipped = card_from_runs(steplaw_runs), get_law("default").card
    assert fitted.known == shipped.known
    assert fitted.batch_range == shipped.batch_range == get_law("steplaw").card.batch_range
    assert fitted.n_range == shipped.n_range and fitted.d_range == shipped.d_range
