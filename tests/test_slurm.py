"""Generated launch scripts run for real: bash on this machine, sbatch on a one-node Slurm on localhost.

The fixture starts munged, slurmctld and slurmd (Debian's munge and slurm-wlm, which
.ci/run installs) with everything in a temporary folder and free ports, so it touches no
system configuration. If Slurm cannot start here, the Slurm test runs the same script with
plain bash (its outside-Slurm path), checks that run, and then skips with the reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from conftest import VOXTOP, only_run, tiny_config
from trainer.rundir import RunDir, read_metrics

pytestmark = pytest.mark.slow

DAEMONS = ("munged", "slurmctld", "slurmd")
# Two steps, one checkpoint: the point is the launch path, not the training.
SHORT = {"train": {"max_steps": 2}, "checkpoint": {"every_steps": 2}}


@dataclass
class Slurm:
    """A running one-node cluster (`env` for its client commands), or why there is none."""

    env: dict[str, str] = field(default_factory=dict)
    reason: str | None = None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def missing_prerequisite() -> str | None:
    missing = [tool for tool in ("munged", "slurmctld", "slurmd", "sbatch", "sinfo", "scontrol")
               if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists()]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install slurm-wlm munge; .ci/run does)"
    if os.geteuid() != 0:
        return "slurmd must run as root to start jobs, and the tests do not run as root"
    return None


def slurm_conf(folder: Path, socket_path: Path, node: str, ports: tuple[int, int]) -> str:
    cpus = os.cpu_count() or 1
    return "\n".join([
        "ClusterName=voxtoptest", f"SlurmctldHost={node}(127.0.0.1)", "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", f"AuthInfo=socket={socket_path}", "CredType=cred/munge",
        f"SlurmctldPort={ports[0]}", f"SlurmdPort={ports[1]}",
        f"StateSaveLocation={folder}/state", f"SlurmdSpoolDir={folder}/spool",
        f"SlurmctldPidFile={folder}/slurmctld.pid", f"SlurmdPidFile={folder}/slurmd.pid",
        f"SlurmctldLogFile={folder}/slurmctld.log", f"SlurmdLogFile={folder}/slurmd.log",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",  # no cgroups needed
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU", "SchedulerType=sched/builtin",
        "JobCompType=jobcomp/none", "AccountingStorageType=accounting_storage/none",
        "JobAcctGatherType=jobacct_gather/none", "MpiDefault=none", "ReturnToService=2",
        f"NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN",
        f"PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP", ""])


def start_cluster(folder: Path, socket_folder: Path) -> Slurm:
    """Start the three daemons; a Slurm with `reason` set if they do not come up.

    munged wants its socket in a folder every user can reach (pytest's own are private), so
    that one lives in `socket_folder`.
    """
    node = socket.gethostname().split(".")[0]
    for sub in ("state", "spool"):
        (folder / sub).mkdir()
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    socket_folder.chmod(0o755)
    socket_path = socket_folder / "munge.sock"
    conf = folder / "slurm.conf"
    conf.write_text(slurm_conf(folder, socket_path, node, (free_port(), free_port())))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    commands = [
        ["munged", f"--socket={socket_path}", f"--key-file={key}", f"--pid-file={folder}/munged.pid",
         f"--log-file={folder}/munged.log", f"--seed-file={folder}/munge.seed"],
        ["slurmctld", "-f", str(conf), "-i"],
        ["slurmd", "-f", str(conf), "-N", node],
    ]
    for command in commands:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            return Slurm(reason=f"`{command[0]}` failed: {(result.stderr or result.stdout).strip()[-500:]}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=env, capture_output=True, text=True)
        if state.stdout.strip() == "idle":
            return Slurm(env=env)
        time.sleep(0.5)
    logs = "; ".join(f"{name}.log: {_tail(folder / f'{name}.log')}" for name in DAEMONS)
    return Slurm(reason=f"the node never became idle (sinfo: {state.stdout.strip() or state.stderr.strip()}); "
                        f"{logs}")


def _tail(path: Path, lines: int = 3) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(none)"


def stop_cluster(folder: Path) -> None:
    for name in reversed(DAEMONS):
        try:
            pid = int((folder / f"{name}.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (reaped by nobody in a container) is as good as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slurm]:
    reason = missing_prerequisite()
    if reason:
        yield Slurm(reason=reason)
        return
    folder = tmp_path_factory.mktemp("slurm")
    socket_folder = Path(tempfile.mkdtemp(prefix="voxtop-munge-", dir="/tmp"))
    try:
        cluster = start_cluster(folder, socket_folder)
        print(f"slurm: {cluster.reason or 'one node up, files in ' + str(folder)}")
        yield cluster
    finally:
        stop_cluster(folder)
        shutil.rmtree(socket_folder, ignore_errors=True)


def write_script(tmp_path: Path, fmt: str, *extra: str) -> tuple[Path, Path]:
    """`voxtop script` run in `tmp_path` as the project folder, so the job's files land there."""
    runs = tmp_path / "runs"
    script = tmp_path / f"job.{fmt}"
    result = subprocess.run([*VOXTOP, "--runs", "runs", "script", str(tiny_config(tmp_path, **SHORT)),
                             "--format", fmt, "--gpus-per-node", "0", "--name", "scripted", "--out", str(script),
                             *extra], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return script, runs


def assert_finished(runs: Path) -> RunDir:
    run = RunDir(only_run(runs))
    status = run.read_status()
    assert status["state"] == "finished", (status, run.log_path.read_text()[-3000:])
    assert status["step"] == 2
    assert [r["reason"] for r in read_metrics(run.metrics_path) if r["kind"] == "end"] == ["finished"]
    assert "run finished at step 2" in run.log_path.read_text()
    return run


def test_bash_script_trains_the_config_to_a_finished_run(tmp_path: Path) -> None:
    script, runs = write_script(tmp_path, "bash")
    result = subprocess.run(["bash", str(script)], cwd="/", capture_output=True, text=True, timeout=540)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "run finished at step 2" in result.stdout
    assert_finished(runs)


def test_slurm_script_submitted_with_sbatch_finishes_the_run(tmp_path: Path, slurm: Slurm) -> None:
    script, runs = write_script(tmp_path, "slurm", "--cpus-per-task", "1")
    if slurm.reason is not None:
        result = subprocess.run(["bash", str(script)], cwd=tmp_path, capture_output=True, text=True,
                                timeout=540, env={k: v for k, v in os.environ.items() if not k.startswith("SLURM_")})
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "not inside a Slurm job" in result.stderr
        assert_finished(runs)
        pytest.skip(f"Slurm could not start here ({slurm.reason}); the same script ran with bash and finished")
    result = subprocess.run(["sbatch", "--wait", str(script)], cwd=tmp_path, env=slurm.env,
                            capture_output=True, text=True, timeout=540)
    job_log = "".join(p.read_text(errors="replace") for p in tmp_path.glob("slurm-voxtop-scripted-*.out"))
    assert result.returncode == 0, result.stdout + result.stderr + job_log[-3000:]
    assert "voxtop: run directory" in job_log and "not inside a Slurm job" not in job_log
    run = assert_finished(runs)
    assert run.log_path.read_text().count("run finished at step 2") == 1
