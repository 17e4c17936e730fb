"""`python -m trainer RUN_DIR [--checkpoint PATH]`: train a prepared run directory.

This is what the TUI and `voxtop train`/`resume` launch. A run that already has
checkpoints continues from the newest one (or `--checkpoint`): an existing run is never
restarted from scratch. Any crash ends as `failed` with the error in status.json, an
`end` record and the traceback in train.log — never a silent death.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import traceback
from pathlib import Path

from trainer.failure import fail_run, log
from trainer.rundir import RunDir, RunError
from trainer.rundir.faults import describe_os_error
from trainer.rundir.status import process_start_ticks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--checkpoint", help="resume from this checkpoint instead of the newest")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # set by our torchrun launch
    args = parser.parse_args(argv)
    run = RunDir(args.run_dir)
    if not run.config_path.is_file():
        print(f"error: {run.path} is not a voxtop run directory (no config.toml)", file=sys.stderr)
        return 1
    if args.worker:
        code = train(run, args.checkpoint, worker=True, owner=_owns_run(run))
        sys.stdout.flush()
        sys.stderr.flush()
        # Leave at once: gloo's threads may abort the interpreter's teardown ("terminate called
        # without an active exception"), which torchrun would report as a failed rank.
        os._exit(code)
    try:
        run.acquire_lock()
    except RunError as exc:
        print(f"error: {exc}", file=sys.stderr)  # the running trainer owns the status; leave it alone
        return 1
    try:
        nproc = _nproc(run)
        if nproc > 1:
            from trainer.multiproc import launch_workers

            return launch_workers(run, nproc, args.checkpoint)
        return train(run, args.checkpoint, worker=False)
    finally:
        run.release_lock()


def _owns_run(run: RunDir) -> bool:
    """Whether this worker must stand for the run: rank 0 when no launcher holds the lock.

    Under `srun torchrun` on several machines there is no voxtop launcher; rank 0 then takes
    the lock and puts its pid in status.json, so watchers see the run alive and can stop it.
    """
    from trainer.distributed import ranks_from_env

    if not ranks_from_env().is_main:
        return False
    try:
        run.acquire_lock()
    except RunError:
        return False  # our launcher holds it
    return True


def _nproc(run: RunDir) -> int:
    from trainer.config import ConfigError, load

    try:
        return load(run.config_path, run_config=True).device.nproc
    except ConfigError:
        return 1  # train() reports the config error as the run's failure


def train(run: RunDir, checkpoint_arg: str | None, worker: bool, owner: bool = False) -> int:
    """Train in this process (one rank of several when `worker`); every failure ends visibly."""
    from trainer.distributed import error_file, ranks_from_env, shutdown

    ranks = ranks_from_env()
    trainer = None
    heartbeat = None
    try:
        from trainer.config import load

        config = load(run.config_path, run_config=True)
        checkpoint = run.resolve_checkpoint(checkpoint_arg)
        if not worker or owner:
            for temp in run.remove_temp_files():  # we hold the lock: these are a killed trainer's
                log(f"removed {temp.relative_to(run.path)}, left half-written by an earlier trainer")
            run.write_status(state="starting", pid=os.getpid(), pgid=os.getpgid(0),
                             pid_start=process_start_ticks(os.getpid()), host=socket.gethostname(), error=None)
        if ranks.is_main:  # the writer of status.json beats while features, validation or a save take long
            heartbeat = run.start_heartbeat()
        from trainer.loop import Trainer

        trainer = Trainer(run, config, resume_from=checkpoint, log=log, ranks=ranks)
        # SIGHUP is a closed terminal, tmux pane or SSH session: save and stop, as for SIGTERM
        for stop_signal in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(stop_signal, trainer.request_stop)
        trainer.setup()
        trainer.fit()
        return 0
    except BaseException as exc:  # noqa: BLE001 — every failure must end the run visibly
        error = describe_failure(run, exc)
        try:
            if isinstance(exc, OSError) and exc.errno is not None:
                print(f"error: {error}", file=sys.stderr)  # a filesystem fault is a sentence, not a traceback
            else:
                traceback.print_exc()
            sys.stderr.flush()
        except OSError:
            pass  # train.log is on the disk that failed
        if worker:
            try:
                with open(error_file(run.path, ranks.rank), "w", encoding="utf-8") as handle:
                    handle.write(error + "\n")
            except OSError:
                pass
        if ranks.is_main:
            step = trainer.progress.step if trainer is not None else 0
            fail_run(run, step, error, trainer.metrics if trainer is not None else None)
        return 1
    finally:
        if heartbeat is not None:
            heartbeat.set()
        if trainer is not None and trainer.metrics is not None:
            trainer.metrics.close()
        shutdown()


def describe_failure(run: RunDir, exc: BaseException) -> str:
    """The last line of the traceback; a filesystem fault as a sentence that says what to do
    (`disk full writing <path> (...): free space on the disk, then `voxtop resume <run>``)."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return describe_os_error(exc, resume=run.name)
    return traceback.format_exception_only(type(exc), exc)[-1].strip()


if __name__ == "__main__":
    sys.exit(main())
