"""The `voxtop` command: the TUI by default, plus headless subcommands.

Imports of trainer modules happen inside the commands, so `voxtop --help` and the TUI
never pay for torch.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Sequence


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


#: Problems of one kind `dataset check` prints before summing up the rest: a dataset with
#: 5,000 broken lines gets a screenful, not 5,000 lines.
MAX_PROBLEMS_PER_KIND = 10


def cmd_dataset_check(args: argparse.Namespace) -> int:
    from trainer.dataset import scan

    report = scan(args.path, language=args.language, sample_rate=args.sample_rate,
                  resample=args.resample, use_cache=not args.no_cache)
    if args.json:
        _print_json(report.to_json())
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
        _print_json({**info, "path": str(args.path), "valid": report.valid,
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


def _add_dataset_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text} s is out of range: use 0.1 to 3600")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voxtop", description="Launch, watch and resume speech-model training from the terminal.")
    parser.add_argument("--datasets", type=Path, default=Path("datasets"), help="datasets folder")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="runs folder")
    parser.add_argument("--gpu-refresh", type=_seconds, default=1.0, metavar="SECONDS",
                        help="seconds between GPU samples in the TUI (default 1)")
    sub = parser.add_subparsers(dest="command")
    _add_dataset_commands(sub)
    from tui import commands

    commands.add_commands(sub)
    from tui import headless

    headless.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from tui import commands

        return commands.open_tui(args)
    language = getattr(args, "language", None)
    if language is not None:
        from trainer.text import LANGUAGES

        if language not in LANGUAGES:
            parser.error(f"--language {language!r}: choose one of {', '.join(LANGUAGES)}")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
