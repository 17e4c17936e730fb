"""Headless subcommands for scripts, logs and clusters: watch, script, prepare, export (no torch here).

Trainer modules are imported inside the commands; `trainer.export` (torch) only by `export`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainer.config import Config


class Refused(Exception):
    """Input that a command cannot use; the message says what, where and what to do."""


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


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
    report = scan(dataset, config.data.language, config.data.sample_rate, config.data.resample)
    if not report.valid:
        lines = "\n".join(str(p) for p in report.errors[:20])
        raise Refused(f"dataset {dataset} is not valid:\n{lines}\n"
                      f"(voxtop dataset check {dataset} lists every problem)")
    return config


# --- resume with other settings ----------------------------------------------------------------

#: Sections a resumed run may change: how long and how it trains, never what its weights are.
RESUME_SECTIONS = ("train", "checkpoint", "schedule", "health", "device")
FIXED_ON_RESUME = {"train.pretrained"}  # only read at a fresh start
ALSO_ON_RESUME = {"data.alignment_text"}  # the sentence rendered at each checkpoint


def resume_settable(key: str) -> bool:
    """Whether `key` may change when a run resumes (epochs, learning rate, ...; not model or features)."""
    return (key.split(".")[0] in RESUME_SECTIONS and key not in FIXED_ON_RESUME) or key in ALSO_ON_RESUME


def apply_resume_settings(run: Any, overrides: list[str]) -> list[str]:
    """Apply `section.key=value` overrides to a stopped run's config.toml; the changes, as `key: old -> new`.

    The trainer reads config.toml when it resumes, so `train.epochs=1000` trains on to 1000 epochs.
    Model and feature settings are refused: the checkpoint's weights were made for them. Each change
    is also appended to train.log, so the run's own history says what was changed and when.
    """
    import time

    from trainer import config as config_mod
    from trainer.rundir import atomic_write_text

    try:
        before = config_mod.load(run.config_path)
        after = config_mod.load(run.config_path, overrides)
    except config_mod.ConfigError as exc:
        raise Refused(f"invalid setting for {run.name}:\n{exc}") from None
    old, new = _flat(before), _flat(after)
    changed = [key for key in new if new[key] != old[key]]
    fixed = [key for key in changed if not resume_settable(key)]
    if fixed:
        raise Refused(f"{', '.join(fixed)} cannot change when a run resumes: its checkpoints were made "
                      f"for {', '.join(f'{k} = {old[k]!r}' for k in fixed)}. Start a new run instead, "
                      "e.g. with --set train.pretrained=CHECKPOINT to start from this one's weights")
    changes = [f"{key}: {old[key]!r} -> {new[key]!r}" for key in changed]
    if changes:
        atomic_write_text(run.config_path, config_mod.dumps(after))
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(run.log_path, "a", encoding="utf-8") as log:
            log.writelines(f"{stamp} voxtop resume: set {change}\n" for change in changes)
    return changes


def _flat(config: Any) -> dict[str, Any]:
    return {f"{section}.{name}": value for section, fields in config.to_dict().items() for name, value in fields.items()}


# --- watch ---------------------------------------------------------------------------------


def cmd_watch(args: argparse.Namespace) -> int:
    from trainer.rundir import RunError, resolve_run
    from tui.watch import watch

    try:
        run = resolve_run(args.runs, args.run)
    except RunError as exc:
        return _fail(f"{exc}; `voxtop runs` lists the runs in {args.runs}")
    try:
        return watch(run, from_start=args.from_start, tail_lines=args.lines, interval_s=args.interval)
    except BrokenPipeError:  # `voxtop watch RUN | head`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


# --- prepare and script ----------------------------------------------------------------------


def cmd_prepare(args: argparse.Namespace) -> int:
    from trainer.launch import prepare_run
    from trainer.rundir import RunError

    try:
        config = load_checked_config(args.config, args.set)
        run = prepare_run(args.runs, config, args.name)
    except (Refused, RunError) as exc:
        return _fail(str(exc))
    print(run.path)
    return 0


def cmd_script(args: argparse.Namespace) -> int:
    from trainer.launch import run_prefix
    from trainer.rundir import RunError, check_run_prefix
    from tui.scripts import ScriptError, ScriptSpec, render

    if args.format == "bash" and args.nodes > 1:
        print(f"voxtop script: error: --nodes {args.nodes}: a bash script runs on one machine; "
              "use --format slurm for several", file=sys.stderr)
        return 2
    venv = _venv_arg(args.venv)
    try:
        config = load_checked_config(args.config, args.set, dataset_here=False)
        prefix = check_run_prefix(run_prefix(config, args.name))
        nproc = config.device.nproc
        if args.gpus_per_node is not None:
            gpus = args.gpus_per_node
        else:  # what the config asks for: one GPU per process, none on a CPU-only config
            gpus = 0 if config.device.accelerator == "cpu" else nproc
        spec = ScriptSpec(format=args.format, config=args.config, runs=args.runs, root=Path.cwd(),
                          prefix=prefix, name=args.name, overrides=args.set, nodes=args.nodes,
                          gpus_per_node=gpus, config_nproc=nproc, cpus_per_task=args.cpus_per_task,
                          time=args.time, partition=args.partition, venv=venv, paths=args.paths,
                          out=args.out)
        text = render(spec)
    except (Refused, RunError, ScriptError) as exc:
        return _fail(str(exc))
    for note in dict.fromkeys(spec.notes):
        print(f"note: {note}", file=sys.stderr)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.write_text(text, encoding="utf-8")
        args.out.chmod(args.out.stat().st_mode | 0o111)
    except OSError as exc:
        return _fail(f"cannot write {args.out}: {exc.strerror}")
    submit = f"sbatch {args.out}" if args.format == "slurm" else f"bash {args.out}"
    print(f"wrote {args.out}; start it with: {submit}", file=sys.stderr)
    return 0


def _venv_arg(value: str | None) -> Path | None:
    """--venv PATH, `none`, or by default the environment voxtop itself runs in."""
    if value == "none":
        return None
    if value:
        return Path(value)
    return Path(sys.prefix) if sys.prefix != sys.base_prefix else None


# --- export ------------------------------------------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from trainer.rundir import RunError, resolve_run

    try:
        run = resolve_run(args.runs, args.run)
    except RunError as exc:
        return _fail(f"{exc}; `voxtop runs` lists the runs in {args.runs}")
    from trainer.export import ExportError, export_run

    try:
        result = export_run(run, args.out, args.checkpoint)
    except ExportError as exc:
        return _fail(str(exc))
    print(f"exported step {result.step} of {run.name} ({result.reason}) to {result.out}")
    return 0


# --- argument parsing ------------------------------------------------------------------------


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be above 0")
    return value


def _int_at_least(minimum: int):  # noqa: ANN202 — an argparse type
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value
    return parse


def _matching(pattern: str, what: str):  # noqa: ANN202 — an argparse type
    import re

    def parse(text: str) -> str:
        if not re.match(pattern, text):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return text
    return parse


WATCH_HELP = """\
Print a run's progress lines (train.log) and events (metrics.jsonl) as they arrive, in
plain text for logs, CI and `tmux pipe-pane`, and exit when the run ends, with its
status: 0 finished, early-stopped or stopped; 1 failed, or stale (the trainer was
killed). Like `tail -f`, it first shows the last --lines lines (all of them with
--from-start); on a run that has already ended it prints those and a summary line and
exits at once. Each poll reads only the bytes appended since the last one."""


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `watch`, `script`, `prepare` and `export` on the `voxtop` parser."""
    from tui.scripts import PARTITION_RE, TIME_RE

    # as in tui.commands: `--runs` after the subcommand too, without clobbering the global one
    runs_option = argparse.ArgumentParser(add_help=False)
    runs_option.add_argument("--runs", type=Path, default=argparse.SUPPRESS, help="runs folder")
    parents = [runs_option]

    watch = sub.add_parser("watch", parents=parents, help="follow a run as plain text until it ends",
                           description=WATCH_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    watch.add_argument("run", help="run name (in the runs folder) or path")
    watch.add_argument("--from-start", action="store_true", help="print the whole log first")
    watch.add_argument("--lines", type=_int_at_least(0), default=10, metavar="N",
                       help="log lines of context to show first (default 10)")
    watch.add_argument("--interval", type=_positive_float, default=1.0, metavar="S",
                       help="seconds between polls (default 1)")
    watch.set_defaults(func=cmd_watch)

    config_args = argparse.ArgumentParser(add_help=False)
    config_args.add_argument("config", type=Path, help="TOML config")
    config_args.add_argument("--name", help="run-name prefix (default: the dataset folder's name)")
    config_args.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                             help="override a config value (repeatable)")

    script = sub.add_parser(
        "script", parents=[*parents, config_args],
        help="write a launch script: bash for another machine, slurm for a cluster",
        description="Validate CONFIG, then write a script that trains it: `bash` runs `voxtop train` "
                    "on the machine it is run on; `slurm` is an sbatch script that prepares the run "
                    "once and starts the trainer on every node with `srun torchrun` (c10d "
                    "rendezvous on the head node); run with plain bash outside Slurm it trains locally.")
    script.add_argument("--format", choices=("bash", "slurm"), required=True)
    script.add_argument("--out", type=Path, help="write the script here (executable) instead of stdout")
    script.add_argument("--nodes", type=_int_at_least(1), default=1, help="machines (slurm; default 1)")
    script.add_argument("--gpus-per-node", type=_int_at_least(0), metavar="G",
                        help="GPUs, and training processes, per machine (default: the config's "
                             "device.nproc; 0 = CPU, with device.nproc processes)")
    script.add_argument("--cpus-per-task", type=_int_at_least(1), metavar="C",
                        help="CPU cores per node for the job (slurm; default 4 per process)")
    script.add_argument("--time", type=_matching(TIME_RE.pattern, "a time limit like 24:00:00 or 2-00:00:00"),
                        help="time limit, HH:MM:SS or D-HH:MM:SS (slurm; default: the partition's)")
    script.add_argument("--partition", type=_matching(PARTITION_RE.pattern, "a partition name"),
                        help="Slurm partition (default: the cluster's)")
    script.add_argument("--venv", metavar="PATH",
                        help="environment to activate (default: the one voxtop runs in; `none` for none)")
    script.add_argument("--paths", choices=("absolute", "relative"), default="absolute",
                        help="absolute paths, or relative to the project root (this folder) for "
                             "copying the project to another machine")
    script.set_defaults(func=cmd_script)

    prepare = sub.add_parser("prepare", parents=[*parents, config_args],
                             help="make a run directory without starting it; prints its path (for scripts)")
    prepare.set_defaults(func=cmd_prepare)

    export = sub.add_parser(
        "export", parents=parents, help="write a weights-only model, config and alphabet for synthesis",
        description="Export one checkpoint of RUN into the new folder OUT: model.pt (loadable with "
                    "torch.load(..., weights_only=True)), config.toml, alphabet.txt and README.txt. "
                    "The default checkpoint is the recommended one (as `voxtop checkpoints` tags it: the one "
                    "that reads its held-out sentences to the end best, then the lowest validation loss), "
                    "else the newest.")
    export.add_argument("run", help="run name (in the runs folder) or path")
    export.add_argument("out", type=Path, help="folder to create (must not exist, or be empty)")
    export.add_argument("--checkpoint", help="checkpoint file to export (voxtop checkpoints RUN lists them)")
    export.set_defaults(func=cmd_export)
