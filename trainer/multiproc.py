"""The launcher of a several-process run: torchrun as a child, signals forwarded, failures named.

`python -m trainer RUN` becomes this when `[device] nproc > 1`. It holds the run's lock
and is the pid in status.json, so stopping, killing and "is it alive?" work exactly as
for one process. When torchrun fails, the error of the rank that failed first becomes
the run's error (the other ranks only saw their peer vanish).
"""

from __future__ import annotations

import glob
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil

from trainer.failure import fail_run
from trainer.rundir import MetricsWriter, RunDir, read_metrics


def torchrun_command(run: RunDir, nproc: int, checkpoint: str | None) -> list[str]:
    """torchrun on this host with a free rendezvous port (`--standalone`), so jobs never merge."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
               "-m", "trainer", str(run.path), "--worker"]
    if checkpoint:
        command += ["--checkpoint", checkpoint]
    return command


def _workers(agent: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """The training processes under torchrun (they carry RANK; its own helpers do not)."""
    workers = []
    try:
        children = psutil.Process(agent.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    for child in children:
        try:
            if "RANK" in child.environ() and "--worker" in child.cmdline():
                workers.append(child)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return workers


def launch_workers(run: RunDir, nproc: int, checkpoint: str | None) -> int:
    """Run the workers to the end; returns torchrun's exit status (0 = every rank ended cleanly)."""
    for stale in glob.glob(str(run.path / ".rank*.error")):
        os.unlink(stale)
    run.write_status(state="starting", pid=os.getpid(), pgid=os.getpgid(0), host=socket.gethostname(),
                     error=None, world_size=nproc)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    agent = subprocess.Popen(torchrun_command(run, nproc, checkpoint), env=env)

    def forward(signum: int, _frame: object) -> None:
        # To the workers, not to torchrun: its agent would kill them before they save.
        for worker in _workers(agent):
            try:
                worker.send_signal(signum)
            except psutil.NoSuchProcess:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = agent.wait()
    records = read_metrics(run.metrics_path)
    ended = records[-1] if records and records[-1].get("kind") == "end" else None
    if code != 0 and ended is not None and ended.get("reason") != "failed" and not first_rank_error(run.path):
        # every rank got past its last write; a process that died on the way out costs nothing
        print(f"warning: torchrun exited with status {code} after the run ended ({ended.get('reason')})",
              flush=True)
        return 0
    if code != 0:
        error = first_rank_error(run.path) or (
            f"a training process died without an error (killed?); torchrun exited with status {code}, "
            "see train.log")
        step = (run.read_status() or {}).get("step") or 0
        if ended is not None:  # rank 0 ended it, with its own view
            MetricsWriter(run.metrics_path).write("event", int(step), level="error", code="crash",
                                                  message=error)
            run.write_status(state="failed", error=error)
            print(f"run failed: {error}", flush=True)
        else:
            fail_run(run, int(step), error)
        return 1
    return 0


def first_rank_error(run_path: Path) -> str | None:
    """`rank N: <error>` of the rank whose error file was written first."""
    files = sorted(glob.glob(str(Path(run_path) / ".rank*.error")), key=os.path.getmtime)
    for path in files:
        text = Path(path).read_text(encoding="utf-8").strip()
        if text:
            rank = Path(path).name[len(".rank"):-len(".error")]
            return f"rank {rank}: {text}"
    return None
