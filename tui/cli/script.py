"""`voxtop script`: a launch script for another machine (bash) or a cluster (slurm); rendering is `tui.scripts`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tui.cli.common import Refused, config_parent, fail, int_at_least, matching, runs_parent
from tui.cli.train import load_checked_config


def cmd_script(args: argparse.Namespace) -> int:
    from trainer.launch import PAIRED_NETWORKS, run_prefix
    from trainer.rundir import RunError, check_run_prefix
    from tui.scripts import ScriptError, ScriptSpec, render

    if args.format == "bash" and args.nodes > 1:
        print(f"voxtop script: error: --nodes {args.nodes}: a bash script runs on one machine; "
              "use --format slurm for several", file=sys.stderr)
        return 2
    venv = _venv_arg(args.venv)
    try:
        config = load_checked_config(args.config, args.set, dataset_here=False)
        if args.format == "slurm" and config.model.name in PAIRED_NETWORKS and not config.model.network:
            raise Refused(f"{args.config}: a {config.model.name} voice is {len(PAIRED_NETWORKS[config.model.name])} "
                          f"runs ({' and '.join(PAIRED_NETWORKS[config.model.name])}) and a Slurm job trains one: "
                          "write one script per network (--set model.network=NAME), or use --format bash, "
                          "which trains both on one machine")
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
        return fail(str(exc))
    for note in dict.fromkeys(spec.notes):
        print(f"note: {note}", file=sys.stderr)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.write_text(text, encoding="utf-8")
        args.out.chmod(args.out.stat().st_mode | 0o111)
    except OSError as exc:
        return fail(f"cannot write {args.out}: {exc.strerror}")
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


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `script`."""
    from tui.scripts import PARTITION_RE, TIME_RE

    parents = [runs_parent()]
    script = sub.add_parser(
        "script", parents=[*parents, config_parent()],
        help="write a launch script: bash for another machine, slurm for a cluster",
        description="Validate CONFIG, then write a script that trains it: `bash` runs `voxtop train` "
                    "on the machine it is run on; `slurm` is an sbatch script that prepares the run "
                    "once and starts the trainer on every node with `srun torchrun` (c10d "
                    "rendezvous on the head node); run with plain bash outside Slurm it trains locally.")
    script.add_argument("--format", choices=("bash", "slurm"), required=True)
    script.add_argument("--out", type=Path, help="write the script here (executable) instead of stdout")
    script.add_argument("--nodes", type=int_at_least(1), default=1, help="machines (slurm; default 1)")
    script.add_argument("--gpus-per-node", type=int_at_least(0), metavar="G",
                        help="GPUs, and training processes, per machine (default: the config's "
                             "device.nproc; 0 = CPU, with device.nproc processes)")
    script.add_argument("--cpus-per-task", type=int_at_least(1), metavar="C",
                        help="CPU cores per node for the job (slurm; default 4 per process)")
    script.add_argument("--time", type=matching(TIME_RE.pattern, "a time limit like 24:00:00 or 2-00:00:00"),
                        help="time limit, HH:MM:SS or D-HH:MM:SS (slurm; default: the partition's)")
    script.add_argument("--partition", type=matching(PARTITION_RE.pattern, "a partition name"),
                        help="Slurm partition (default: the cluster's)")
    script.add_argument("--venv", metavar="PATH",
                        help="environment to activate (default: the one voxtop runs in; `none` for none)")
    script.add_argument("--paths", choices=("absolute", "relative"), default="absolute",
                        help="absolute paths, or relative to the project root (this folder) for "
                             "copying the project to another machine")
    script.set_defaults(func=cmd_script)
