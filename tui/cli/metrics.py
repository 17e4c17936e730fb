"""`voxtop metrics RUN [--csv|--json] [--fields ...]`: every logged series of a run, for use elsewhere.

Asks the run's `RunSource` (`trainer.rundir.source`) and `trainer.rundir.series`, as the charts do.
Without --csv or --json it lists the series: points, steps covered, newest and lowest value.
"""

from __future__ import annotations

import argparse
import csv
import sys

from trainer.rundir import RunError
from tui.cli.common import fail, fmt, print_json, runs_parent


def cmd_metrics(args: argparse.Namespace) -> int:
    from trainer.rundir.series import read_series
    from trainer.rundir.source import open_run

    try:
        source = open_run(args.runs, args.run)
    except RunError as exc:
        return fail(str(exc))
    fields = [name for value in (args.fields or []) for name in value.split(",") if name]
    found = read_series(source, fields or None)
    if fields:
        missing = [name for name in fields
                   if not any(series == name or series.split("/", 1)[1] == name for series in found.series)]
        if missing:
            return fail(f"{source.name} logs no {', '.join(missing)}; `voxtop metrics {args.run}` lists what it logs")
    if args.json:
        print_json({"run": found.run, "series": {name: s.as_json() for name, s in found.series.items()}})
        return 0
    if args.csv:  # long format, TensorBoard's columns plus the series' name: one row per point
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["metric", "step", "wall_time", "value"])
        for name, series in found.series.items():
            for step, t, value in zip(series.steps.tolist(), series.times.tolist(), series.values.tolist()):
                writer.writerow([name, int(step), repr(t), repr(value)])
        return 0
    if not found.series:
        print(f"{source.name}: no train or val records yet")
        return 0
    print(f"{'METRIC':32} {'POINTS':>8} {'STEPS':>17} {'LAST':>10} {'LOWEST':>10} {'AT STEP':>8}")
    for name, series in found.series.items():
        if not len(series.values):
            print(f"{name:32} {0:>8}")
            continue
        lowest = int(series.values.argmin())
        steps = f"{int(series.steps[0])}-{int(series.steps[-1])}"
        print(f"{name:32} {len(series.values):>8} {steps:>17} {fmt(float(series.values[-1]), 4):>10} "
              f"{fmt(float(series.values[lowest]), 4):>10} {int(series.steps[lowest]):>8}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `metrics`."""
    metrics = sub.add_parser("metrics", parents=[runs_parent()],
                             help="every logged series of a run (train and val fields), as CSV or JSON")
    metrics.add_argument("run", help="run name (in the runs folder) or path")
    output = metrics.add_mutually_exclusive_group()
    output.add_argument("--csv", action="store_true", help="one row per point: metric,step,wall_time,value")
    output.add_argument("--json", action="store_true", help='{"run": ..., "series": {"train/loss": {"step": [...], '
                                                            '"wall_time": [...], "value": [...]}, ...}}')
    metrics.add_argument("--fields", nargs="+", metavar="FIELD",
                         help="only these: a field (loss: train/loss and val/loss) or kind/field (val/loss); "
                              "commas work too")
    metrics.set_defaults(func=cmd_metrics)
