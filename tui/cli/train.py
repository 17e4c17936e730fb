"""`voxtop train`, `resume` and `prepare`: a run from a config, in the foreground or made for later.

The trainer always runs as its own process; nothing here imports torch.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.rundir import RunDir, RunError
from tui.plain import visible_bytes
from tui.cli.common import Refused, config_parent, fail, runs_parent

if TYPE_CHECKING:
    from trainer.config import Config


def load_checked_config(path: Path, overrides: list[str], *, dataset_here: bool = True) -> Config:
    """The validated config, its dataset checked as `voxtop train` does.

    With `dataset_here=False` a dataset missing on this machine is only a warning: a script
    may be meant for a machine that has it.
    """
    from trainer import config as config_mod
    from trainer.dataset import scan

    try:
        config = config_mod.load(path, overrides)
    except config_mod.ConfigError as exc:
        raise Refused(f"invalid config:\n{exc}") from None
    if not config.data.dataset:
        raise Refused(f"{path}: data.dataset is not set; name the dataset folder "
                      "(or pass --set data.dataset=PATH)")
    dataset = Path(config.data.dataset)
    if not dataset.exists():
        if dataset_here:
            raise Refused(f"dataset {dataset} does not exist (data.dataset in {path})")
        print(f"warning: dataset {dataset} is not on this machine; the script needs it where it runs",
              file=sys.stderr)
        return config
    report = scan(dataset, config.data.language, config.data.sample_rate, config.data.resample,
                  n_fft=config.data.n_fft)
    if not report.valid:
        lines = "\n".join(str(p) for p in report.errors[:20])
        raise Refused(f"dataset {dataset} is not valid:\n{lines}\n"
                      f"(voxtop dataset check {dataset} lists every problem)")
    return config


def run_foreground(run: RunDir, checkpoint: Path | None = None) -> int:
    """Run the trainer as a child, echoing its output to the terminal and appending it to train.log.

    Ctrl-C reaches the child too (same process group), which saves and stops; we only wait.
    SIGTERM and SIGHUP (a closed tmux pane or SSH session) sent to this process alone are passed
    on as SIGTERM, so the trainer saves and stops instead of training on with no one reading it.
    """
    from trainer.launch import trainer_command

    command = trainer_command(run, checkpoint)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with open(run.log_path, "ab") as log:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=_unbuffered_env())

            def pass_on(_signum: int, _frame: object) -> None:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)

            signal.signal(signal.SIGTERM, pass_on)
            signal.signal(signal.SIGHUP, pass_on)
            assert process.stdout is not None
            for line in process.stdout:
                log.write(line)
                log.flush()
                try:
                    sys.stdout.buffer.write(visible_bytes(line))
                    sys.stdout.flush()
                except OSError:
                    pass  # the terminal is gone (SIGHUP); train.log still gets every line
            return process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _unbuffered_env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def prepared_runs(args: argparse.Namespace) -> list[RunDir]:
    """CONFIG checked (with --set) and its run folders made, as `train` and `prepare` do: one, or a DC-TTS
    config's pair. Refused or RunError say why nothing was made."""
    from trainer.launch import prepare_runs

    return prepare_runs(args.runs, load_checked_config(args.config, args.set), args.name)


def cmd_train(args: argparse.Namespace) -> int:
    try:
        runs = prepared_runs(args)
    except (Refused, RunError) as exc:
        return fail(str(exc))
    for run in runs:
        print(f"run directory: {run.path}", flush=True)
    return run_foreground(runs[0]) if len(runs) == 1 else run_pair_foreground(runs)


def run_pair_foreground(runs: list[RunDir]) -> int:
    """Linked runs (DC-TTS: Text2Mel and SSRN) side by side: one trainer each, their lines prefixed
    with the run's network, each also appended to its own train.log; a signal stops both."""
    import threading

    from trainer.launch import trainer_command

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the trainers (same process group)
    processes: list[subprocess.Popen[bytes]] = []
    lock = threading.Lock()

    def pass_on(_signum: int, _frame: object) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    def echo(run: RunDir, process: subprocess.Popen[bytes]) -> None:
        label = run.name.rsplit("_", 2)[0].rsplit("-", 1)[-1]
        assert process.stdout is not None
        with open(run.log_path, "ab") as log:
            for line in process.stdout:
                log.write(line)
                log.flush()
                with lock:
                    try:
                        sys.stdout.buffer.write(f"[{label}] ".encode() + visible_bytes(line))
                        sys.stdout.flush()
                    except OSError:
                        pass  # the terminal is gone; train.log still gets every line

    try:
        signal.signal(signal.SIGTERM, pass_on)
        signal.signal(signal.SIGHUP, pass_on)
        threads = []
        for run in runs:
            process = subprocess.Popen(trainer_command(run), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=_unbuffered_env())
            processes.append(process)
            threads.append(threading.Thread(target=echo, args=(run, process), daemon=True))
            threads[-1].start()
        codes = [process.wait() for process in processes]
        for thread in threads:
            thread.join(timeout=5)
        return max(codes)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cmd_resume(args: argparse.Namespace) -> int:
    from trainer.rundir import resolve_run

    try:
        run = resolve_run(args.runs, args.run)
        checkpoint = run.resolve_checkpoint(args.checkpoint) if args.checkpoint else None
    except RunError as exc:
        return fail(str(exc))
    if run.is_locked():
        return fail(f"{run.path} is already being trained; stop it first (voxtop runs shows it)")
    if checkpoint is None and not run.checkpoints():
        return fail(f"{run.path} has no checkpoint to resume from")
    if args.set:
        from trainer.resume_settings import Refused as SettingRefused
        from trainer.resume_settings import apply_resume_settings

        try:
            changes = apply_resume_settings(run, args.set)
        except SettingRefused as exc:
            return fail(str(exc))
        for change in changes:
            print(f"config.toml: {change}", flush=True)
    return run_foreground(run, checkpoint)


def cmd_prepare(args: argparse.Namespace) -> int:
    try:
        runs = prepared_runs(args)
    except (Refused, RunError) as exc:
        return fail(str(exc))
    for run in runs:  # a DC-TTS config makes its pair of runs, one path a line
        print(run.path)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `train`, `resume` and `prepare`."""
    parents = [runs_parent()]
    train = sub.add_parser("train", parents=[*parents, config_parent()],
                           help="start a run in the foreground from a TOML config")
    train.set_defaults(func=cmd_train)

    resume = sub.add_parser("resume", parents=parents, help="continue a run from its newest (or a chosen) checkpoint")
    resume.add_argument("run", help="run name (in the runs folder) or path")
    resume.add_argument("--checkpoint", help="checkpoint file to resume from")
    resume.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="change a setting of the run before resuming, e.g. train.epochs=1000 to "
                             "train longer (repeatable; [train], [checkpoint], [schedule], [health], [device])")
    resume.set_defaults(func=cmd_resume)

    prepare = sub.add_parser("prepare", parents=[*parents, config_parent()],
                             help="make a run directory without starting it; prints its path (for scripts)")
    prepare.set_defaults(func=cmd_prepare)
