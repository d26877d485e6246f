"""A prediction as a training config: torchtitan, Hugging Face, nanoGPT or Megatron-LM.

    text = scalelaw.predict(7e9, 1.4e12).to_config("torchtitan", gpus=64)
    print(text)              # a TOML fragment: [optimizer], [lr_scheduler], [training]
    text.warnings            # what could not be written exactly (never only in the text)

:func:`to_config` writes the option names each project really uses; every renderer below
names the file its names come from, and so does the config it writes. What goes in:

- **lr**: the prediction's peak lr. **Sequence length**: the prediction's ``seq_len``.
- **Batch**: the global batch in sequences, ``round(batch_size / seq_len)`` (at least
  one), split into micro-batch x gradient accumulation x data-parallel ranks (``gpus``).
  The default micro-batch is the largest one of at most 8 sequences that splits the batch
  exactly; when no split is exact the batch is rounded to the nearest one that is, and
  the config and :attr:`ConfigText.warnings` say so.
- **Steps**: the target's tokens / the global batch in tokens, rounded.
- **Schedule** from the law's card (:class:`scalelaw.lawcard.LawCard`): its decay shape
  and floor, weight decay, betas, epsilon and clipping. A field the card does not know is
  left out (the trainer's default applies) with a comment saying it is not known.
  **Warmup** rule: a card records warmup only when all the law's runs used one value, so
  the runs held it fixed in that unit, and the config keeps it fixed: the same number of
  tokens (``card.warmup``; steps = tokens / the target's batch) or the same number of
  optimizer steps (``card.warmup_steps``). The config states this rule.
- **μP per-group values**: when the prediction carries ``groups`` (a DataFrame, one row
  per parameter group: ``group``, ``lr``, ``init_std``, ``multiplier``, ``eps``,
  ``weight_decay``), they are listed in a labelled comment block: none of these four
  trainers has per-group μP options.

Hugging Face's config is a JSON object of ``TrainingArguments`` keyword arguments and
JSON holds no comments: its notes are :attr:`ConfigText.notes` (the CLI prints them on
stderr). No torch, no eval: the texts are built from numbers and parsed back in the tests.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shlex
import textwrap
from dataclasses import dataclass
from typing import Any

from scalelaw import validate
from scalelaw.exceptions import InputError
from scalelaw.lawcard import LawCard

KINDS = ("torchtitan", "hf", "nanogpt", "megatron")
MAX_MICRO_BATCH = 8  # default micro-batch: the largest exact one up to this many sequences
GROUP_COLUMNS = ("group", "lr", "init_std", "multiplier", "eps", "weight_decay")

# Where each trainer's option names come from (the files read to write this module).
SOURCES = {
    "torchtitan": (
        "pytorch/torchtitan torchtitan/config/job_config.py (Optimizer, LRScheduler, Training), "
        "torchtitan/components/lr_scheduler.py (lr_min is a fraction of lr), torchtitan/train.py "
        "(accumulation = global_batch_size / (local_batch_size x data-parallel degree)); layout as "
        "torchtitan/models/llama3/train_configs/llama3_8b.toml"
    ),
    "hf": (
        "huggingface/transformers src/transformers/training_args.py (TrainingArguments) and "
        "src/transformers/optimization.py (lr_scheduler_kwargs of cosine_with_min_lr and "
        "warmup_stable_decay)"
    ),
    "nanogpt": (
        "karpathy/nanoGPT train.py (its config globals; gradient_accumulation_steps counts all "
        "ranks: train.py divides it by the world size) and config/train_gpt2.py (the format)"
    ),
    "megatron": (
        "NVIDIA/Megatron-LM megatron/training/arguments.py (_add_training_args, "
        "_add_learning_rate_args, _add_regularization_args, _add_data_args)"
    ),
}


class ConfigText(str):
    """The config text, with what could not be said in it exactly.

    ``warnings``: each way the config departs from the prediction or the law's recipe
    (the batch rounded to split, a schedule the trainer cannot express, ...); the texts
    that hold comments carry them too. ``notes``: every comment line (for Hugging Face's
    JSON, the only place they are). ``kind``, ``split`` (:class:`BatchSplit`), ``steps``
    and ``warmup_steps`` (None: not known) as written.
    """

    kind: str
    warnings: tuple[str, ...]
    notes: tuple[str, ...]
    split: BatchSplit
    steps: int
    warmup_steps: int | None

    def __new__(cls, text: str, **attributes: Any) -> ConfigText:
        obj = super().__new__(cls, text)
        for name, value in attributes.items():
            setattr(obj, name, value)
        return obj

    def comments(self) -> str:
        """The notes as ``# `` comment lines (what the CLI prints on stderr for JSON)."""
        return "\n".join(f"# {line}" if line else "#" for line in self.notes)


