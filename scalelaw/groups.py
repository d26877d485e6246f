"""Which runs of a sweep train together as one stacked model (no torch here).

Runs that agree on everything but a few per-run scalars (peak lr, weight decay, init
std, token budget and schedule, and the seed that draws their initial weights and
batches) have the same shapes and step count per token, so
:func:`scalelaw.proxy.fused.train_group` can train them as one model with a leading run
axis. This module decides the groups and their size from a memory estimate, so the
launcher can plan them without importing torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from scalelaw.record import canonical_json
from scalelaw.shapes import ffn_width, non_embedding_params
from scalelaw.sweepspec import VOCAB  # the byte tokenizer; sweep cost estimates assume it too

# What may differ inside a group: the optimizer's scalars, the init scale, the schedule
# and its length (batches depend on (seed, step) only, so a shorter budget sees the first
# steps of a longer one; it leaves the stack when it ends), and the seed (each run is fed
# its own seed's batches; seed replicates of a setting train together).
PER_RUN_FIELDS = ("lr", "weight_decay", "init_std", "tokens", "warmup", "schedule", "decay_fraction", "seed")
_STATE_BYTES_PER_PARAM = 16  # fp32 weights, gradients and two Adam moments

T = TypeVar("T")


def _fields(spec: Any) -> dict[str, Any]:
    return spec if isinstance(spec, dict) else spec.__dict__


def group_key(spec: Any) -> tuple:
    """What a run shares with the other runs of its group: its spec minus PER_RUN_FIELDS,
    each value in its canonical spelling (``64`` and ``np.int64(64)`` are one shape)."""
    return tuple(sorted((k, canonical_json(v)) for k, v in _fields(spec).items() if k not in PER_RUN_FIELDS))


def micro_batch_seqs(batch_size: int, seq_len: int, micro_batch_size: int | None = None) -> int:
    """Sequences per forward pass: ``micro_batch_size`` tokens, else up to 16 sequences,
    lowered until it divides the sequences of one optimizer step."""
    seqs = batch_size // seq_len
    micro = micro_batch_size // seq_len if micro_batch_size else min(seqs, 16)
    while seqs % micro:
        micro -= 1
    return micro


EVAL_TOKENS = 4096  # tokens per validation forward pass (no activations are kept there)


def eval_batch_seqs(seq_len: int, micro_seqs: int) -> int:
    """Sequences per validation forward pass: at least EVAL_TOKENS tokens, at least a micro-batch.

    Tied to the training micro-batch, a batch of one sequence would validate 65k tokens
    in 1024+ tiny forward passes, more time than small proxies spend training.
    """
    return max(micro_seqs, EVAL_TOKENS // seq_len)


def group_memory_bytes(spec: Any, runs: int = 1) -> int:
    """Estimated peak memory of ``runs`` stacked runs shaped like ``spec``, in bytes (fp32).

    Weights, gradients and AdamW state take 16 bytes per parameter per run (embedding
    and readout included). Activations kept for the backward pass take, per token of a
    micro-batch and per run, about 20 x width + 5 x ffn width floats per layer (norms,
    q/k/v, attention output, residuals, SwiGLU gate/up/product) plus 3 x vocabulary
    floats for the logits, their log-softmax and its gradient.
    """
    s = _fields(spec)
    width, depth, seq_len = int(s["width"]), int(s["depth"]), int(s.get("seq_len", 128))
    params = non_embedding_params(width, depth) + 2 * VOCAB * width + (2 * depth + 1) * width
    micro = micro_batch_seqs(int(s["batch_size"]), seq_len, s.get("micro_batch_size")) * seq_len
    per_token = depth * (20 * width + 5 * ffn_width(width)) + 3 * VOCAB
    return runs * (params * _STATE_BYTES_PER_PARAM + micro * per_token * 4)


def default_memory_budget(workers: int = 1) -> int:
    """Bytes one worker's group may use on CPU: a quarter of physical memory, shared by workers."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return total // 4 // max(1, workers)


def plan_groups(
    items: Iterable[T],
    spec_of: Callable[[T], Any],
    memory_budget: int,
    max_runs: int = 64,
) -> list[list[T]]:
    """Split ``items`` into groups of runs that can train stacked, in first-seen order.

    A group holds runs with one :func:`group_key`, at most ``max_runs`` of them and as
    many as fit ``memory_budget`` bytes by :func:`group_memory_bytes` (at least one).
    """
    by_key: dict[tuple, list[T]] = {}
    for item in items:
        by_key.setdefault(group_key(spec_of(item)), []).append(item)
    groups = []
    for members in by_key.values():
        cap = max(1, min(max_runs, memory_budget // max(1, group_memory_bytes(spec_of(members[0])))))
        groups += [members[i : i + cap] for i in range(0, len(members), cap)]
    return groups


# The fixed cost of one optimizer step of a stacked group (launches, Python, small
# elementwise ops), in the units of group_work: about 4 ms on one CPU core at ~40
# GFLOP/s, i.e. 6 x 2.5e7 FLOPs (measured on the demo's width-96 verification groups).
STEP_WORK = 2.5e7


def group_work(specs: Iterable[Any]) -> float:
    """Relative training work of a group, tokens x parameters (embedding and readout
    included; FLOPs up to a constant) summed over its runs, plus STEP_WORK per step of
    its longest run: a stacked group pays the per-step overhead once for all its runs."""
    work, steps = 0.0, 0
    for spec in specs:
        s = _fields(spec)
        width, depth = int(s["width"]), int(s["depth"])
        work += float(s["tokens"]) * (non_embedding_params(width, depth) + 2 * VOCAB * width)
        steps = max(steps, -(-int(s["tokens"]) // int(s["batch_size"])))
    return work + steps * STEP_WORK


def balance_groups(groups: list[list[T]], spec_of: Callable[[T], Any], workers: int) -> list[list[T]]:
    """Groups for ``workers`` parallel workers: groups halved until there are at least
    2 x workers (or only single runs are left), then largest work first.

    With fewer groups than twice the workers, whole groups leave workers idle: three
    equal groups on two workers take two group-times where four take one and a half.
    Halving pays off where compute, not per-step overhead, sets a group's time, so the
    group halved is the one whose longer half saves the most time net of the per-step
    overhead the second half pays again: of equal columns, the one with the fewest steps.
    Largest first (LPT) keeps one long group from finishing last.
    """

    def work(group: list[T]) -> float:
        return group_work(spec_of(item) for item in group)

    def saved_by_halving(group: list[T]) -> float:
        """Time the longer half saves over the whole, less the overhead the halves add."""
        half = (len(group) + 1) // 2
        parts = work(group[:half]), work(group[half:])
        return (work(group) - max(parts)) - (sum(parts) - work(group))

    groups = [list(g) for g in groups]
    while workers > 1 and len(groups) < 2 * workers:
        largest = max((g for g in groups if len(g) > 1), key=saved_by_halving, default=None)
        if largest is None:
            break
        groups.remove(largest)
        half = (len(largest) + 1) // 2
        groups += [largest[:half], largest[half:]]
    return sorted(groups, key=work, reverse=True)


def differing_fields(a: Any, b: Any) -> Sequence[str]:
    """Fields outside PER_RUN_FIELDS whose values differ between two specs."""
    fa, fb = _fields(a), _fields(b)
    return sorted(
        k for k in fa if k not in PER_RUN_FIELDS and canonical_json(fa[k]) != canonical_json(fb.get(k))
    )
