"""`voxtop dataset check|info`: is a dataset usable, and what is in it.

`trainer.dataset` (torch-free) is imported inside the commands.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from tui.cli.common import print_json


#: Problems of one kind `dataset check` prints before summing up the rest: a dataset with
#: 5,000 broken lines gets a screenful, not 5,000 lines.
MAX_PROBLEMS_PER_KIND = 10


def cmd_dataset_check(args: argparse.Namespace) -> int:
    from trainer.dataset import scan

    report = scan(args.path, language=args.language, sample_rate=args.sample_rate,
                  resample=args.resample, use_cache=not args.no_cache)
    if args.json:
        print_json(report.to_json())
        return 0 if report.valid else 1
    shown: Counter[str] = Counter()
    for problem in report.problems:
        shown[problem.code] += 1
        if shown[problem.code] > MAX_PROBLEMS_PER_KIND:
            continue
        where = problem.file if problem.file == report.path else str(Path(args.path) / problem.file)
        print(f"{where}{':' + str(problem.line) if problem.line else ''}: "
              f"{problem.severity}: {problem.message}")
    for code, count in shown.items():
        if count > MAX_PROBLEMS_PER_KIND:
            print(f"... and {count - MAX_PROBLEMS_PER_KIND} more {code.replace('_', ' ') or 'other'} "
                  f"problem(s) (--json lists every one)")
    errors = len(report.errors)
    if errors:
        print(f"{args.path}: INVALID: {errors} problem(s) in {report.info.get('clips', 0)} usable clip(s)")
        return 1
    print(f"{args.path}: valid: {report.info['clips']} clips")
    return 0


def cmd_dataset_info(args: argparse.Namespace) -> int:
    from trainer.dataset import format_duration, scan

    report = scan(args.path, language=args.language, sample_rate=args.sample_rate,
                  resample=args.resample)
    info = report.info
    if args.json:
        print_json({**info, "path": str(args.path), "valid": report.valid,
                     "errors": len(report.errors)})
        return 0 if info.get("clips") else 1
    if not info.get("clips"):
        print(f"{args.path}: no usable clips; run `voxtop dataset check {args.path}` for the reasons")
        return 1
    rates = ", ".join(f"{rate} Hz x{n}" for rate, n in info["sample_rates"].items())
    print(f"dataset     {args.path}")
    print(f"clips       {info['clips']}")
    print(f"duration    {format_duration(info['total_s'])} total, mean {info['mean_s']:.2f} s, "
          f"min {info['min_s']:.2f} s, max {info['max_s']:.2f} s")
    print(f"rates       {rates}")
    print(f"words       {info['words']}")
    print(f"alphabet    {info['alphabet']!r} ({info['language']})")
    if report.errors:
        print(f"problems    {len(report.errors)} (voxtop dataset check {args.path})")
    for problem in report.problems:
        if problem.severity == "warning":
            print(f"warning     {problem.message}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `dataset check` and `dataset info`."""
    dataset = sub.add_parser("dataset", help="check or measure an LJSpeech-format dataset")
    dsub = dataset.add_subparsers(dest="dataset_command", required=True)
    for name, func, help_text in (
            ("check", cmd_dataset_check, "report every problem with file and line; exit 1 if invalid"),
            ("info", cmd_dataset_info, "clips, durations, sample rates, words, alphabet")):
        p = dsub.add_parser(name, help=help_text)
        p.add_argument("path", type=Path)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument("--language", default="en", help="alphabet to check against (en, de, es, fr)")
        p.add_argument("--sample-rate", type=int, default=22050, help="expected rate in Hz")
        p.add_argument("--resample", action="store_true", help="accept other rates and channel counts")
        if name == "check":
            p.add_argument("--no-cache", action="store_true", help="ignore the cached result")
        p.set_defaults(func=func)
