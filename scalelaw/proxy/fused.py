"""K runs of one learning-rate column trained as one stacked model.

A sweep is mostly runs that share everything but a scalar: the same shape, batch
size, data order and seed, at 5-15 learning rates (and a few token budgets, whose
shorter runs see the first batches of the longer ones, and seed replicates, each fed
its own seed's batches). Tiny models
leave the hardware idle (on a 2-core CPU a width-32 step is ~90% framework overhead; a
1M-parameter model cannot fill a GPU), so :func:`train_group` trains such a group as
one model whose every weight carries a leading run axis K:

- linear layers are batched matmuls, ``(K, M, in) @ (K, in, out)``;
- attention folds the run axis into the batch axis, ``(K*B, heads, T, head_dim)``;
- the loss is the sum of the K runs' mean losses, so each run's gradient is exactly
  its own (runs share no parameters);
- all weights of the K runs live in one flat ``(K, P)`` buffer, their gradients in
  another, so AdamW with a per-run lr and weight decay, per-run gradient clipping and
  the divergence check are a handful of whole-buffer operations per step;
- a run that diverges is recorded (``diverged=True``, NaN loss) and dropped from the
  stack, so the others go on at the cost of K-1 runs.

The reference is :mod:`scalelaw.proxy.model` and :func:`scalelaw.proxy.train.train`:
each run here starts from the weights ``GPT`` draws for its seed, sees the batches
``train`` feeds it, and follows ``torch.optim.AdamW``'s update and
``clip_grad_norm_``'s rule; ``tests/test_fused.py`` checks the curves agree.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import time
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from scalelaw.exceptions import InputError
from scalelaw.groups import PER_RUN_FIELDS, differing_fields, eval_batch_seqs, group_key, micro_batch_seqs
from scalelaw.proxy.data import batch_indices, get_batch, load_dataset, validation_starts
from scalelaw.proxy.model import GPT, ModelConfig, apply_rotary, rotary_tables
from scalelaw.proxy.parametrization import GROUPS
from scalelaw.proxy.train import (
    DIVERGENCE_FACTOR,
    EMA,
    RunResult,
    _peak_flops,
    lr_factor,
    resolve_device,
    train,
)
from scalelaw.runspec import RunSpec


@dataclass(frozen=True)
class _Slot:
    """Where one parameter of the reference GPT lives in the flat (K, P) buffer."""

    name: str
    group: str  # embedding, hidden, readout, gain
    shape: tuple[int, ...]
    start: int
    end: int


class StackedGPT:
    """K copies of :class:`scalelaw.proxy.model.GPT` with a leading run axis.

    ``flat``: (K, P) weights of the K runs, one row per run: the reference model's
    parameters grouped by parametrization group (embedding, hidden, readout, gain; in
    ``named_parameters()`` order within a group), so that each group is one column range
    (``group_ranges``) whose per-run lr and decay are scalars. ``grad``: (K, P)
    gradients. ``params`` holds the (K, *shape) leaf views the forward pass uses;
    their ``.grad`` are views of ``grad``, so backward accumulates into the flat buffer.
    """

    def __init__(self, cfg: ModelConfig, references: Sequence[GPT], device: torch.device):
        self.cfg = cfg
        rules = cfg.rules
        self.emb_scale = rules.embedding_multiplier
        self.logit_scale = rules.readout_multiplier  # μP: α_out / m
        self.branch_scale = rules.residual_multiplier  # CompleteP: 1/l
        self.attn_scale = rules.attention_scale
        group_of = {id(p): g for g, ps in references[0].parameter_groups().items() for p in ps}
        named = sorted(
            references[0].named_parameters(), key=lambda item: GROUPS.index(group_of[id(item[1])])
        )  # stable: named_parameters() order within a group
        self.slots: list[_Slot] = []
        self.group_ranges: dict[str, tuple[int, int]] = {}
        start = 0
        for name, p in named:
            group = group_of[id(p)]
            self.slots.append(_Slot(name, group, tuple(p.shape), start, start + p.numel()))
            first = self.group_ranges.get(group, (start, start))[0]
            self.group_ranges[group] = (first, start + p.numel())
            start += p.numel()
        order = [name for name, _ in named]
        rows = []
        for ref in references:
            by_name = dict(ref.named_parameters())
            rows.append(torch.cat([by_name[n].detach().reshape(-1) for n in order]))
        self.flat = torch.stack(rows).to(device)
        self.grad = torch.zeros_like(self.flat)
        cos, sin = rotary_tables(cfg.seq_len, cfg.head_dim, cfg.rope_base)
        self.cos, self.sin = cos.to(device), sin.to(device)
        self._bind()

    @property
    def runs(self) -> int:
        return self.flat.shape[0]

    def _leaves(self) -> list[tuple[str, tuple[int, ...], int, int]]:
        """(name, shape, start, end) of the tensors the forward pass uses.

        Each is a reference parameter, except that q, k, v of a block are one (3W, W)
        matrix and the SwiGLU gate and up one (2F, W) matrix: they lie next to each
        other in the flat layout, so one batched matmul computes all of them.
        """
        by_name = {s.name: s for s in self.slots}
        fused = {}
        for i in range(self.cfg.depth):
            for parts, name in (
                (("attn.q", "attn.k", "attn.v"), "attn.qkv"),
                (("mlp.gate", "mlp.up"), "mlp.gate_up"),
            ):
                slots = [by_name[f"blocks.{i}.{part}.weight"] for part in parts]
                assert all(a.end == b.start for a, b in itertools.pairwise(slots)), "not adjacent"
                rows = sum(s.shape[0] for s in slots)
                fused[slots[0].name] = (f"blocks.{i}.{name}.weight", (rows, slots[0].shape[1]), slots[-1].end)
                for s in slots[1:]:
                    fused[s.name] = None
        leaves = []
        for s in self.slots:
            if s.name not in fused:
                leaves.append((s.name, s.shape, s.start, s.end))
            elif fused[s.name] is not None:
                name, shape, end = fused[s.name]
                leaves.append((name, shape, s.start, end))
        return leaves

    def _bind(self) -> None:
        """(Re)create the leaf views of ``flat`` whose ``.grad`` are views of ``grad``."""
        k = self.runs
        self.params: dict[str, torch.Tensor] = {}
        for name, shape, start, end in self._leaves():
            p = self.flat[:, start:end].view(k, *shape)
            p.requires_grad_(True)
            p.grad = self.grad[:, start:end].view(k, *shape)
            self.params[name] = p

    def subset(self, rows: list[int]) -> StackedGPT:
        """The runs at ``rows`` as a stacked model of their own (copies; for evaluation)."""
        other = copy.copy(self)
        other.keep(rows)
        return other

    def keep(self, rows: list[int]) -> None:
        """Keep only the runs at ``rows`` (drop ended ones); optimizer state is the caller's."""
        index = torch.tensor(rows, dtype=torch.long, device=self.flat.device)
        self.flat, self.grad = self.flat[index], self.grad[index]
        self._bind()

    # ---- forward --------------------------------------------------------------------

    @staticmethod
    def _linear(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """x: (K, M, in), w: (K, out, in) as nn.Linear stores it -> (K, M, out)."""
        return torch.bmm(x, w.transpose(1, 2))

    @staticmethod
    def _norm(x: torch.Tensor, gain: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
        """RMSNorm of x: (K, M, W) with per-run gains (K, W), as model.RMSNorm."""
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
        return normed.type_as(x) * gain[:, None, :]

    def losses(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Token ids -> (K,) mean cross-entropy per run.

        ``idx``, ``targets``: (B, T), shared by all runs, or (K, B, T), one batch per run
        (runs of different seeds see different batches).
        """
        p, cfg, k = self.params, self.cfg, self.runs
        b, t = idx.shape[-2:]
        heads, hd, w = cfg.n_heads, cfg.head_dim, cfg.width
        cos, sin = self.cos[:t], self.sin[:t]
        table = p["embed.weight"]  # (K, V, W): run r's token v is row r*V + v of the flattened table
        offsets = torch.arange(k, device=idx.device)[:, None] * table.shape[1]
        rows = idx.reshape(1 if idx.dim() == 2 else k, -1)
        x = F.embedding(rows + offsets, table.reshape(-1, w))  # (K, B*T, W)
        x = _scaled(x, self.emb_scale)
        for i in range(cfg.depth):
            pre = f"blocks.{i}."
            qkv = self._linear(self._norm(x, p[pre + "attn_norm.gain"]), p[pre + "attn.qkv.weight"])
            # (K, B*T, 3W) -> (3, K*B, heads, T, hd): q, k, v with the run axis folded into the batch
            qkv = qkv.view(k * b, t, 3, heads, hd).permute(2, 0, 3, 1, 4)
            qk = apply_rotary(qkv[:2], cos, sin)
            y = F.scaled_dot_product_attention(qk[0], qk[1], qkv[2], is_causal=True, scale=self.attn_scale)
            y = y.transpose(1, 2).reshape(k, b * t, w)  # (K*B, heads, T, hd) -> (K, B*T, W)
            x = x + _scaled(self._linear(y, p[pre + "attn.o.weight"]), self.branch_scale)
            h = self._norm(x, p[pre + "mlp_norm.gain"])
            gate, up = self._linear(h, p[pre + "mlp.gate_up.weight"]).chunk(2, dim=-1)
            x = x + _scaled(self._linear(F.silu(gate) * up, p[pre + "mlp.down.weight"]), self.branch_scale)
        logits = self._linear(self._norm(x, p["norm.gain"]), p["readout.weight"]) * self.logit_scale
        flat_targets = targets.reshape(1 if targets.dim() == 2 else k, -1).expand(k, -1).reshape(-1)
        ce = F.cross_entropy(logits.float().reshape(k * b * t, -1), flat_targets, reduction="none")
        return ce.view(k, b * t).mean(1)


def _scaled(x: torch.Tensor, factor: float) -> torch.Tensor:
    """x * factor, skipping the multiply (and its backward) when factor is 1."""
    return x if factor == 1.0 else x * factor


class StackedAdamW:
    """torch.optim.AdamW (decoupled, lr-coupled decay, bias-corrected) for K stacked runs.

    Every (run, parametrization group) pair is one contiguous slice of the flat
    buffers with scalar lr and decay, so the update is torch's own foreach AdamW
    sequence over those slices, with one lr and decay per slice. ``lrs``, ``decays``:
    per-run peak base lr and weight decay λ; the group's lr multiplier and whether it
    decays come from ``rules``. ``step(factor)`` applies the schedule's multiplier.
    """

    def __init__(self, model: StackedGPT, lrs: Sequence[float], decays: Sequence[float], rules, betas):
        self.model, self.rules = model, rules
        self.lrs, self.decays = list(lrs), list(decays)
        self.beta1, self.beta2 = betas
        self.exp_avg = torch.zeros_like(model.flat)
        self.exp_avg_sq = torch.zeros_like(model.flat)
        self.steps = 0
        self._bind()

    def _bind(self) -> None:
        """The (run, group) slices of weights, gradients and moments, with each slice's
        lr multiplier and decay: made once per stack, not once per step."""
        ranges = list(self.model.group_ranges.items())

        def slices(flat: torch.Tensor) -> list[torch.Tensor]:
            return [flat[k, a:b] for k in range(flat.shape[0]) for _, (a, b) in ranges]

        self.w, self.g = slices(self.model.flat), slices(self.model.grad)
        self.m, self.v = slices(self.exp_avg), slices(self.exp_avg_sq)
        self.base_lr = [lr * self.rules.lr_multiplier(g) for lr in self.lrs for g, _ in ranges]
        self.decay = [d if self.rules.decays(g) else 0.0 for d in self.decays for g, _ in ranges]
        self.per_run = len(ranges)

    @torch.no_grad()
    def step(self, factors: Sequence[float]) -> None:
        """One update; ``factors``: each run's schedule multiplier of its peak lr this step."""
        self.steps += 1
        lr = [base * factors[i // self.per_run] for i, base in enumerate(self.base_lr)]
        torch._foreach_mul_(self.w, [1 - a * d for a, d in zip(lr, self.decay, strict=True)])
        torch._foreach_lerp_(self.m, self.g, 1 - self.beta1)
        torch._foreach_mul_(self.v, self.beta2)
        torch._foreach_addcmul_(self.v, self.g, self.g, 1 - self.beta2)
        bias1 = 1 - self.beta1**self.steps
        denom = torch._foreach_sqrt(self.v)
        torch._foreach_div_(denom, math.sqrt(1 - self.beta2**self.steps))
        torch._foreach_add_(denom, self.rules.eps())
        torch._foreach_addcdiv_(self.w, self.m, denom, [-a / bias1 for a in lr])

    def keep(self, rows: list[int]) -> None:
        index = torch.tensor(rows, dtype=torch.long, device=self.exp_avg.device)
        self.lrs, self.decays = [self.lrs[r] for r in rows], [self.decays[r] for r in rows]
        self.exp_avg, self.exp_avg_sq = self.exp_avg[index], self.exp_avg_sq[index]
        self._bind()  # after the model's own keep(): its buffers are the new ones


@torch.no_grad()
def clip_per_run(grad: torch.Tensor, max_norm: float) -> None:
    """Each run's gradient (a row of ``grad``) scaled as clip_grad_norm_ would scale it alone."""
    norms = torch.linalg.vector_norm(grad, dim=1, keepdim=True)
    grad.mul_((max_norm / (norms + 1e-6)).clamp(max=1.0))


def check_group(specs: Sequence[RunSpec]) -> None:
    """Refuse runs that cannot share one stacked model (they differ beyond PER_RUN_FIELDS)."""
    if not specs:
        raise InputError("train_group needs at least one RunSpec")
    key = group_key(specs[0])
    for i, s in enumerate(specs[1:], 1):
        if group_key(s) != key:
            raise InputError(
                f"train_group: run {i} differs from run 0 in {differing_fields(s, specs[0])}; "
                f"the runs of a group may differ only in {PER_RUN_FIELDS}"
            )


def train_group(
    specs: Sequence[RunSpec],
    metrics_paths: Sequence[str | Path | None] | None = None,
    stacked: bool | None = None,
) -> list[RunResult]:
    """Train runs that differ only in PER_RUN_FIELDS (lr, decay, init, budget, schedule, seed) as one model.

    Returns one :class:`RunResult` per spec, in order; each matches what
    ``train(spec)`` returns for it (to float rounding; see tests/test_fused.py).
    ``metrics_paths``: one JSON-lines loss curve per run (or None). ``stacked``: None
    trains a group of one with ``train()`` itself and larger groups stacked; True or
    False forces either path. ``wall_s`` and ``tokens_per_s`` of each run are its 1/K
    share of the group's time, so summed over a sweep they give its real cost.
    """
    specs = list(specs)
    check_group(specs)
    paths = list(metrics_paths) if metrics_paths is not None else [None] * len(specs)
    if len(paths) != len(specs):
        raise InputError(f"train_group: {len(specs)} specs but {len(paths)} metrics paths")
    if stacked is False or (stacked is None and len(specs) == 1):
        return [train(s, metrics_path=m) for s, m in zip(specs, paths, strict=True)]
    return _train_stacked(specs, paths)


def _micro_batch(
    tokens: np.ndarray, starts: dict[int, np.ndarray], seeds: list[int], part: slice, seq_len: int
):
    """(inputs, targets) of one micro-batch: (B, T) when every run has the same seed,
    else (K, B, T) with run r's rows drawn from its own seed's batch."""
    batches = {seed: get_batch(tokens, s[part], seq_len) for seed, s in starts.items()}
    if len(batches) == 1:
        return next(iter(batches.values()))
    return tuple(torch.stack([batches[seed][j] for seed in seeds]) for j in (0, 1))


def _reference_models(specs: Sequence[RunSpec], cfgs: Sequence[ModelConfig]) -> list[GPT]:
    """Each run's initial weights exactly as train() draws them (one draw per distinct seed/init)."""
    cache: dict[tuple, GPT] = {}
    out = []
    for spec, cfg in zip(specs, cfgs, strict=True):
        key = (spec.seed, spec.init_std)
        if key not in cache:
            torch.manual_seed(spec.seed)
            cache[key] = GPT(cfg)
        out.append(cache[key])
    return out


def _train_stacked(specs: list[RunSpec], paths: list[str | Path | None]) -> list[RunResult]:
    first = specs[0]  # shares batch size, shape and micro-batching with every run
    device = resolve_device(first.device)
    data = load_dataset(first.dataset)
    cfgs = [s.model_config(data.vocab_size) for s in specs]
    model = StackedGPT(cfgs[0], _reference_models(specs, cfgs), device)
    opt = StackedAdamW(
        model, [s.lr for s in specs], [s.weight_decay for s in specs], cfgs[0].rules, first.betas
    )
    use_bf16 = device.type == "cuda"
    losses_fn = torch.compile(model.losses) if first.compile else model.losses

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16)

    seqs_per_step = first.batch_size // first.seq_len
    micro_seqs = micro_batch_seqs(first.batch_size, first.seq_len, first.micro_batch_size)
    n_micro = seqs_per_step // micro_seqs
    active = list(range(len(specs)))  # spec index of each row of the stack
    start_loss = [math.nan] * len(specs)
    smooth = [math.nan] * len(specs)
    ended: dict[int, tuple[int, bool]] = {}  # spec index -> (steps trained, diverged)
    val_of: dict[int, float] = {}
    t0 = time.perf_counter()
    with ExitStack() as files:
        # Our .grad are strided views of the flat gradient buffer, which autograd flags as
        # a layout it did not choose; accumulation into them is still in place and exact.
        files.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", message="grad and param do not obey the gradient layout contract")
        logs = [files.enter_context(open(p, "a", encoding="utf-8")) if p else None for p in paths]
        for step in range(max(s.steps for s in specs)):
            factors = [lr_factor(specs[run], step) for run in active]  # per-run schedules
            seeds = [specs[run].seed for run in active]
            starts = {
                seed: batch_indices(len(data.train), seqs_per_step, first.seq_len, seed, step)
                for seed in dict.fromkeys(seeds)
            }
            step_loss = torch.zeros(len(active), device=device)
            for i in range(n_micro):
                x, y = _micro_batch(
                    data.train, starts, seeds, slice(i * micro_seqs, (i + 1) * micro_seqs), first.seq_len
                )
                with autocast():
                    per_run = losses_fn(x.to(device, non_blocking=True), y.to(device, non_blocking=True))
                (per_run.sum() / n_micro).backward()
                step_loss += per_run.detach() / n_micro
            if first.grad_clip > 0:
                clip_per_run(model.grad, first.grad_clip)
            opt.step(factors)
            model.grad.zero_()
            keep, finished = [], []
            for row, (run, loss) in enumerate(zip(active, step_loss.tolist(), strict=True)):
                if step == 0:
                    start_loss[run] = loss
                smooth[run] = loss if step == 0 else EMA * smooth[run] + (1 - EMA) * loss
                if logs[run]:
                    record = {"step": step, "tokens": (step + 1) * first.batch_size, "loss": loss}
                    record["lr"] = specs[run].lr * factors[row]
                    logs[run].write(json.dumps(record) + "\n")
                if not math.isfinite(loss) or loss > DIVERGENCE_FACTOR * start_loss[run]:
                    ended[run] = (step + 1, True)
                elif step + 1 == specs[run].steps:
                    ended[run] = (step + 1, False)
                    finished.append(row)
                else:
                    keep.append(row)
            if finished:  # a budget ends here: its validation loss, then it leaves the stack
                losses = evaluate_stacked(
                    model.subset(finished),
                    data.val,
                    first,
                    device,
                    eval_batch_seqs(first.seq_len, micro_seqs),
                    autocast,
                )
                val_of.update({active[row]: loss for row, loss in zip(finished, losses, strict=True)})
            if len(keep) < len(active):
                model.keep(keep)
                opt.keep(keep)
                active = [active[r] for r in keep]
            if not active:
                break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - t0
    total_steps = sum(steps for steps, _ in ended.values())
    peak = _peak_flops(device)
    results = []
    for run, spec in enumerate(specs):
        steps, diverged = ended[run]
        loss = val_of.get(run, math.nan)
        if not math.isfinite(loss):
            diverged, loss = True, math.nan
        trained = steps * spec.batch_size
        share = wall * steps / total_steps  # the run's part of the group's time, by steps trained
        tokens_per_s = trained / share
        results.append(
            RunResult(
                spec=spec,
                params=cfgs[run].non_embedding_params,
                tokens=spec.tokens,
                tokens_trained=trained,
                loss=loss,
                train_loss=smooth[run],
                diverged=diverged,
                steps=steps,
                wall_s=share,
                tokens_per_s=tokens_per_s,
                flops=cfgs[run].flops_per_token() * trained,
                mfu=(cfgs[run].flops_per_token() * tokens_per_s / peak) if peak else None,
                device=str(device),
            )
        )
    return results


@torch.no_grad()
def evaluate_stacked(
    model: StackedGPT, tokens: np.ndarray, spec: RunSpec, device: torch.device, micro_seqs: int, autocast
) -> list[float]:
    """Each run's mean next-token loss over the fixed validation sequences (as train.evaluate)."""
    starts = validation_starts(len(tokens), spec.seq_len, spec.val_tokens)
    total = torch.zeros(model.runs, dtype=torch.float64, device=device)
    count = 0
    for i in range(0, len(starts), micro_seqs):
        x, y = (t.to(device) for t in get_batch(tokens, starts[i : i + micro_seqs], spec.seq_len))
        with autocast():
            total += model.losses(x, y).double() * len(x)
        count += len(x)
    return (total / count).tolist()
