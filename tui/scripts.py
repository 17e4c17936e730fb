"""`voxtop script`: launch scripts for another machine (bash) or a cluster (Slurm), as text (no torch).

Every value that comes from the user goes into the script through `shlex.quote`; values
that must sit in `#SBATCH` lines (not parsed by a shell) are checked against a strict
pattern instead. The scripts call `voxtop` itself, so the run directory they make is the
same as one made by `voxtop train`.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

BASE_PORT = 29500  # torchrun's default; each job adds its id modulo 1000
SAFE_SBATCH_RE = re.compile(r"^[A-Za-z0-9_.,/%+:@=-]+$")
TIME_RE = re.compile(r"^(\d+-)?\d{1,3}(:\d{2}){0,2}$")
PARTITION_RE = re.compile(r"^[A-Za-z0-9_.,-]+$")


class ScriptError(ValueError):
    """A script that cannot be written as asked; the message says why and what to do."""


@dataclass
class ScriptSpec:
    """What the script runs and where; paths as the user gave them (relative to `root`)."""

    format: str                       # bash | slurm
    config: Path
    runs: Path
    root: Path                        # the project folder the script works in
    prefix: str                       # run-name prefix, for the job name
    name: str | None = None
    overrides: list[str] = field(default_factory=list)
    nodes: int = 1
    gpus_per_node: int = 1
    config_nproc: int = 1             # the config's device.nproc, which the script keeps unless told otherwise
    cpus_per_task: int | None = None
    time: str | None = None
    partition: str | None = None
    venv: Path | None = None
    paths: str = "absolute"           # absolute | relative
    out: Path | None = None           # where the script will be written (None: stdout)
    notes: list[str] = field(default_factory=list)  # warnings for the user, filled by render()

    @property
    def procs_per_node(self) -> int:
        """Training processes per machine: one per GPU, or the config's count on CPU-only nodes."""
        return self.gpus_per_node if self.gpus_per_node > 0 else self.config_nproc

    def nproc_override(self) -> list[str]:
        """`device.nproc=N` when the script runs another count than the config asks for."""
        return [f"device.nproc={self.procs_per_node}"] if self.procs_per_node != self.config_nproc else []


def render(spec: ScriptSpec) -> str:
    if spec.format == "bash":
        return render_bash(spec)
    return render_slurm(spec)


def _path(spec: ScriptSpec, path: Path) -> str:
    """`path` as the script should name it: absolute, or relative to the project root.

    A path outside the project stays absolute (with a note): copying the project would not
    bring it along, so `../..` chains would only hide that.
    """
    root = spec.root.resolve()
    resolved = (root / path).resolve()
    if spec.paths == "absolute":
        return str(resolved)
    if resolved != root and root not in resolved.parents:
        spec.notes.append(f"{resolved} is outside the project folder {root}; the script names it "
                          "by its absolute path")
        return str(resolved)
    return os.path.relpath(resolved, root)


