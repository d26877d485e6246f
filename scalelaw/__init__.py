"""scalelaw: optimal learning rate, batch size and loss for a large LLM run, from
small μP proxy runs.

    import scalelaw
    runs = scalelaw.read_runs("runs.parquet")          # runs table (design.md schema)
    law = scalelaw.fit(runs)                            # lr*(N, D), B*(N, D), L(N, D)
    print(law.summary())
    print(scalelaw.fit_optima(runs).summary())         # each (N, D) cell's optimum
    print(scalelaw.fit_transfer(runs).summary())       # μTransfer: lr* at fixed batch vs N
    p = scalelaw.predict(model_size=7e9, tokens=1.4e12, law=law, seq_len=4096)
    plan = scalelaw.plan(compute=1e23, law=law)        # compute-optimal N*, D*, then lr*, B*, loss
    v = scalelaw.verify(law, spec, width=128, depth=2, tokens=262_144, out="runs/v")  # trains
    runs = scalelaw.import_runs("wandb", "entity/project", seq_len=2048)  # or "mlflow", a URI

Importing scalelaw, fitting and predicting never import torch or matplotlib; training
(``verify``, sweeps, the demo) needs ``pip install 'scalelaw[train]'`` and says so when it
is missing (:class:`MissingExtraError`). Every error
scalelaw raises about its input or data is a :class:`ScalelawError` (see
:mod:`scalelaw.exceptions`): ``InputError``, ``NotEnoughDataError`` or ``FitError``.
"""

from scalelaw.exceptions import (
    DataError,
    FitError,
    InputError,
    LawFileError,
    NotEnoughDataError,
    RunsTableError,
    ScalelawError,
    SpecError,
)
from scalelaw.extras import MissingExtraError
from scalelaw.fit import fit, fit_or_two_stage
from scalelaw.importers import import_runs
from scalelaw.laws import HyperparameterLaw, LossLaw, PowerLaw, load_law
from scalelaw.losslaw import fit_loss_law
from scalelaw.optima import CellOptima, cell_optima, fit_optima
from scalelaw.plan import Plan, best_tokens, cheapest_compute, plan
from scalelaw.predict import PRESETS, Prediction, get_law, predict
from scalelaw.runs import (
    import_steplaw,
    read_runs,
    usable_runs,
    validate_runs,
    write_runs,
)
from scalelaw.target import TargetShape, group_settings
from scalelaw.transfer import TransferFit, fit_transfer, lr_optima_by_batch
from scalelaw.verify import Verification, load_verification, verify

__version__ = "0.2.0"

__all__ = [
    "PRESETS",
    "CellOptima",
    "DataError",
    "FitError",
    "HyperparameterLaw",
    "InputError",
    "LawFileError",
    "LossLaw",
    "MissingExtraError",
    "NotEnoughDataError",
    "Plan",
    "PowerLaw",
    "Prediction",
    "RunsTableError",
    "ScalelawError",
    "SpecError",
    "TargetShape",
    "TransferFit",
    "Verification",
    "best_tokens",
    "cell_optima",
    "cheapest_compute",
    "fit",
    "fit_loss_law",
    "fit_optima",
    "fit_or_two_stage",
    "fit_transfer",
    "get_law",
    "group_settings",
    "import_runs",
    "import_steplaw",
    "load_law",
    "load_verification",
    "lr_optima_by_batch",
    "plan",
    "predict",
    "read_runs",
    "usable_runs",
    "validate_runs",
    "verify",
    "write_runs",
]
