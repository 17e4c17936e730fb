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
from trainer.rundir.layout import remove_new_run
from trainer.rundir.status import process_start_ticks


def run_prefix(config: config_mod.Config, name: str | None) -> str:
    """`--name`, else the dataset's folder name."""
    return name or Path(config.data.dataset).name or "run"


def check_before_run(config: config_mod.Config) -> None:
    """RunError for what would fail a run at its start and can be seen now, before its folder is made:
    a pretrained file that is missing, empty or not a checkpoint."""
    if config.train.pretrained:
        problem = config_mod.pretrained_problem(config.train.pretrained)
        if problem is not None:
            raise RunError(problem)


def prepare_run(runs_root: Path, config: config_mod.Config, name: str | None = None) -> RunDir:
    """A new run directory holding the fully resolved config and a `starting` status."""
    check_before_run(config)
    return create_run(runs_root, run_prefix(config, name), config_mod.dumps(config), status=_new_status())


def _new_status() -> dict[str, object]:
    """The status of a run just made: `starting`, no trainer yet."""
    return {"state": "starting", "step": 0, "epoch": 0, "total_steps": 0, "host": socket.gethostname(),
            "started_at": time.time(), "pid": None, "pgid": None, "error": None}


#: Models trained as linked runs, one per network; `[model] network` empty means all of them.
PAIRED_NETWORKS = {"dctts": ("text2mel", "ssrn")}


def prepare_runs(runs_root: Path, config: config_mod.Config, name: str | None = None) -> list[RunDir]:
    """One run; or, for a model of several networks with `[model] network` empty, one run per network,
    each naming the other in `[model] pair` (`<prefix>-text2mel_<time>` and `<prefix>-ssrn_<time>`)."""
    networks = PAIRED_NETWORKS.get(config.model.name)
    if not networks or config.model.network:
        return [prepare_run(runs_root, config, name)]
    check_before_run(config)
    prefix = run_prefix(config, name)
    now = datetime.now()
    while True:  # one time stamp free for every network, so the names found in `pair` are the folders made
        names = {network: new_run_name(f"{prefix}-{network}", now) for network in networks}
        if not any((Path(runs_root) / folder).exists() for folder in names.values()):
            break
        now += timedelta(seconds=1)
    runs: list[RunDir] = []
    try:
        for network in networks:
            pair = next(names[other] for other in networks if other != network)
            model = dataclasses.replace(config.model, network=network, pair=pair)
            runs.append(create_run(runs_root, f"{prefix}-{network}",
                                   config_mod.dumps(dataclasses.replace(config, model=model)), now,
                                   status=_new_status()))
    except BaseException:
        for run in runs:  # all of the pair or none of it
            remove_new_run(run)
        raise
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
                     pid_start=process_start_ticks(process.pid), error=None)
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
