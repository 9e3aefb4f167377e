"""A real single-node Slurm for the executor tests: Debian's ``slurm-wlm`` and ``munge``
(``.ci/run`` installs them), started once per session on 127.0.0.1 with a configuration in a
temporary folder, and stopped by PID at the end. Skipped (with the reason) where it cannot
start: not root, the packages missing, or a daemon that does not come up."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: The partition the tests send runs to.
PARTITION = "debug"
#: What must be installed: the daemons and the client commands.
NEEDED = ("munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "scontrol", "scancel")


@dataclass
class SlurmCluster:
    """A running single-node Slurm: its folder, configuration, daemons (by PID)."""

    root: Path
    conf: Path
    processes: list[subprocess.Popen] = field(default_factory=list)
    #: Each command's path, found once (a test may take Slurm off the PATH).
    bins: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def command(self, *args: str, check: bool = True) -> str:
        """A Slurm client command against this cluster; its standard output."""
        return self.run(*args, check=check).stdout

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [self.bins.get(args[0], args[0]), *args[1:]]
        done = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=30, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)}: {done.stderr.strip()}")
        return done

    def jobs(self) -> list[str]:
        """Every task Slurm has (any state, while it remembers it), as ``ID STATE``."""
        out = self.command("squeue", "--noheader", "--array", "--states=all", "--format=%i %T")
        return sorted(out.split("\n")[:-1])

    def live(self) -> list[str]:
        """The tasks queued or running."""
        out = self.command("squeue", "--noheader", "--array", "--format=%i %T")
        return sorted(line for line in out.splitlines() if line.strip())

    def cancel_all(self, timeout: float = 30.0) -> None:
        """Every job cancelled, and waited for until none is left running."""
        self.command("scancel", f"--partition={PARTITION}", check=False)
        deadline = time.monotonic() + timeout
        while self.live() and time.monotonic() < deadline:
            time.sleep(0.5)

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 4096


def slurm_conf(root: Path, ctld_port: int, d_port: int, socket_path: Path) -> str:
    """The configuration of a one-node cluster on this machine (127.0.0.1)."""
    host = socket.gethostname()
    return "\n".join(
        [
            "ClusterName=harness",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={d_port}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={socket_path}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"StateSaveLocation={root / 'state'}",
            f"SlurmdSpoolDir={root / 'spool'}",
            f"SlurmctldPidFile={root / 'slurmctld.pid'}",
            f"SlurmdPidFile={root / 'slurmd.pid'}",
            f"SlurmctldLogFile={root / 'slurmctld.log'}",
            f"SlurmdLogFile={root / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "MpiDefault=none",
            "ReturnToService=2",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SchedulerType=sched/builtin",
            "SchedulerParameters=sched_interval=1",  # a requeued task starts within a second
            "KillWait=2",  # a cancelled or requeued task is killed 2 s after SIGTERM
            "SlurmdTimeout=30",
            f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 1} "
            f"RealMemory={max(1024, _memory_mb() - 1024)} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


def _start(root: Path) -> SlurmCluster:
    """munged, slurmctld and slurmd started in ``root``; the cluster, once its node is idle."""
    for name in ("munge", "state", "spool"):
        (root / name).mkdir(mode=0o755)
    key = root / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    sock = root / "munge" / "sock"
    conf = root / "slurm.conf"
    conf.write_text(slurm_conf(root, _free_port(), _free_port(), sock))
    cluster = SlurmCluster(root, conf, bins={name: shutil.which(name) or name for name in NEEDED})
    log = (root / "daemons.log").open("ab")
    munged = [
        "munged", "--foreground", "--force", f"--socket={sock}", f"--key-file={key}",
        f"--log-file={root / 'munge' / 'log'}", f"--pid-file={root / 'munge' / 'pid'}",
        f"--seed-file={root / 'munge' / 'seed'}",
    ]  # fmt: skip
    cluster.processes.append(subprocess.Popen(munged, stdout=log, stderr=log))
    _wait(lambda: sock.exists(), 10, "munged made no socket", cluster)
    for daemon in ("slurmctld", "slurmd"):
        process = subprocess.Popen(
            [daemon, "-D", "-f", str(conf)], env=cluster.env, stdout=log, stderr=log
        )
        cluster.processes.append(process)
    _wait(lambda: " is UP" in cluster.command("scontrol", "ping", check=False), 30,
          "slurmctld does not answer", cluster)  # fmt: skip
    idle = ["sinfo", "--noheader", f"--partition={PARTITION}", "--format=%t"]
    _wait(lambda: cluster.command(*idle, check=False).strip() == "idle", 30,
          "the node did not become idle", cluster)  # fmt: skip
    return cluster


def _wait(ready, timeout: float, what: str, cluster: SlurmCluster) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except (OSError, subprocess.SubprocessError):
            pass
        time.sleep(0.3)
    cluster.stop()
    logs = [cluster.root / n for n in ("daemons.log", "slurmctld.log", "slurmd.log")]
    tail = " | ".join(p.read_text()[-300:] for p in logs if p.exists())
    pytest.skip(f"a single-node Slurm did not start: {what} ({tail})")


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    """One single-node Slurm for the session (its jobs see this machine's folders, as a
    cluster's nodes see a shared filesystem); stopped by PID at the end."""
    if os.geteuid() != 0:
        pytest.skip("starting Slurm's daemons needs root")
    missing = [name for name in NEEDED if shutil.which(name) is None]
    if missing:
        pytest.skip(f"Slurm is not installed (no {', '.join(missing)}): apt-get install "
                    "slurm-wlm munge")  # fmt: skip
    cluster = _start(tmp_path_factory.mktemp("slurm"))
    try:
        yield cluster
    finally:
        cluster.cancel_all()
        cluster.stop()


@pytest.fixture
def slurm(slurm_cluster: SlurmCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlurmCluster]:
    """The session's Slurm for one test: its client commands pointed at it (``SLURM_CONF``),
    a task that ends without a result given 1 s for it; every job cancelled afterwards."""
    from harness.runs.executors import slurm as executor

    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    monkeypatch.setattr(executor, "RESULT_WAIT_S", 1.0)
    yield slurm_cluster
    slurm_cluster.cancel_all()
