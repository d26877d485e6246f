"""Hostile sweeps (#15): a spec that cannot run is refused when parsed, naming the field
and value; the run limit is counted before any grid is built; names and output paths
stay inside the output directory; an all-diverged sweep is a result with advice, not a
crash; the coordinate check refuses what cannot give a slope."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_SPEC

from scalelaw.backends.slurm import SlurmOptions
from scalelaw.cli import main
from scalelaw.exceptions import InputError, NotEnoughDataError, SpecError
from scalelaw.runspec import LR_RANGE, RunSpec
from scalelaw.sweep import SweepReport, output_dir, plan_sweep, refinement, run_sweep
from scalelaw.sweepspec import parse_spec, spec_from_dict

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def spec_file(tmp_path: Path, text: str = SMALL_SPEC, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def edit(old: str, new: str) -> str:
    assert old in SMALL_SPEC, old
    return SMALL_SPEC.replace(old, new)


# ---- class 4: what cannot run is refused when the spec is parsed ---------------------

# (old, new, the field and value the message must name)
UNRUNNABLE = [
    ("center = 8e-3", "center = inf", r"field lr\.center: .*got inf"),
    ("center = 8e-3", "center = nan", r"field lr\.center: .*got nan"),
    ("center = 8e-3", "center = 1e300", r"field lr\.center: .*\[1e-08, 100\], got 1e\+300"),
    ("center = 8e-3", "center = -3e-3", r"field lr\.center: .*got -0\.003"),
    ("center = 8e-3", "center = 0.0", r"field lr\.center: .*got 0\.0"),
    ("center = 8e-3", "center = true", r"field lr\.center: must be float, got True"),
    ("center = 8e-3", "center = 1979-05-27", r"field lr\.center: must be float, got datetime\.date"),
    (
        "center = 8e-3",
        "center = 90.0",
        r"fields lr\.center = 90, lr\.step = 2, lr\.count = 2: the grid spans \[63\.6, 127\], outside",
    ),
    ("step = 2.0", "step = 1.0", r"field lr\.step: must be > 1, got 1\.0"),
    ("step = 2.0", "step = nan", r"field lr\.step: .*got nan"),
    ("count = 2", "count = 0", r"field lr\.count: must be positive, got 0"),
    ("count = 2", "count = 2.5", r"field lr\.count: must be int, got 2\.5"),
    ("count = 2", "count = 1000000000", r"field lr\.count: must be at most 100,000 .*got 1000000000"),
    ("count = 2", "count = 1e9", r"field lr\.count: must be at most 100,000 .*got 1000000000\.0"),
    (
        "step = 2.0\ncount = 2",
        "step = 1.0001\ncount = 60000",
        r"240,000 runs = .*60000 lrs \(lr\.count\).*more than one spec may plan",
    ),
    ("[lr]", "[lr]\nvalues = [1e-3]", r"field lr\.center: give either lr\.values or lr\.center"),
    ("[recipe]", "[recipe]\nseeds = [-1]", r"field recipe\.seeds\[0\]: must be >= 0, got -1"),
    (
        "[recipe]",
        "[recipe]\nseeds = [4294967296]",
        r"field recipe\.seeds\[0\]: must be at most .*got 4294967296",
    ),
    ("[recipe]", "[recipe]\nseeds = [true]", r"field recipe\.seeds\[0\]: must be int, got True"),
    ("[recipe]", "[recipe]\nseeds = [0, 0]", r"field recipe\.seeds: repeats a value: 0"),
    ("[recipe]", "[recipe]\nseeds = []", r"field recipe\.seeds: must be a non-empty list, got \[\]"),
    (
        "budgets = [4096]",
        "budgets = [512]",
        r"field tokens\.budgets\[0\]: 512 tokens .* less than one batch of 1,024",
    ),
    (
        "budgets = [4096]",
        "per_param = [0.01]",
        r"field tokens\.per_param\[0\]: 133 tokens .* less than one batch",
    ),
    ("budgets = [4096]", "per_param = [inf]", r"field tokens\.per_param\[0\]: .*got inf"),
    (
        "budgets = [4096]",
        "budgets = [4096, 4100]",
        r"field tokens\.budgets\[1\]: 4,100 tokens is 8 steps .*budgets\[0\]",
    ),
    ("budgets = [4096]", "budgets = [10000000000000000]", r"field tokens\.budgets\[0\]: must be at most"),
    (
        "seq_len = 64",
        "seq_len = 64\nwarmup = nan",
        r"field recipe\.warmup: must be a non-negative number, got nan",
    ),
    (
        "seq_len = 64",
        "seq_len = 64\nwarmup = 1e9",
        r"field recipe\.warmup: 1e\+09 tokens is longer than the shortest",
    ),
    (
        "seq_len = 64",
        "seq_len = 64\nwarmup = 100.5",
        r"field recipe\.warmup: .*whole number of tokens; got 100\.5",
    ),
    (
        "seq_len = 64",
        "seq_len = 64\ndecay_fraction = 1.5",
        r"field recipe\.decay_fraction: .*\[0, 1\], got 1\.5",
    ),
    (
        "seq_len = 64",
        "seq_len = 64\nweight_decay = -0.1",
        r"field recipe\.weight_decay: .*non-negative.*got -0\.1",
    ),
    (
        "seq_len = 64",
        "seq_len = 64\nweight_decay = 200.0",
        r"field recipe\.weight_decay: 200 with lr up to 0\.0113",
    ),
    ("seq_len = 64", "seq_len = 64\ngrad_clip = inf", r"field recipe\.grad_clip: .*got inf"),
    ("seq_len = 64", "seq_len = 0", r"field recipe\.seq_len: must be positive, got 0"),
    ("seq_len = 64", "seq_len = 1000000", r"field recipe\.seq_len: must be at most 16,384"),
    (
        "seq_len = 64",
        'seq_len = 64\ndataset = "/no/such/dir"',
        r"field recipe\.dataset: '/no/such/dir' cannot be read",
    ),
    (
        "seq_len = 64",
        'seq_len = 64\nschedule = ["wsd"]',
        r"field recipe\.schedule: must be str, got \['wsd'\]",
    ),
    ("head_dim = 16", "head_dim = 15", r"field model\.head_dim: must be even"),
    ("head_dim = 16", "head_dim = 0", r"field model\.head_dim: must be >= 2, got 0"),
    ("widths = [32, 64]", "widths = [0]", r"field model\.widths\[0\]: must be positive, got 0"),
    ("widths = [32, 64]", "widths = [1048576]", r"field model\.widths\[0\]: must be at most 16,384"),
    (
        "widths = [32, 64]\ndepths = [1]",
        "widths = [16384]\ndepths = [1000]",
        r"field model\.widths: width 16384 x depth 1000 has 3\.2\de\+12 parameters, more than 8e\+09",
    ),
    ("widths = [32, 64]", "widths = [32, 32]", r"field model\.widths: repeats a value: 32"),
    ("depths = [1]", "depths = [-1]", r"field model\.depths\[0\]: must be positive, got -1"),
    ("depths = [1]", "shapes = [[32, 1]]", r"field model\.shapes: give either shapes or widths"),
    (
        "widths = [32, 64]\ndepths = [1]",
        "shapes = [[32]]",
        r"field model\.shapes\[0\]: must be a \[width, depth\] pair",
    ),
    (
        "widths = [32, 64]\ndepths = [1]",
        "shapes = [[32, 0]]",
        r"field model\.shapes\[0\]\[1\]: must be positive",
    ),
    ("base_width = 32", "base_width = -32", r"field model\.base_width: must be positive, got -32"),
    ("sizes = [512, 1024]", "sizes = [0]", r"field batch\.sizes\[0\]: must be positive, got 0"),
    ("sizes = [512, 1024]", "sizes = [512, 512]", r"field batch\.sizes: repeats a value: 512"),
    ("sizes = [512, 1024]", "sizes = 512", r"field batch\.sizes: must be a non-empty list, got 512"),
    ("max_runs = 50", "max_runs = 0", r"field limits\.max_runs: must be positive, got 0"),
    ("max_runs = 50", "max_runs = 1000000", r"field limits\.max_runs: must be at most 100,000"),
    (
        "[limits]",
        "[weight_decay]\nvalues = [0.1, 500.0]\n[limits]",
        r"field weight_decay\.values: 500 with lr",
    ),
    (
        "max_runs = 50",
        "max_runs = 50\n[weight_decay.values]\nx = 1",
        r"field weight_decay\.values: must be a non-empty list, got \{'x': 1\}",
    ),
    ('name = "test"', 'name = "test"\nwidths = [32]', r"field widths: is not a known field"),
    (
        "[batch]",
        "[batch]\nsize = [512]",
        r"field batch\.size: is not a known field \(typo\?\); did you mean 'sizes'",
    ),
]


@pytest.mark.parametrize(("old", "new", "message"), UNRUNNABLE)
def test_a_spec_that_cannot_run_is_refused_when_parsed(old, new, message):
    with pytest.raises(SpecError, match=message) as err:
        parse_spec(edit(old, new), source="spec.toml")
    assert str(err.value).startswith("spec.toml: ")


@pytest.mark.parametrize("section", ["model", "lr", "batch", "tokens", "recipe", "weight_decay", "limits"])
def test_a_section_that_is_not_a_table_is_refused(section):
    data = tomllib.loads(SMALL_SPEC)
    data[section] = [3]
    with pytest.raises(
        SpecError, match=rf"field {section}: must be a table \(\[{section}\] section\), got \[3\]"
    ):
        spec_from_dict(data, "spec.toml")


def test_a_huge_lr_count_fails_without_building_the_grid():
    """`count = 60000` (x 2 shapes x 2 batches = 240,000 runs) is refused by arithmetic:
    parsing it allocates next to nothing, where the grid would take hundreds of MB."""
    tracemalloc.start()
    try:
        with pytest.raises(SpecError, match="240,000 runs"):
            parse_spec(edit("step = 2.0\ncount = 2", "step = 1.0001\ncount = 60000"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000


def test_a_huge_width_by_depth_ladder_is_counted_before_it_is_built():
    data = tomllib.loads(SMALL_SPEC)
    data["model"].update(widths=list(range(16, 16385, 16)), depths=list(range(1, 1025)), head_dim=16)
    with pytest.raises(SpecError, match=r"field model\.widths: 1024 widths x 1024 depths is more shapes"):
        spec_from_dict(data, "spec.toml")


def test_the_run_count_is_the_product_of_the_axes():
    spec = parse_spec(
        edit("[recipe]", "[recipe]\nseeds = [0, 1]").replace(
            "budgets = [4096]", "budgets = [4096]\nper_param = [1.0]"
        )
    )
    assert spec.n_runs == 2 * 2 * 2 * 2 * 2 == len(spec.run_kwargs())


def test_a_budget_is_never_silently_raised_to_one_batch():
    spec = parse_spec(SMALL_SPEC)
    with pytest.raises(SpecError, match="100 tokens is less than one batch of 512"):
        spec.kwargs_for(32, 1, 8e-3, 512, 100, 0)


def test_dry_run_refuses_a_huge_count_at_once(tmp_path, capsys):
    path = spec_file(tmp_path, edit("count = 2", "count = 1000000000"))
    assert main(["sweep", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "field lr.count" in err[0] and "1000000000" in err[0]


@pytest.mark.parametrize("value", ["0", "-3"])
def test_max_runs_zero_or_negative_is_refused(tmp_path, capsys, value):
    path = spec_file(tmp_path)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--max-runs", value]) == 2
    assert f"--max-runs must be a positive integer, got {value}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_limit_holds_under_dry_run_too_and_yes_lifts_it(tmp_path, capsys):
    path = spec_file(tmp_path)
    assert main(["sweep", str(path), "--dry-run", "--max-runs", "7"]) == 2
    assert "8 runs exceed the limit of 7 (--max-runs)" in capsys.readouterr().err
    assert main(["sweep", str(path), "--dry-run", "--max-runs", "7", "--yes"]) == 0
    assert "8 runs" in capsys.readouterr().out


@pytest.mark.parametrize("dry", [True, False])
def test_an_unwritable_out_is_refused_before_anything_runs(tmp_path, capsys, dry):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = blocker / "sweep"
    argv = ["sweep", str(spec_file(tmp_path)), "--out", str(out)] + (["--dry-run"] if dry else [])
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert f"output directory {out}: cannot write there" in captured.err
    assert "runs planned" not in captured.out  # nothing trained
    assert blocker.read_text() == "not a directory"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_out_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(InputError, match="cannot write there"):
        plan_sweep(parse_spec(SMALL_SPEC), locked / "sweep")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"workers": 0}, r"--workers 0: must be a positive integer"),
        ({"workers": True}, r"--workers True: must be a positive integer"),
        ({"refine_rounds": -1}, r"--refine -1: must be an integer >= 0"),
        ({"max_runs": 0}, r"--max-runs 0: must be a positive integer"),
        ({"backend": "cloud"}, r"--backend 'cloud': choose one of local, ray, slurm"),
        ({"backend": "slurm", "slurm": SlurmOptions(time_min=0)}, r"--time-min 0: must be an integer >= 1"),
        ({"backend": "slurm", "slurm": SlurmOptions(array_parallelism=-1)}, r"--array-parallelism -1"),
    ],
)
def test_run_sweep_checks_its_options_before_touching_the_disk(tmp_path, option, message):
    with pytest.raises(InputError, match=message):
        run_sweep(parse_spec(SMALL_SPEC), tmp_path / "out", log=lambda s: None, **option)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("flag", "value"), [("--workers", "0"), ("--refine", "-1")])
def test_dry_run_checks_the_options_a_run_would_get(tmp_path, capsys, flag, value):
    assert main(["sweep", str(spec_file(tmp_path)), "--dry-run", flag, value]) == 2
    err = capsys.readouterr().err  # refused by the option's parser, naming the option and the value
    assert (
        f"error: {flag} must be a " in err
        and f"integer up to {'4,096' if flag == '--workers' else '100'}, got {value}" in err
    )


def test_run_sweep_refuses_a_spec_whose_runs_cannot_train(tmp_path):
    """A spec built around the parser (dataclasses.replace) still meets RunSpec's checks
    for every run before the first one starts."""
    spec = dataclasses.replace(parse_spec(SMALL_SPEC), lrs=(1e-3, math.inf))
    with pytest.raises(InputError, match=r"RunSpec\.lr = inf"):
        run_sweep(spec, tmp_path / "out", log=lambda s: None)
    assert not (tmp_path / "out").exists()


BASE_RUN = {
    "width": 32,
    "depth": 1,
    "lr": 1e-3,
    "batch_size": 512,
    "tokens": 4096,
    "seq_len": 64,
    "head_dim": 16,
    "base_width": 32,
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": -1}, r"RunSpec\.seed = -1: must be an integer in \[0, 4294967295\]"),
        ({"seed": 2**64}, r"RunSpec\.seed = 18446744073709551616"),
        ({"width": True}, r"RunSpec\.width = True: must be a positive integer"),
        ({"lr": math.nan}, r"RunSpec\.lr = nan: must be a positive finite number"),
        ({"lr": 1e300}, r"RunSpec\.lr = 1e\+300"),
        ({"weight_decay": math.nan}, r"RunSpec\.weight_decay = nan: must be a finite number >= 0"),
        ({"grad_clip": math.inf}, r"RunSpec\.grad_clip = inf"),
        ({"decay_fraction": math.nan}, r"RunSpec\.decay_fraction = nan: must be in \[0, 1\]"),
        ({"head_dim": 6}, r"RunSpec\.head_dim = 6: must be even and divide width"),
        ({"warmup": 1.5}, r"RunSpec\.warmup = 1\.5: must be a whole number"),
        ({"lr": 2.0, "weight_decay": 0.6}, r"RunSpec\.weight_decay = 0\.6: with lr 2: .*= 1\.2 per step"),
        ({"betas": (0.9, 1.0)}, r"RunSpec\.betas = \(0\.9, 1\.0\): must be two numbers in \[0, 1\)"),
        ({"tokens": 10**14}, r"RunSpec\.tokens = 100000000000000: must be at most"),
        ({"device": "gpu0"}, r"RunSpec\.device = 'gpu0': must be 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N'"),
        ({"compile": "yes"}, r"RunSpec\.compile = 'yes': must be true or false"),
    ],
)
def test_a_run_that_cannot_train_is_refused_by_runspec(change, message):
    with pytest.raises(InputError, match=message):
        RunSpec(**{**BASE_RUN, **change})


# ---- class 5: all-diverged cells and sweeps are results, with advice -----------------


def diverged_table(cells: list[tuple[int, bool]]) -> pd.DataFrame:
    """Runs of cells (params, every run diverged?) on a 2 lr x 2 batch grid at 4096 tokens."""
    rows = []
    for params, diverged in cells:
        for i, lr in enumerate((4e-3, 8e-3)):
            for j, batch in enumerate((512, 1024)):
                loss = math.nan if diverged else 3.0 + 0.1 * (i - 0.6) ** 2 + 0.05 * (j - 0.4) ** 2
                rows.append(
                    {
                        "run_id": f"{params}-{i}-{j}",
                        "params": params,
                        "tokens": 4096,
                        "lr": lr,
                        "batch_size": batch,
                        "loss": loss,
                        "diverged": diverged,
                        "width": 32,
                        "depth": 1,
                        "seed": 0,
                    }
                )
    return pd.DataFrame(rows)


def report_of(table: pd.DataFrame) -> SweepReport:
    from scalelaw.optima import cell_optima
    from scalelaw.runs import validate_runs

    optima = cell_optima(validate_runs(table, min_lrs=1), n_boot=0)
    return SweepReport(
        Path("runs/x"),
        planned=len(table),
        ran=len(table),
        table=table,
        optima=optima,
        lr_step=2.0,
        lr_count=2,
    )


def test_a_sweep_where_every_run_diverged_is_summarised_with_the_fix():
    report = report_of(diverged_table([(13312, True), (50176, True)]))
    text = report.summary()  # raised AttributeError: 'Pandas' object has no attribute 'loss_best'
    assert text.count("every one of its 4 runs diverged") == 2
    # the grid 4e-3..8e-3 (step 2, count 2) moved so its top is one step below 4e-3
    assert "WARNING: every run diverged in every cell; every lr from 0.004 to 0.008 diverged" in text
    assert "lr.center = 0.00141" in text and 4e-3 / 2**1.5 == pytest.approx(0.00141, rel=1e-2)
    assert report.all_diverged
    with pytest.raises(
        NotEnoughDataError, match=r"every one of the 8 runs .* diverged \(2 cells\).*lr\.center = 0\.00141"
    ):
        report.check()


def test_a_cell_that_diverged_among_others_is_named_and_the_sweep_stands():
    report = report_of(diverged_table([(13312, False), (50176, True)]))
    text = report.summary()
    assert "every one of its 4 runs diverged" in text and "1 of 2 cells" in text
    assert "   3.0" in text  # the other cell's best loss is still reported
    assert not report.all_diverged
    report.check()  # a result: no error


def test_divergence_at_the_floor_of_the_lr_range_is_not_blamed_on_the_lr():
    table = diverged_table([(13312, True)])
    report = report_of(table.assign(lr=table["lr"] / 4e-3 * LR_RANGE[0]))
    assert "down to the floor of the lr range (1e-08): not the lr's doing" in report.summary()
    with pytest.raises(NotEnoughDataError, match="already reaches the floor of the lr range"):
        report.check()


def test_refinement_steps_an_all_diverged_cell_below_its_grid():
    spec = parse_spec(SMALL_SPEC)
    table = diverged_table([(13312, True)])
    new = refinement(spec, table)
    assert sorted((r["lr"], r["batch_size"]) for r in new) == [
        (4e-3 / spec.lr_step, 512),
        (4e-3 / spec.lr_step, 1024),
    ]
    low = table.assign(lr=table["lr"] / 4e-3 * LR_RANGE[0])  # its lowest lr is already the floor
    assert refinement(spec, low) == []


def test_refining_an_all_diverged_sweep_steps_its_lr_grid_down(tmp_path):
    text = edit("center = 8e-3", "center = 5.0").replace("widths = [32, 64]", "widths = [32]")
    text = text.replace("sizes = [512, 1024]", "sizes = [512]")
    report = run_sweep(parse_spec(text), tmp_path / "out", refine_rounds=1, log=lambda s: None)
    lrs = sorted(report.table["lr"])
    assert report.refine_added == 1 and lrs[0] == pytest.approx(5.0 / 2**0.5 / 2)  # one step below 3.54
    assert report.planned == 3 and not report.failed


def test_a_sweep_that_diverges_everywhere_exits_2_after_its_summary(tmp_path, capsys):
    text = edit("center = 8e-3", "center = 5.0").replace("widths = [32, 64]", "widths = [32]")
    code = main(["sweep", str(spec_file(tmp_path, text)), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 2
    assert "every one of its 4 runs diverged" in captured.out and "lr.center = 1.25" in captured.out
    err = captured.err.strip().splitlines()[-1]
    assert err.startswith("scalelaw sweep: error: every one of the 4 runs") and "lr.center = 1.25" in err
    assert len(pd.read_parquet(tmp_path / "out" / "runs.parquet")) == 4  # the runs are kept


# ---- class 7: names and paths ----------------------------------------------------------

BAD_NAMES = [
    "../../x",
    "../x",
    "/abs/x",
    "",
    ".",
    "..",
    "a/b",
    "a\\b",
    ".hidden",
    "-rf",
    "x" * 101,
    "na\0me",
    "a b",
    "é",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_name_that_is_not_one_safe_component_is_refused(name):
    data = tomllib.loads(SMALL_SPEC)
    data["name"] = name
    with pytest.raises(
        SpecError, match=r"field name: must be one path component .*got " + re.escape(repr(name)[:40])
    ):
        spec_from_dict(data, "spec.toml")


def test_a_name_taken_from_the_file_name_is_made_safe(tmp_path):
    text = SMALL_SPEC.replace('name = "test"\n', "")
    assert parse_spec(text, source="../../my sweep (v2).toml").name == "my-sweep-v2"
    assert parse_spec(text, source="/x/....toml").name == "sweep"


def test_the_default_output_stays_in_runs_dir(tmp_path):
    spec = parse_spec(SMALL_SPEC)
    root = output_dir(spec, runs_dir=tmp_path / "runs")
    assert root.resolve().parent == (tmp_path / "runs").resolve()


def test_a_name_that_bypassed_the_parser_is_still_refused(tmp_path):
    spec = dataclasses.replace(parse_spec(SMALL_SPEC), name="../../escaped")
    with pytest.raises(InputError, match=r"sweep name '\.\./\.\./escaped': must be one path component"):
        plan_sweep(spec, runs_dir=tmp_path / "runs")
    with pytest.raises(InputError, match="must be one path component"):
        output_dir(spec, runs_dir=tmp_path / "runs")


def test_a_link_in_runs_dir_that_leads_outside_is_refused(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "runs" / "test").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InputError, match=r"resolves to .*elsewhere, outside"):
        plan_sweep(parse_spec(SMALL_SPEC), runs_dir=tmp_path / "runs")


def test_an_empty_out_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"--out '': must be a directory path"):
        output_dir(parse_spec(SMALL_SPEC), "")


def test_the_cli_refuses_a_traversing_name_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = spec_file(tmp_path, SMALL_SPEC.replace('name = "test"', 'name = "../../x"'))
    assert main(["sweep", str(path)]) == 2
    assert "field name: must be one path component" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.toml"]


# ---- class 9: the coordinate check refuses what cannot give a slope -------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"widths": (64,)}, r"widths \(64,\) \(--widths\): need at least two distinct widths"),
        ({"widths": (64, 64)}, r"widths \(64, 64\) \(--widths\): need at least two distinct widths"),
        ({"widths": (64, 80)}, r"width 80 \(--widths\) is not a multiple of head_dim 32"),
        ({"widths": (0, 64)}, r"every width \(--widths\) must be an integer in \[32, 16,384\], got 0"),
        ({"widths": "64,128"}, r"widths must be a sequence of integers, got '64,128'"),
        ({"steps": 0}, r"steps \(--steps\) must be an integer in \[1, 10,000\], got 0"),
        ({"steps": -2}, r"steps \(--steps\) must be an integer .*got -2"),
        ({"lr": math.nan}, r"lr \(--lr\) must be a finite number .*got nan"),
        ({"lr": 0.0}, r"lr \(--lr\) must be a finite number .*got 0\.0"),
        ({"seed": -1}, r"seed \(--seed\) must be an integer .*got -1"),
        ({"parametrization": "ntk"}, r"parametrization must be one of"),
    ],
)
def test_coord_check_refuses_what_cannot_give_a_slope(kwargs, message):
    from scalelaw.proxy.coordcheck import coord_check

    with pytest.raises(InputError, match=message):
        coord_check(**{"widths": (64, 128), "steps": 1, **kwargs})


@pytest.mark.parametrize("argv", [["--widths", "64"], ["--widths", "64,128", "--steps", "0"]])
def test_coordcheck_cli_exits_2_for_one_width_or_no_step(argv, capsys):
    assert main(["coordcheck", *argv]) == 2
    captured = capsys.readouterr()
    assert "slope" not in captured.out and "nan" not in captured.out
    assert captured.err.startswith("scalelaw coordcheck: error: ")
    assert ("--widths '64'" if "--steps" not in argv else "--steps") in captured.err


def test_coord_slopes_of_one_width_is_no_slope():
    from scalelaw.proxy.coordcheck import coord_slopes

    table = pd.DataFrame({"width": [64, 64], "step": [1, 1], "layer": ["a", "a"], "rms": [1.0, 2.0]})
    assert np.isnan(coord_slopes(table)["slope"]).all()


def test_a_dataset_directory_too_small_for_a_sequence_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "meta.json").write_text(json.dumps({"vocab_size": 256}))
    np.zeros(50, np.uint16).tofile(data / "train.bin")
    np.zeros(50, np.uint16).tofile(data / "val.bin")
    text = edit("seq_len = 64", f"seq_len = 64\ndataset = {str(data)!r}")
    with pytest.raises(
        SpecError, match=r"field recipe\.dataset: .*train\.bin holds 50 tokens, fewer than one sequence"
    ):
        parse_spec(text)
    np.zeros(5000, np.uint16).tofile(data / "train.bin")
    np.zeros(5000, np.uint16).tofile(data / "val.bin")
    assert parse_spec(text).recipe.dataset == str(data)
    (data / "meta.json").write_text(json.dumps({"vocab_size": "many"}))
    with pytest.raises(SpecError, match=r"vocab_size must be an integer in \[2, 65536\].*got 'many'"):
        parse_spec(text)
