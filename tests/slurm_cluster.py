"""A real single-node SLURM cluster on localhost, for the cluster tests.

It runs munged, slurmctld and slurmd from the Debian packages (slurmctld, slurmd,
slurm-client, munge) out of one temporary directory: its own munge key and socket, a
generated ``slurm.conf`` whose node line comes from ``slurmd -C``, no accounting
(``sacct`` does not work, as on many small clusters), ``proctrack/linuxproc`` and
``task/none`` so that no cgroups or systemd are needed. Ports are picked free, so two
test sessions on one machine do not meet. Daemons run as the current user when it is
not root (slurmd then cannot switch users, which is fine for one user's jobs).

Teardown cancels every job first, then stops the daemons by their PIDs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import closing
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue", "scancel")


def missing_binaries() -> list[str]:
    """The SLURM / munge programs this machine lacks (empty when a cluster can start)."""
    found = {name: shutil.which(name) or _sbin(name) for name in DAEMONS}
    return [name for name, path in found.items() if path is None]


def _sbin(name: str) -> str | None:
    path = Path("/usr/sbin") / name
    return str(path) if path.exists() else None


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_line(cpus: int | None) -> str:
    """``slurmd -C``'s description of this machine, named ``localhost``."""
    out = subprocess.run([_binary("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout
    fields = dict(f.split("=", 1) for f in out.split() if "=" in f)
    node_cpus = cpus or int(fields["CPUs"])
    memory = int(int(fields.get("RealMemory", "1024")) * 0.9)  # slurmd refuses more than it finds
    return f"NodeName=localhost CPUs={node_cpus} RealMemory={memory} State=UNKNOWN"


def _binary(name: str) -> str:
    path = shutil.which(name) or _sbin(name)
    if path is None:
        raise FileNotFoundError(
            f"{name} is not installed (apt-get install slurmctld slurmd slurm-client munge)"
        )
    return path


class LocalSlurm:
    """Start with :meth:`start`, use ``env`` (it sets ``SLURM_CONF``) for every SLURM
    command and for the launcher under test, and :meth:`stop` when done."""

    def __init__(self, root: Path, partition: str = "debug", cpus: int | None = None):
        self.root = Path(root)
        self.partition = partition
        self.cpus = cpus
        self.conf = self.root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.started_in_s: float | None = None

    def _write_config(self) -> None:
        r = self.root
        for sub in ("state", "spool", "log"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        user = "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
        lines = [
            "ClusterName=scalelawtest",
            "SlurmctldHost=localhost",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={r / 'munge.sock'}",
            f"SlurmUser={user}",
            f"SlurmdUser={user}",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'slurmd.pid'}",
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "ReturnToService=2",
            "MpiDefault=none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "InactiveLimit=0",
            "KillWait=5",
            "MinJobAge=300",  # finished jobs stay visible to squeue/scontrol for 5 minutes
            _node_line(self.cpus),
            f"PartitionName={self.partition} Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self, timeout_s: float = 60.0) -> LocalSlurm:
        t0 = time.monotonic()
        self._write_config()
        key = self.root / "munge.key"
        key.write_bytes(os.urandom(128))
        key.chmod(0o600)
        r = self.root
        subprocess.run(
            [
                _binary("munged"),
                "--force",
                f"--key-file={key}",
                f"--socket={r / 'munge.sock'}",
                f"--pid-file={r / 'munged.pid'}",
                f"--log-file={r / 'log' / 'munged.log'}",
                f"--seed-file={r / 'munge.seed'}",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run([_binary("slurmctld"), "-c"], env=self.env, check=True, capture_output=True)
        subprocess.run([_binary("slurmd"), "-N", "localhost"], env=self.env, check=True, capture_output=True)
        while time.monotonic() - t0 < timeout_s:
            state = self.sinfo("%T")
            if state.strip() == "idle":
                self.started_in_s = time.monotonic() - t0
                return self
            time.sleep(0.25)
        logs = "\n".join(p.read_text()[-2000:] for p in sorted((r / "log").glob("*.log")))
        self.stop()
        raise RuntimeError(f"the test SLURM node did not become idle in {timeout_s:.0f} s:\n{logs}")

    def sinfo(self, fmt: str) -> str:
        out = subprocess.run(
            [_binary("sinfo"), "-h", "-o", fmt], env=self.env, capture_output=True, text=True, timeout=10
        )
        return out.stdout

    def stop(self) -> None:
        subprocess.run(
            [_binary("scancel"), "--user", str(os.getuid())], env=self.env, capture_output=True, timeout=10
        )
        for name in ("slurmd", "slurmctld", "munged"):
            self._kill(self.root / f"{name}.pid")

    @staticmethod
    def _kill(pid_file: Path, grace_s: float = 5.0) -> None:
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
