"""`voxtop export`: one checkpoint as a weights-only model with its config and alphabet.

The one command that needs torch: `trainer.export` is imported inside it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tui.cli.common import fail, runs_parent


def cmd_export(args: argparse.Namespace) -> int:
    from trainer.rundir import RunError, resolve_run

    try:
        run = resolve_run(args.runs, args.run)
    except RunError as exc:
        return fail(f"{exc}; `voxtop runs` lists the runs in {args.runs}")
    from trainer.export import ExportError, export_run

    try:
        result = export_run(run, args.out, args.checkpoint)
    except ExportError as exc:
        return fail(str(exc))
    print(f"exported step {result.step} of {run.name} ({result.reason}) to {result.out}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `export`."""
    parents = [runs_parent()]
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