def _comment(text: str) -> str:
    """`text` made safe for a `#` comment: no line breaks or other control characters."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _q(value: object) -> str:
    return shlex.quote(str(value))


def _voxtop_args(spec: ScriptSpec, command: str, extra: list[str]) -> str:
    words = ["voxtop", "--runs", _q(_path(spec, spec.runs)), command, '"$config"']
    if spec.name:
        words += ["--name", _q(spec.name)]
    for override in [*spec.overrides, *extra]:
        words += ["--set", _q(override)]
    return " ".join(words)


def _preamble(spec: ScriptSpec, what: str) -> list[str]:
    """Header comment, cd to the project, venv, and the config check shared by both formats."""
    config = _path(spec, spec.config)
    lines = [f"# {what} for {_comment(config)}",
             f"# written by `voxtop script` on {datetime.now():%Y-%m-%d %H:%M}",
             "set -euo pipefail"]
    if spec.paths == "absolute":
        lines.append(f"cd {_q(spec.root.resolve())}")
    elif spec.format == "slurm":
        lines.append('cd "${SLURM_SUBMIT_DIR:-$PWD}"  # submit (or run) it from the project root')
    elif spec.out is not None:
        to_root = os.path.relpath(spec.root.resolve(), spec.out.resolve().parent)
        lines.append(f'cd "$(dirname -- "${{BASH_SOURCE[0]}}")"/{_q(to_root)}')
    else:
        lines.append("# run it from the project root: the paths below are relative to it")
    if spec.venv is not None:
        lines.append(f"source {_q(_path(spec, spec.venv) + '/bin/activate')}")
    lines += [
        "export PYTHONUNBUFFERED=1",
        f"config={_q(config)}",
        '[ -f "$config" ] || { echo "voxtop: config $config not found in $PWD" >&2; exit 1; }',
    ]
    return lines


def render_bash(spec: ScriptSpec) -> str:
    """A script that trains the config in the foreground on the machine it runs on."""
    if spec.nodes != 1:
        raise ScriptError(f"--nodes {spec.nodes}: a bash script runs on one machine; use --format slurm")
    extra = spec.nproc_override()
    lines = ["#!/usr/bin/env bash", *_preamble(spec, "voxtop training on this machine"),
             "# progress goes to this terminal and the run's train.log; Ctrl-C saves a checkpoint",
             "# and stops (continue with `voxtop resume RUN`)",
             "exec " + _voxtop_args(spec, "train", extra)]
    return "\n".join(lines) + "\n"


def _sbatch_value(option: str, value: str) -> str:
    if not SAFE_SBATCH_RE.match(value):
        raise ScriptError(f"{option} {value!r} cannot go into an #SBATCH line (spaces, quotes or other "
                          "special characters); use --paths relative or a simpler name")
    return value


def sbatch_lines(spec: ScriptSpec) -> list[str]:
    cpus = spec.cpus_per_task or 4 * spec.procs_per_node
    options = [("job-name", _sbatch_value("job name", f"voxtop-{spec.prefix}")),
               ("nodes", str(spec.nodes)), ("ntasks-per-node", "1")]
    if spec.gpus_per_node > 0:
        options.append(("gpus-per-node", str(spec.gpus_per_node)))
    options.append(("cpus-per-task", str(cpus)))
    if spec.time:
        options.append(("time", spec.time))
    if spec.partition:
        options.append(("partition", spec.partition))
    options.append(("output", "slurm-%x-%j.out"))
    if spec.paths == "absolute":
        options.append(("chdir", _sbatch_value("project folder", str(spec.root.resolve()))))
    return [f"#SBATCH --{key}={value}" for key, value in options]


def render_slurm(spec: ScriptSpec) -> str:
    """An sbatch script: prepare the run once, then start the trainer with `srun`.

    One node: `srun python3 -m trainer RUN` (the trainer itself starts `torchrun --standalone`
    when `device.nproc` > 1, holding the run's lock and naming a failed rank). Several nodes:
    one `torchrun` per node, meeting at a c10d rendezvous on the head node. Run with plain
    bash outside Slurm, it trains on the machine it runs on.
    """
    extra = spec.nproc_override()
    if spec.nodes > 1:
        in_slurm = [
            '    head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)',
            f"    port=$(( {BASE_PORT} + SLURM_JOB_ID % 1000 ))  # two jobs on one head node never share it",
            f'    launch=(srun --kill-on-bad-exit=1 torchrun --nnodes "$SLURM_NNODES" '
            f'--nproc-per-node {spec.procs_per_node}',
            '            --rdzv-backend c10d --rdzv-endpoint "$head_node:$port" --rdzv-id "$SLURM_JOB_ID"',
            '            -m trainer "$run_dir" --worker)']
    else:
        in_slurm = ['    launch=(srun --kill-on-bad-exit=1 python3 -m trainer "$run_dir")']
        if spec.procs_per_node > 1:
            in_slurm.insert(0, f"    # the trainer starts torchrun --standalone with {spec.procs_per_node} processes "
                               "itself (device.nproc)")
    lines = [
        "#!/usr/bin/env bash", *sbatch_lines(spec), "#",
        *_preamble(spec, "voxtop training job"),
        "# one run directory for the whole job, made before any training process starts",
        f"run_dir=$({_voxtop_args(spec, 'prepare', extra)})",
        'echo "voxtop: run directory $run_dir (follow it with: voxtop watch $run_dir)"',
        'if [ -n "${SLURM_JOB_ID:-}" ]; then', *in_slurm,
        "else",
        '    echo "voxtop: not inside a Slurm job: training on this machine only" >&2',
        '    launch=(python3 -m trainer "$run_dir")',
        "fi",
        "# output goes to the Slurm log and the run's train.log; tee ignores SIGTERM so the",
        "# trainer can still write while it saves its last checkpoint at the time limit",
        '"${launch[@]}" 2>&1 | (trap "" TERM INT; exec tee -a "$run_dir/train.log")',
    ]
    return "\n".join(lines) + "\n"
