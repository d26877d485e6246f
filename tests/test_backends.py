"""The backend interface and the SLURM request checks that need no cluster.

The real SLURM cluster and Ray instance are in test_cluster.py.
"""

from __future__ import annotations

import math

import pytest

from scalelaw.backends import BACKENDS, make_backend
from scalelaw.backends.slurm import (
    Node,
    SlurmOptions,
    gpu_count,
    parse_sinfo,
    parse_time_limit,
    resolve_request,
)
from scalelaw.exceptions import InputError


def test_backends_are_registered_by_name():
    make_backend("local")
    assert {"local", "slurm", "ray"} <= set(BACKENDS)
    with pytest.raises(InputError, match="--backend: unknown backend 'kubernetes'; choose one of local, ray"):
        make_backend("kubernetes")


@pytest.mark.parametrize(
    ("gres", "gpus"),
    [("(null)", 0), ("gpu:4", 4), ("gpu:a100:8(S:0-1)", 8), ("gpu:a100:2,gpu:v100:2", 4), ("shard:8", 0)],
)
def test_gpu_count_reads_gres(gres, gpus):
    assert gpu_count(gres) == gpus


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("infinite", math.inf), ("30:00", 30), ("2:00:00", 120), ("1-12:00:00", 2160), ("0:45", 0.75)],
)
def test_parse_time_limit(text, minutes):
    assert parse_time_limit(text) == minutes


SINFO = "debug|2|(null)|infinite|up|debug*\ngpu|64|gpu:h100:8(S:0-1)|2-00:00:00|up|gpu\n"


def test_parse_sinfo_reads_each_node():
    debug, gpu = parse_sinfo(SINFO)
    assert debug == Node("debug", 2, 0, math.inf, True, True)
    assert gpu == Node("gpu", 64, 8, 2880, True, False)


def test_defaults_fit_a_small_cpu_node():
    """A node with 2 CPUs and no GPU: 2 CPUs and no GPU per task, in the default partition."""
    assert resolve_request(SlurmOptions(), parse_sinfo(SINFO)) == ("debug", 2, 0)
    assert resolve_request(SlurmOptions(partition="gpu"), parse_sinfo(SINFO)) == ("gpu", 8, 1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (SlurmOptions(cpus_per_task=8), r"--cpus-per-task 8: partition 'debug' has at most 2 CPUs per node"),
        (SlurmOptions(gpus_per_task=1), r"--gpus-per-task 1: partition 'debug' has no GPUs"),
        (SlurmOptions(partition="gpu", gpus_per_task=16), r"at most 8 GPUs per node"),
        (
            SlurmOptions(partition="gpu", time_min=5000),
            r"--time-min 5000: partition 'gpu' allows at most 2880",
        ),
        (
            SlurmOptions(partition="cpu"),
            r"--partition 'cpu': no such partition; choose one of \['debug', 'gpu'\]",
        ),
    ],
)
def test_requests_a_node_cannot_serve_are_refused_naming_the_option(options, message):
    with pytest.raises(InputError, match=message):
        resolve_request(options, parse_sinfo(SINFO))


def test_no_default_partition_asks_for_one():
    nodes = parse_sinfo("a|4|(null)|infinite|up|a\n")
    with pytest.raises(
        InputError, match=r"--partition: the cluster has no default partition; choose one of \['a'\]"
    ):
        resolve_request(SlurmOptions(), nodes)
