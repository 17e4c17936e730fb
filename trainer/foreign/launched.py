"""`voxtop launch`: any trainer's command, started detached and watched like voxtop's own runs.

`launch` makes a run folder (`launch.json`: the command, its folder and logdir; `status.json`;
`train.log`) and starts `python -m trainer.foreign.launched RUN_DIR` in its own session, as
`trainer.launch` starts voxtop's trainer: an SSH drop, a closed tmux pane or a quitting TUI never
stops it. That supervisor holds the run's lock, starts the command in its process group with its
output appended to train.log, writes a heartbeat to status.json (`running`), and at the end the
outcome with the exit code (`finished` for 0, `failed` otherwise, `stopped` when asked to stop).
Asked to stop (SIGTERM, as the Monitor's stop key and `trainer.launch.stop` send, or SIGINT), it
passes SIGINT to the command first, since these trainers save a checkpoint on Ctrl-C, then SIGTERM
if the command has not ended after a grace period. The run's curves and checkpoints come from its
logdir, read as another trainer's folder (`trainer.foreign.sources`).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from trainer.rundir.atomic import atomic_write_json
from trainer.rundir.layout import CheckpointFile, RunDir
from trainer.rundir.names import HEARTBEAT_S, RunError, new_run_name
from trainer.rundir.queries import CheckpointTable, RunSummary
from trainer.rundir.reader import MetricsReader
from trainer.rundir.source import RunDirSource

LAUNCH_FILE = "launch.json"
#: Seconds between SIGINT and SIGTERM when a launched command is asked to stop (VOXTOP_STOP_GRACE_S overrides).
STOP_GRACE_S = 60.0


def command_prefix(command: list[str]) -> str:
    """A run-name prefix from a command: its script's name (`train.py` -> `train`), else its program's."""
    for part in command:
        if part.endswith(".py"):
            return "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(part).stem) or "run"
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(command[0]).name) or "run"


def launch(runs_root: Path, command: list[str], name: str | None = None, logdir: Path | None = None,
           cwd: Path | None = None, env: dict[str, str] | None = None) -> RunDir:
    """Make a run folder for `command` and start it detached under its supervisor; returns the run."""
    if not command:
        raise RunError("nothing to launch: give the command after --, e.g. voxtop launch -- python train.py")
    runs_root = Path(runs_root)
    runs_root.mkdir(parents=True, exist_ok=True)
    base = new_run_name(name or command_prefix(command))
    for attempt in range(1000):
        path = runs_root / (base if attempt == 0 else f"{base}-{attempt}")
        try:
            path.mkdir()
            break
        except FileExistsError:
            continue
    else:
        raise RunError(f"could not find a free run name for {base!r} in {runs_root}")
    workdir = Path(cwd or os.getcwd()).resolve()
    resolved_logdir = (workdir / logdir).resolve() if logdir is not None else None
    atomic_write_json(path / LAUNCH_FILE, {"command": list(command), "cwd": str(workdir),
                                           "logdir": str(resolved_logdir) if resolved_logdir else None,
                                           "created_at": time.time()})
    run = RunDir(path)
    run.write_status(state="starting", step=0, epoch=0, total_steps=0, host=socket.gethostname(),
                     started_at=time.time(), pid=None, pgid=None, error=None, exit_code=None)
    log = open(run.log_path, "ab")
    try:
        process = subprocess.Popen([sys.executable, "-m", "trainer.foreign.launched", str(path)],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=str(workdir),
                                   env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    finally:
        log.close()
    run.write_status(pid=process.pid, pgid=process.pid)
    return run


def read_launch(folder: Path) -> dict[str, Any] | None:
    """A launched run's launch.json, None when the folder has none (or it is unreadable)."""
    try:
        found = json.loads((Path(folder) / LAUNCH_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return found if isinstance(found, dict) and isinstance(found.get("command"), list) else None


# --- the supervisor -------------------------------------------------------------------------------


def _outcome(returncode: int, stop_asked: bool) -> tuple[str, str | None]:
    """(state, error) of a command that ended with `returncode` (negative: killed by that signal)."""
    if returncode < 0:
        try:
            how = f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"killed by signal {-returncode}"
        return ("stopped", None) if stop_asked else ("failed", how)
    if returncode == 0:
        return ("stopped" if stop_asked else "finished"), None
    return ("stopped", None) if stop_asked and returncode in (130, 143) else ("failed", f"exit code {returncode}")


def supervise(folder: Path) -> int:
    """Run a launched command to its end, keeping the run's status; the exit code is the command's."""
    run = RunDir(Path(folder))
    spec = read_launch(run.path)
    if spec is None:
        print(f"voxtop launch: {run.path / LAUNCH_FILE} is missing or unreadable", flush=True)
        return 2
    run.acquire_lock()
    grace_s = float(os.environ.get("VOXTOP_STOP_GRACE_S") or STOP_GRACE_S)
    stop_asked: list[float] = []

    def ask_to_stop(signum: int, _frame: object) -> None:
        if not stop_asked:
            stop_asked.append(time.monotonic())

    signal.signal(signal.SIGTERM, ask_to_stop)
    signal.signal(signal.SIGINT, ask_to_stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    command = [str(part) for part in spec["command"]]
    print(f"voxtop launch: {' '.join(command)}", flush=True)
    env = {**os.environ, "VOXTOP_RUN_DIR": str(run.path)}
    if spec.get("logdir"):
        env["VOXTOP_LOGDIR"] = str(spec["logdir"])
    try:
        child = subprocess.Popen(command, cwd=spec.get("cwd") or None, stdin=subprocess.DEVNULL, env=env)
    except OSError as exc:
        run.force_status(state="failed", error=f"could not start {command[0]}: {exc}", exit_code=None,
                         ended_at=time.time())
        print(f"voxtop launch: could not start {command[0]}: {exc}", flush=True)
        return 1
    run.write_status(state="running", pid=os.getpid(), pgid=os.getpgid(0), child_pid=child.pid,
                     host=socket.gethostname(), error=None)
    sent_int = sent_term = False
    next_beat = time.monotonic() + HEARTBEAT_S
    while True:
        try:
            returncode = child.wait(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if stop_asked and not sent_int:
            sent_int = True
            run.write_status(state="stopping")
            print("voxtop launch: stopping: SIGINT to the command", flush=True)
            _signal(child, signal.SIGINT)
        elif stop_asked and not sent_term and now - stop_asked[0] > grace_s:
            sent_term = True
            print(f"voxtop launch: still running {grace_s:.0f} s after SIGINT: SIGTERM", flush=True)
            _signal(child, signal.SIGTERM)
        if now >= next_beat:
            run.write_status()  # the heartbeat: updated_at
            next_beat = now + HEARTBEAT_S
    state, error = _outcome(returncode, bool(stop_asked))
    print(f"voxtop launch: the command ended: {state}" + (f" ({error})" if error else f", exit code {returncode}"),
          flush=True)
    run.force_status(state=state, error=error, exit_code=returncode, ended_at=time.time())
    run.release_lock()
    return 0 if state in ("finished", "stopped") else 1


def _signal(child: subprocess.Popen[bytes], signum: int) -> None:
    try:
        child.send_signal(signum)
    except ProcessLookupError:
        pass


# --- the run source -------------------------------------------------------------------------------


class LaunchedRun(RunDirSource):
    """A command started by `voxtop launch`: status and log from its run folder, the rest from its logdir."""

    def __init__(self, run: RunDir, spec: dict[str, Any]):
        super().__init__(run)
        self.spec = spec
        self._metrics: Any = None

    @property
    def command(self) -> list[str]:
        return [str(part) for part in self.spec.get("command", [])]

    @property
    def logdir(self) -> Path | None:
        raw = self.spec.get("logdir")
        return Path(raw) if raw else None

    def _foreign(self) -> Any:
        """The logdir read as another trainer's folder (None until it has something voxtop reads)."""
        if self._metrics is None and self.logdir is not None:
            from trainer.foreign.layouts import recognise
            from trainer.foreign.sources import ForeignRun

            layout = recognise(self.logdir)
            if layout is not None:
                self._metrics = ForeignRun(layout, name=self.name)
        return self._metrics

    def summary(self) -> RunSummary:
        status = self.run.read_status() or {}
        foreign = self._foreign()
        found = foreign.summary() if foreign is not None else None
        error = status.get("error")
        return RunSummary(name=self.name, path=self.path, state=self.run.effective_state(status or None),
                          step=found.step if found else 0, total_steps=0, epoch=0,
                          train_loss=found.train_loss if found else None, val_loss=found.val_loss if found else None,
                          val_attention=None, started_at=status.get("started_at"),
                          error=str(error) if error else None, checkpoints=found.checkpoints if found else 0,
                          command=shlex.join(self.command))

    def metrics_reader(self) -> MetricsReader:
        foreign = self._foreign()
        return foreign.metrics_reader() if foreign is not None else MetricsReader(self.run.metrics_path)

    def checkpoints(self) -> list[CheckpointFile]:
        foreign = self._foreign()
        return foreign.checkpoints() if foreign is not None else []

    def checkpoint_table(self, detector: Any = None, sentences: bool = True) -> CheckpointTable:
        foreign = self._foreign()
        return foreign.checkpoint_table(detector, sentences) if foreign is not None else CheckpointTable()

    @property
    def config_path(self) -> Path:
        """A launched command has no voxtop config: this path does not exist, and readers take the defaults."""
        return self.run.config_path

    @property
    def checkpoints_dir(self) -> Path | None:
        foreign = self._foreign()
        return foreign.checkpoints_dir if foreign is not None else self.logdir

    def detector_config(self) -> Any:
        foreign = self._foreign()
        if foreign is not None:
            return foreign.detector_config()
        from trainer.overtrain import DetectorConfig

        return DetectorConfig()

    def picture_for_step(self, step: int, kind: str) -> Path | None:
        foreign = self._foreign()
        return foreign.picture_for_step(step, kind) if foreign is not None else None

    def live_analysis(self) -> Any:
        from trainer.foreign.sources import ForeignLiveAnalysis

        return ForeignLiveAnalysis(self)

    def analysis(self, tag: str | None = None, detector: Any = None) -> Any:
        """The logdir's analysis (`ForeignRun.analysis`), None while it has nothing voxtop reads."""
        foreign = self._foreign()
        return foreign.analysis(tag, detector) if foreign is not None else None

    def tail(self, max_bytes: int) -> tuple[list[dict[str, Any]], int]:
        foreign = self._foreign()
        return foreign.tail(max_bytes) if foreign is not None else ([], 0)

    def picture_path(self, record: dict[str, Any], kind: str) -> Path | None:
        foreign = self._foreign()
        return foreign.picture_path(record, kind) if foreign is not None else None


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m trainer.foreign.launched RUN_DIR (voxtop launch starts this)", file=sys.stderr)
        sys.exit(2)
    sys.exit(supervise(Path(sys.argv[1])))