@dataclass(frozen=True)
class BatchSplit:
    """A global batch of ``micro_batch x accumulation x gpus`` sequences of ``seq_len``.

    ``requested_seqs``: the prediction's batch in sequences, ``round(B / seq_len)``;
    :attr:`exact` says whether the split kept it.
    """

    micro_batch: int
    accumulation: int
    gpus: int
    seq_len: int
    requested_seqs: int

    @property
    def global_seqs(self) -> int:
        return self.micro_batch * self.accumulation * self.gpus

    @property
    def tokens(self) -> int:
        """Tokens per optimizer step."""
        return self.global_seqs * self.seq_len

    @property
    def exact(self) -> bool:
        return self.global_seqs == self.requested_seqs

    def describe(self) -> str:
        return (
            f"{self.global_seqs} sequences = micro-batch {self.micro_batch} x accumulation "
            f"{self.accumulation} x {self.gpus} data-parallel rank{'s' if self.gpus > 1 else ''} "
            f"= {self.tokens:,} tokens per step"
        )


def _largest_divisor(n: int, at_most: int) -> int:
    return max(d for d in range(1, min(n, at_most) + 1) if n % d == 0)


def split_batch(global_seqs: int, seq_len: int, gpus: int = 1, micro_batch: int | None = None) -> BatchSplit:
    """Split ``global_seqs`` sequences into micro-batch x accumulation x ``gpus``.

    ``micro_batch`` None: the largest micro-batch up to 8 sequences that divides each
    rank's share. When ``global_seqs`` cannot be split exactly (not a multiple of ``gpus``,
    or of ``micro_batch x gpus`` when the micro-batch is given), the nearest global batch
    that can (at least one micro-batch per rank); ``BatchSplit.exact`` is then False.
    """
    global_seqs, seq_len, gpus = (
        _check_count(label, value)
        for label, value in (("global batch", global_seqs), ("seq_len", seq_len), ("gpus", gpus))
    )
    if micro_batch is not None:
        micro_batch = _check_count("micro_batch", micro_batch)
        unit = micro_batch * gpus
        accumulation = max(1, math.floor(global_seqs / unit + 0.5))
        return BatchSplit(micro_batch, accumulation, gpus, seq_len, global_seqs)
    per_rank = max(1, math.floor(global_seqs / gpus + 0.5))  # = global_seqs / gpus when exact
    micro = _largest_divisor(per_rank, MAX_MICRO_BATCH)
    return BatchSplit(micro, per_rank // micro, gpus, seq_len, global_seqs)


def _check_count(label: str, value: Any) -> int:
    return validate.count(value, label)


# ---------------------------------------------------------------------------------------
# What every trainer gets: one plan, then one renderer per trainer.


@dataclass(frozen=True)
class _Plan:
    lr: float
    seq_len: int
    split: BatchSplit
    steps: int
    warmup_steps: int | None
    schedule: str | None  # "cosine", "linear", "wsd", "constant", another name, or None
    decay_floor: float | None  # final lr / peak lr
    wsd_decay_steps: int | None
    weight_decay: float | None
    beta1: float | None
    beta2: float | None
    eps: float | None
    grad_clip: float | None
    optimizer: str | None
    header: tuple[str, ...]  # comment lines every config starts with
    warnings: tuple[str, ...]
    groups: Any  # DataFrame or None


def to_config(
    prediction: Any,
    kind: str,
    *,
    gpus: int = 1,
    micro_batch: int | None = None,
    tokens: float | None = None,
) -> ConfigText:
    """``prediction`` as a ``kind`` config: "torchtitan" (TOML fragment), "hf" (JSON
    object of ``TrainingArguments`` keyword arguments), "nanogpt" (a config/*.py file of
    ``name = value`` lines) or "megatron" (comment lines, then one line of shell-quoted
    flags). See the module docstring for what goes in.

    ``gpus``: data-parallel ranks (the GPUs, without tensor or pipeline parallelism).
    ``micro_batch``: sequences per forward pass per rank (default: the largest exact one
    up to 8). ``tokens``: training tokens (default: the prediction's target).
    Returns a :class:`ConfigText` (a ``str``) with ``warnings`` and ``notes``.
    """
    if kind not in KINDS:
        raise InputError(f"config kind must be one of {', '.join(KINDS)}, got {kind!r}")
    plan = _plan(prediction, gpus=gpus, micro_batch=micro_batch, tokens=tokens, kind=kind)
    render = {"torchtitan": _torchtitan, "hf": _hf, "nanogpt": _nanogpt, "megatron": _megatron}[kind]
    text, notes, warnings = render(plan)
    return ConfigText(
        text,
        kind=kind,
        warnings=warnings,
        notes=tuple(notes),
        split=plan.split,
        steps=plan.steps,
        warmup_steps=plan.warmup_steps,
    )


def _plan(prediction: Any, *, gpus: int, micro_batch: int | None, tokens: float | None, kind: str) -> _Plan:
    lr, batch, seq_len = prediction.lr, prediction.batch_size, prediction.seq_len
    groups = getattr(prediction, "groups", None)
    shape = getattr(prediction, "shape", None)
    if shape is not None and groups is not None and shape.parametrization == "sp" and len(groups):
        lr = float(groups["lr"].iloc[0])  # one global lr: the translated one (every group's)
    for label, value in (("lr", lr), ("batch_size", batch)):
        if value is None or not math.isfinite(value) or value <= 0:
            raise InputError(f"the prediction's {label} is {value!r}: no config can be written from it")
    tokens = validate.tokens(prediction.tokens if tokens is None else tokens)
    gpus = _check_count("gpus", gpus)
    if micro_batch is not None:
        micro_batch = _check_count("micro_batch", micro_batch)

    warnings: list[str] = []
    requested = max(1, round(batch / seq_len))
    if batch < seq_len / 2:
        warnings.append(
            f"the predicted batch ({batch:,.0f} tokens) is under half a sequence of {seq_len}: "
            "the config uses one sequence per step; a shorter seq_len would follow the law more closely"
        )
    split = split_batch(requested, seq_len, gpus, micro_batch)
    if not split.exact:
        change = split.global_seqs / requested - 1
        why = (
            f"is not a multiple of micro-batch {micro_batch} x {gpus} ranks"
            if micro_batch is not None
            else f"does not split over {gpus} data-parallel ranks"
        )
        warnings.append(
            f"the predicted batch of {requested} sequences ({batch:,.0f} tokens) {why}: rounded to "
            f"the nearest batch that does, {split.global_seqs} sequences ({split.tokens:,} tokens, "
            f"{change:+.1%})"
        )
    steps = max(1, round(tokens / split.tokens))

    law = getattr(prediction, "fitted_law", None)
    card: LawCard | None = getattr(law, "card", None) if law is not None else None
    if law is None:
        warnings.append("the prediction carries no law (read from JSON?): its recipe is not known")
    elif card is None:
        warnings.append(f"the law {prediction.law!r} has no card: its recipe is not known")
    known = card if card is not None else LawCard()

    header = [
        f"scalelaw: {_KIND_NAMES[kind]} config for N = {prediction.model_size:.3g} non-embedding "
        f"params, D = {tokens:.3g} tokens",
        f"law: {prediction.law}",
        f"peak lr {prediction.display('lr')} ({_interval(prediction, 'lr')}); batch "
        f"{prediction.display('batch_size')} tokens = {prediction.display_seqs()} sequences of "
        f"{seq_len} ({_interval(prediction, 'batch_size')})",
        f"option names from {SOURCES[kind]}",
        f"batch: {split.describe()}",
        f"steps: {steps:,} x {split.tokens:,} tokens = {steps * split.tokens:.4g} tokens",
    ]
    for quantity, label in (("lr", "lr"), ("batch_size", "batch size")):
        value = getattr(prediction, quantity)
        bound = getattr(prediction, f"{quantity}_bound")
        if bound is not None or not getattr(prediction, f"{quantity}_determined"):
            warnings.append(
                f"the {label} is {'only bounded' if bound else 'not determined'} at this target: the "
                f"config uses the law's central value ({value:.3g}); see the prediction's warnings"
            )

    warmup_steps, rule = _warmup(known, card is None, split.tokens, steps, warnings)
    header.append(rule)
    schedule = _schedule_name(known.schedule)
    wsd_decay_steps = None
    if schedule == "wsd":
        from scalelaw.runspec import RunSpec  # no torch: the proxies' recipe defaults

        fraction = RunSpec.decay_fraction
        wsd_decay_steps = max(1, round(fraction * steps))
        warnings.append(
            f"the law's card does not record the length or shape of its WSD decay: the config "
            f"assumes scalelaw's proxy recipe, a linear decay over the last {fraction:.0%} of steps "
            f"({wsd_decay_steps:,}); check it against the law's runs"
        )
    if known.seq_len is not None and known.seq_len != seq_len:
        header.append(
            f"seq_len: the law's runs used {known.seq_len}; this config uses the prediction's {seq_len}"
        )
    weight_decay = known.weight_decay
    if getattr(prediction, "weight_decay", None) is not None:  # scaled to the target (Prediction.rules)
        weight_decay = prediction.weight_decay
        header += [r for r in prediction.rules if r.startswith("weight decay")]
    if weight_decay is not None and known.weight_decay_scaled_by_lr is False:
        header.append(
            f"weight decay: the law's runs decayed by {weight_decay:g} per step, not lr x wd; "
            f"these trainers' AdamW multiply by lr, so the coefficient written is {weight_decay:g} / lr"
        )
        weight_decay = weight_decay / lr
    if known.optimizer is not None and known.optimizer.lower() not in ("adamw", "adam"):
        warnings.append(
            f"the law's runs used the {known.optimizer} optimizer: its lr does not carry over to "
            "the AdamW these configs set up"
        )

    groups = getattr(prediction, "groups", None)
    if groups is not None and not hasattr(groups, "columns"):
        raise InputError(f"prediction.groups must be a DataFrame or None, got {type(groups).__name__}")
    if groups is None and (known.parametrization or "").lower() in ("mup", "completep"):
        warnings.append(
            f"the law's runs were {known.parametrization}: its lr is the lr of their base shape, and "
            "the single lr written here is right only for a model of that shape; predict with the "
            "target's shape for the per-group lr, init std and multipliers"
        )
    header += [f"prediction warning: {w}" for w in prediction.warnings]
    return _Plan(
        lr=lr,
        seq_len=seq_len,
        split=split,
        steps=steps,
        warmup_steps=warmup_steps,
        schedule=schedule,
        decay_floor=known.decay_floor,
        wsd_decay_steps=wsd_decay_steps,
        weight_decay=weight_decay,
        beta1=known.beta1,
        beta2=known.beta2,
        eps=known.eps,
        grad_clip=known.grad_clip,
        optimizer=known.optimizer,
        header=tuple(header),
        warnings=tuple(warnings),
        groups=groups,
    )


_KIND_NAMES = {
    "torchtitan": "torchtitan",
    "hf": "Hugging Face Trainer",
    "nanogpt": "nanoGPT",
    "megatron": "Megatron-LM",
}


def _interval(prediction: Any, quantity: str) -> str:
    return f"{100 * prediction.confidence:g}% {prediction.display_interval(quantity)}"


def _warmup(
    card: LawCard, no_card: bool, batch_tokens: int, steps: int, warnings: list[str]
) -> tuple[int | None, str]:
    """Warmup steps for the target (None: not known) and the line saying how."""
    if card.warmup_fraction is not None:  # scalelaw sweeps: a fixed fraction of each run
        warmup = 0 if card.warmup_fraction == 0 else max(1, round(card.warmup_fraction * steps))
        return warmup, (
            f"warmup: {warmup:,} steps. The law's runs all warmed up over {card.warmup_fraction:.3g} of "
            "their tokens; rule: the same fraction of this run"
        )
    if card.warmup is not None:
        warmup = 0 if card.warmup == 0 else max(1, round(card.warmup / batch_tokens))
        held = f"{card.warmup:,} tokens", "the same tokens at this batch"
    elif card.warmup_steps is not None:
        warmup = card.warmup_steps
        held = f"{warmup:,} optimizer steps", "the same steps"
    else:
        why = (
            "the law has no card"
            if no_card
            else "it varied across the law's runs"
            if "warmup" in card.varied
            else "the law's card does not record it"
        )
        return None, f"warmup: not known ({why}); left out, so the trainer's default applies"
    if warmup >= steps:
        warnings.append(
            f"the law's warmup ({warmup:,} steps) is not shorter than training: cut to {steps - 1}"
        )
        warmup = steps - 1
    return warmup, (
        f"warmup: {warmup:,} steps. The law's runs all warmed up over {held[0]}; rule: a warmup the "
        f"runs held fixed stays fixed in the unit they held it, so {held[1]}"
    )


def _schedule_name(schedule: str | None) -> str | None:
    if schedule is None:
        return None
    name = schedule.strip().lower().replace("_", "-")
    aliases = {"cos": "cosine", "warmup-stable-decay": "wsd", "const": "constant"}
    return aliases.get(name, name)


def _float(x: float) -> str:
    """A float every format here reads as a float (TOML wants a '.' or an exponent)."""
    text = f"{x:.6g}"
    return text if any(c in text for c in ".en") else text + ".0"


def _comment_lines(lines: list[str] | tuple[str, ...], width: int = 100) -> list[str]:
    """Notes wrapped to ``width`` with continuation indent (the notes, not yet '# ')."""
    out: list[str] = []
    for line in lines:
        wrapped = textwrap.wrap(line, width=width - 2, subsequent_indent="  ") or [""]
        out += wrapped
    return out


def _groups_lines(groups: Any, trainer: str) -> list[str]:
    """The μP per-group table as note lines; [] when there are no groups."""
    if groups is None or len(groups) == 0:
        return []
    columns = [c for c in GROUP_COLUMNS if c in groups.columns]
    columns += [c for c in groups.columns if c not in columns]
    if groups.attrs.get("parametrization") == "sp":
        title = (
            "per-group values for the target shape (standard parametrization: the single lr of this "
            "config is every group's; the init std and multipliers are for you to set)"
        )
    else:
        title = (
            f"μP per-group values for the target shape ({trainer} has no per-group option: build these "
            "optimizer param groups and this init yourself; the single lr of this config is the base shape's)"
        )
    lines = [
        title,
        "  " + "".join(f"{c:<14}" for c in columns),
    ]
    for _, row in groups.iterrows():
        cells = [
            f"{value:<14.6g}"
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            else f"{value!s:<14}"
            for value in (row[c] for c in columns)
        ]
        lines.append("  " + "".join(cells).rstrip())
    return lines


def _unknown(option: str, what: str = "") -> str:
    what = f" ({what})" if what and what != option else ""
    return f"{option}{what}: not known for the law's runs; left out, the trainer's default applies"


def _assemble(plan: _Plan, body_notes: list[str]) -> tuple[list[str], tuple[str, ...]]:
    """All note lines (header, warnings, body notes, groups) and the warnings."""
    notes = list(plan.header) + [f"warning: {w}" for w in plan.warnings] + body_notes
    return notes, plan.warnings


def _commented(notes: list[str]) -> str:
    return "\n".join(f"# {line}" if line else "#" for line in _comment_lines(notes))


# ---------------------------------------------------------------------------------------
# torchtitan: TOML sections [optimizer], [lr_scheduler], [training]. Names from
# pytorch/torchtitan torchtitan/config/job_config.py: Optimizer(name, lr, beta1, beta2,
# eps, weight_decay), LRScheduler(warmup_steps, decay_ratio, decay_type in linear | sqrt |
# cosine, lr_min = a fraction of lr, per torchtitan/components/lr_scheduler.py),
# Training(local_batch_size, global_batch_size, seq_len, max_norm, steps); accumulation is
# global_batch_size / (local_batch_size x data-parallel degree) (torchtitan/train.py).


def _toml_line(key: str, value: Any) -> str:
    if isinstance(value, str):
        return f"{key} = {json.dumps(value)}"  # a TOML basic string is a JSON string here
    if isinstance(value, float):
        return f"{key} = {_float(value)}"
    return f"{key} = {value}"


def _torchtitan(plan: _Plan) -> tuple[str, list[str], tuple[str, ...]]:
    body: list[str] = []
    sections: dict[str, list[str]] = {"optimizer": [], "lr_scheduler": [], "training": []}

    def put(section: str, key: str, value: Any) -> None:
        sections[section].append(_toml_line(key, value))

    def note(section: str, text: str) -> None:
        sections[section] += [f"# {line}" for line in _comment_lines([text])]

    if plan.optimizer is not None and plan.optimizer.lower() in ("adamw", "adam"):
        put("optimizer", "name", "AdamW")
    elif plan.optimizer is None:
        note("optimizer", _unknown("name", "the optimizer"))
    put("optimizer", "lr", plan.lr)
    for key, value, what in (
        ("beta1", plan.beta1, "beta1"),
        ("beta2", plan.beta2, "beta2"),
        ("eps", plan.eps, "Adam epsilon"),
        ("weight_decay", plan.weight_decay, "weight decay"),
    ):
        if value is None:
            note("optimizer", _unknown(key, what))
        else:
            put("optimizer", key, float(value))

    if plan.warmup_steps is None:
        note("lr_scheduler", _unknown("warmup_steps", "warmup") + " (200 steps)")
    else:
        put("lr_scheduler", "warmup_steps", plan.warmup_steps)
    schedule, floor = plan.schedule, plan.decay_floor
    expressible = schedule in (None, "cosine", "linear", "wsd", "constant")
    if schedule is None:
        note("lr_scheduler", _unknown("decay_type", "the schedule"))
    elif schedule == "constant":
        put("lr_scheduler", "decay_ratio", 0.0)
    elif schedule == "wsd":
        put("lr_scheduler", "decay_ratio", plan.wsd_decay_steps / plan.steps)
        put("lr_scheduler", "decay_type", "linear")
    elif schedule in ("cosine", "linear"):
        note("lr_scheduler", f"no decay_ratio: the {schedule} decay starts right after warmup")
        put("lr_scheduler", "decay_type", schedule)
    else:
        note(
            "lr_scheduler", f"the law's runs used a {schedule!r} schedule, which torchtitan has no option for"
        )
    if expressible and schedule not in (None, "constant"):
        if floor is None:
            note("lr_scheduler", _unknown("lr_min", "the decay floor") + " (0.0: decay to zero)")
        else:
            put("lr_scheduler", "lr_min", float(floor))

    put("training", "local_batch_size", plan.split.micro_batch)
    put("training", "global_batch_size", plan.split.global_seqs)
    put("training", "seq_len", plan.seq_len)
    if plan.grad_clip is None:
        note("training", _unknown("max_norm", "gradient clipping"))
    else:
        put("training", "max_norm", float(plan.grad_clip))
    put("training", "steps", plan.steps)
    note(
        "training",
        f"accumulation {plan.split.accumulation} = global_batch_size / (local_batch_size x "
        f"{plan.split.gpus} data-parallel ranks): launch on {plan.split.gpus} data-parallel ranks",
    )

    warnings = list(plan.warnings)
    if not expressible:
        warnings.append(_inexpressible("torchtitan", plan))
    plan = _replace_warnings(plan, warnings)
    body += _groups_lines(plan.groups, "torchtitan")
    notes, warnings_out = _assemble(plan, body)
    text = _commented(notes) + "\n"
    for name, lines in sections.items():
        text += f"\n[{name}]\n" + "\n".join(lines) + "\n"
    return text, notes, warnings_out


def _inexpressible(trainer: str, plan: _Plan) -> str:
    floor = "" if plan.decay_floor is None else f", to a final lr of {plan.decay_floor:g} x peak"
    return (
        f"{trainer} has no option for the law's {plan.schedule!r} schedule{floor}: the decay is "
        "left to the trainer's default; set it by hand (law.card.notes may say how its runs decayed)"
    )


def _replace_warnings(plan: _Plan, warnings: list[str]) -> _Plan:
    return dataclasses.replace(plan, warnings=tuple(warnings))


# ---------------------------------------------------------------------------------------
# Hugging Face: TrainingArguments keyword arguments, names from huggingface/transformers
# src/transformers/training_args.py (learning_rate, per_device_train_batch_size,
# gradient_accumulation_steps, max_steps, warmup_steps, lr_scheduler_type,
# lr_scheduler_kwargs, weight_decay, adam_beta1, adam_beta2, adam_epsilon, max_grad_norm);
# scheduler kwargs from src/transformers/optimization.py: cosine_with_min_lr takes
# min_lr_rate (a fraction of lr), warmup_stable_decay takes num_decay_steps, decay_type
# (linear | cosine | 1-sqrt) and min_lr_ratio.


def _hf(plan: _Plan) -> tuple[str, list[str], tuple[str, ...]]:
    args: dict[str, Any] = {
        "learning_rate": plan.lr,
        "per_device_train_batch_size": plan.split.micro_batch,
        "gradient_accumulation_steps": plan.split.accumulation,
        "max_steps": plan.steps,
    }
    body = [
        f"launch on {plan.split.gpus} processes (data-parallel ranks): per_device_train_batch_size x "
        f"gradient_accumulation_steps x {plan.split.gpus} = {plan.split.global_seqs} sequences; the "
        f"sequence length ({plan.seq_len} tokens) is set where the data is tokenized and packed, "
        "TrainingArguments has no option for it"
    ]
    warnings = list(plan.warnings)
    if plan.warmup_steps is None:
        body.append(_unknown("warmup_steps", "warmup") + " (0: no warmup)")
    else:
        args["warmup_steps"] = plan.warmup_steps
    schedule, floor = plan.schedule, plan.decay_floor
    if schedule is None:
        body.append(_unknown("lr_scheduler_type", "the schedule"))
    elif schedule == "constant":
        args["lr_scheduler_type"] = "constant_with_warmup"
    elif schedule == "cosine" and floor:
        args["lr_scheduler_type"] = "cosine_with_min_lr"
        args["lr_scheduler_kwargs"] = {"min_lr_rate": float(floor)}
    elif schedule in ("cosine", "linear") and not floor:
        args["lr_scheduler_type"] = schedule  # both decay to zero
        if floor is None:
            body.append(_unknown("lr_scheduler_kwargs", "the decay floor") + " (decay to zero)")
    elif schedule in ("linear", "wsd"):  # linear to a floor = WSD with no stable phase
        decay = plan.wsd_decay_steps if schedule == "wsd" else plan.steps - (plan.warmup_steps or 0)
        args["lr_scheduler_type"] = "warmup_stable_decay"
        kwargs: dict[str, Any] = {"num_decay_steps": decay, "decay_type": "linear"}
        if floor is None:
            body.append(_unknown("min_lr_ratio", "the decay floor") + " (0: decay to zero)")
        else:
            kwargs["min_lr_ratio"] = float(floor)
        args["lr_scheduler_kwargs"] = kwargs
    else:
        warnings.append(_inexpressible("TrainingArguments", plan))
    for key, value, what in (
        ("weight_decay", plan.weight_decay, "weight decay"),
        ("adam_beta1", plan.beta1, "beta1"),
        ("adam_beta2", plan.beta2, "beta2"),
        ("adam_epsilon", plan.eps, "Adam epsilon"),
        ("max_grad_norm", plan.grad_clip, "gradient clipping"),
    ):
        if value is None:
            body.append(_unknown(key, what))
        else:
            args[key] = float(value)
    plan = _replace_warnings(plan, warnings)
    body += _groups_lines(plan.groups, "TrainingArguments")
    notes, warnings_out = _assemble(plan, body)
    return json.dumps(args, indent=2) + "\n", _comment_lines(notes), warnings_out


# ---------------------------------------------------------------------------------------
# nanoGPT: a config/*.py file of `name = value` lines that train.py's configurator
# exec's over its globals (karpathy/nanoGPT train.py: learning_rate, batch_size (the
# micro-batch), block_size, gradient_accumulation_steps (over all ranks: train.py asserts
# it divides by the world size and divides it), max_iters, decay_lr, warmup_iters,
# lr_decay_iters, min_lr (absolute), weight_decay, beta1, beta2, grad_clip). Its get_lr
# is linear warmup then cosine to min_lr; it has no Adam epsilon option.


def _py_value(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        return _float(value)
    return repr(value)


def _nanogpt(plan: _Plan) -> tuple[str, list[str], tuple[str, ...]]:
    lines: list[str] = []
    warnings = list(plan.warnings)

    def put(key: str, value: Any, comment: str = "") -> None:
        lines.append(f"{key} = {_py_value(value)}" + (f"  # {comment}" if comment else ""))

    def note(text: str) -> None:
        lines.extend(f"# {line}" for line in _comment_lines([text]))

    put("learning_rate", plan.lr, "peak lr")
    put("batch_size", plan.split.micro_batch, "micro-batch per rank")
    put("block_size", plan.seq_len)
    put(
        "gradient_accumulation_steps",
        plan.split.accumulation * plan.split.gpus,
        f"{plan.split.accumulation} per rank x {plan.split.gpus} ranks: train.py divides by the world size",
    )
    put("max_iters", plan.steps)
    schedule, floor = plan.schedule, plan.decay_floor
    if schedule == "constant":
        put("decay_lr", False)
        if plan.warmup_steps:
            warnings.append(
                "nanoGPT's train.py skips warmup when decay_lr is False: the law's warmup is lost"
            )
    elif schedule is None:
        note(_unknown("decay_lr, min_lr", "the schedule") + " (cosine to 6e-5)")
        put("lr_decay_iters", plan.steps, "= max_iters, as nanoGPT advises")
    else:
        if schedule != "cosine":
            warnings.append(
                f"nanoGPT's train.py decays by cosine only; the law's runs used {schedule!r}: the "
                "config sets cosine; edit get_lr in train.py to follow the law's schedule"
            )
        put("decay_lr", True)
        put("lr_decay_iters", plan.steps, "= max_iters: decay over the whole run")
        if floor is None:
            note(_unknown("min_lr", "the decay floor") + " (6e-5)")
        else:
            put("min_lr", plan.lr * floor, f"{floor:g} x learning_rate")
    if plan.warmup_steps is None:
        note(_unknown("warmup_iters", "warmup") + " (2000)")
    else:
        put("warmup_iters", plan.warmup_steps)
    for key, value, what in (
        ("weight_decay", plan.weight_decay, "weight decay"),
        ("beta1", plan.beta1, "beta1"),
        ("beta2", plan.beta2, "beta2"),
        ("grad_clip", plan.grad_clip, "gradient clipping"),
    ):
        if value is None:
            note(_unknown(key, what))
        else:
            put(key, float(value))
    if plan.eps is not None:
        note(f"Adam epsilon {plan.eps:g}: nanoGPT has no option for it (AdamW's default 1e-8 applies)")
    plan = _replace_warnings(plan, warnings)
    body = _groups_lines(plan.groups, "nanoGPT")
    notes, warnings_out = _assemble(plan, body)
    return _commented(notes) + "\n\n" + "\n".join(lines) + "\n", notes, warnings_out


# ---------------------------------------------------------------------------------------
# Megatron-LM: flags from NVIDIA/Megatron-LM megatron/training/arguments.py: --lr,
# --min-lr (absolute), --lr-decay-style (constant | linear | cosine |
# inverse-square-root | WSD), --lr-wsd-decay-style, --lr-wsd-decay-iters,
# --lr-warmup-iters (_add_learning_rate_args); --micro-batch-size, --global-batch-size
# (a multiple of micro-batch x data-parallel size), --train-iters (_add_training_args);
# --weight-decay, --clip-grad, --adam-beta1, --adam-beta2, --adam-eps
# (_add_regularization_args); --seq-length (_add_data_args).


def _megatron(plan: _Plan) -> tuple[str, list[str], tuple[str, ...]]:
    flags: list[tuple[str, Any]] = [
        ("--lr", plan.lr),
        ("--micro-batch-size", plan.split.micro_batch),
        ("--global-batch-size", plan.split.global_seqs),
        ("--seq-length", plan.seq_len),
        ("--train-iters", plan.steps),
    ]
    body = [
        f"data-parallel size = world size / (tensor x pipeline x context parallel) must be "
        f"{plan.split.gpus}: Megatron then accumulates {plan.split.accumulation} micro-batches per step",
        "use: torchrun ... pretrain_gpt.py <model and data flags> $(grep -v '^#' THIS_FILE)",
    ]
    warnings = list(plan.warnings)
    if plan.warmup_steps is None:
        body.append(_unknown("--lr-warmup-iters", "warmup") + " (0: no warmup)")
    else:
        flags.append(("--lr-warmup-iters", plan.warmup_steps))
    schedule, floor = plan.schedule, plan.decay_floor
    if schedule is None:
        body.append(_unknown("--lr-decay-style", "the schedule"))
    elif schedule in ("constant", "cosine", "linear"):
        flags.append(("--lr-decay-style", schedule))
    elif schedule == "wsd":
        flags += [
            ("--lr-decay-style", "WSD"),
            ("--lr-wsd-decay-style", "linear"),
            ("--lr-wsd-decay-iters", plan.wsd_decay_steps),
        ]
    else:
        warnings.append(_inexpressible("Megatron-LM", plan))
    if schedule in ("cosine", "linear", "wsd"):
        if floor is None:
            body.append(_unknown("--min-lr", "the decay floor") + " (0.0: decay to zero)")
        else:
            flags.append(("--min-lr", plan.lr * floor))
    for flag, value, what in (
        ("--weight-decay", plan.weight_decay, "weight decay"),
        ("--adam-beta1", plan.beta1, "beta1"),
        ("--adam-beta2", plan.beta2, "beta2"),
        ("--adam-eps", plan.eps, "Adam epsilon"),
        ("--clip-grad", plan.grad_clip, "gradient clipping"),
    ):
        if value is None:
            body.append(_unknown(flag, what))
        else:
            flags.append((flag, float(value)))
    plan = _replace_warnings(plan, warnings)
    groups = _groups_lines(plan.groups, "Megatron-LM")
    if groups:
        groups.insert(1, "  (--decoupled-lr sets one lr for the embedding and output layers together)")
    body += groups
    notes, warnings_out = _assemble(plan, body)
    line = " ".join(
        f"{flag} {shlex.quote(_float(value) if isinstance(value, float) else str(value))}"
        for flag, value in flags
    )
    return _commented(notes) + "\n" + line + "\n", notes, warnings_out
