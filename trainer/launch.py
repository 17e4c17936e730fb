"""Prepare run directories and start the trainer detached from whoever launched it (no torch).

The TUI and `voxtop train`/`resume` both come through here, so a run started from either
looks the same: its own session (an SSH drop or closed tmux pane never stops it), output
appended to train.log, and a status.json saying `starting` before the process exists.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from trainer import config as config_mod
from trainer.rundir import RunDir, RunError, create_run, new_run_name


def run_prefix(config: config_mod.Config, name: str | None) -> str:
    """`--name`, else the dataset's folder name."""
    return name or Path(config.data.dataset).name or "run"


def prepare_run(runs_root: Path, config: config_mod.Config, name: str | None = None) -> RunDir:
    """A new run directory holding the fully resolved config and a `starting` status."""
    run = create_run(runs_root, run_prefix(config, name), config_mod.dumps(config))
    run.write_status(state="starting", step=0, epoch=0, total_steps=0, host=socket.gethostname(),
                     started_at=time.time(), pid=None, pgid=None, error=None)
    return run


#: Models trained as linked runs, one per network; `[model] network` empty means all of them.
PAIRED_NETWORKS = {"dctts": ("text2mel", "ssrn")}


def prepare_runs(runs_root: Path, config: config_mod.Config, name: str | None = None) -> list[RunDir]:
    """One run; or, for a model of several networks with `[model] network` empty, one run per network,
    each naming the other in `[model] pair` (`<prefix>-text2mel_<time>` and `<prefix>-ssrn_<time>`)."""
    networks = PAIRED_NETWORKS.get(config.model.name)
    if not networks or config.model.network:
        return [prepare_run(runs_root, config, name)]
    prefix = run_prefix(config, name)
    now = datetime.now()
    while True:  # one time stamp free for every network, so the names found in `pair` are the folders made
        names = {network: new_run_name(f"{prefix}-{network}", now) for network in networks}
        if not any((Path(runs_root) / folder).exists() for folder in names.values()):
            break
        now += timedelta(seconds=1)
    runs = []
    for network in networks:
        pair = next(names[other] for other in networks if other != network)
        model = dataclasses.replace(config.model, network=network, pair=pair)
        run = create_run(runs_root, f"{prefix}-{network}", config_mod.dumps(dataclasses.replace(config, model=model)),
                         now)
        run.write_status(state="starting", step=0, epoch=0, total_steps=0, host=socket.gethostname(),
                         started_at=time.time(), pid=None, pgid=None, error=None)
        runs.append(run)
    return runs


def trainer_command(run: RunDir, checkpoint: Path | None = None) -> list[str]:
    """The argument list that runs the trainer on `run` (never a shell string)."""
    command = [sys.executable, "-m", "trainer", str(run.path)]
    if checkpoint is not None:
        command += ["--checkpoint", str(checkpoint)]
    return command


def start_detached(run: RunDir, checkpoint: Path | None = None,
                   env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start the trainer in its own session with stdout/stderr appended to train.log."""
    if run.is_locked():
        raise RunError(f"{run.path} already has a trainer running; stop it before resuming")
    log = open(run.log_path, "ab")
    try:
        process = subprocess.Popen(
            trainer_command(run, checkpoint), stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, cwd=os.getcwd(),
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    finally:
        log.close()
    run.write_status(state="starting", pid=process.pid, pgid=process.pid, host=socket.gethostname(),
                     error=None)
    return process


def stop(run: RunDir, kill: bool = False) -> bool:
    """Ask the run's trainer to stop (SIGTERM: save and exit) or kill it (SIGKILL to its group).

    Only signals a trainer that holds the run's lock, so a stale pid that now belongs to
    some other program is never touched.
    """
    status = run.read_status() or {}
    pid, pgid = status.get("pid"), status.get("pgid")
    if not pid or status.get("host") != socket.gethostname() or not run.is_locked():
        return False
    try:
        if kill:
            os.killpg(int(pgid or pid), signal.SIGKILL)
        else:
            os.kill(int(pid), signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True
