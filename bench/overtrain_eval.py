"""Score the overtraining detector on the labelled curves in tests/curves: detection delay and false alarms.

    .venv/bin/python bench/overtrain_eval.py [--patience 5] [--smoothing 0.6] [--noise-factor 3.5] [--json]
                                             [--stress 100]
    .venv/bin/python bench/overtrain_eval.py --extract RUN_DIR --name real-x --label 12 --description "..."

One row per curve, then totals. `delay` is evaluations from the true onset to the first
`overtraining` verdict; `onset err` is the reported onset minus the true one (in evaluations);
a false alarm is an evaluation called `overtraining` on a curve with no onset, or before the
true onset, or whose reported onset is more than patience + 2 evaluations off. `--stress N`
adds N fresh random plateaus per noise level and noise kind (Gaussian, heavy-tailed, with a
wandering train loss, autocorrelated AR(1) 0.5 and 0.8) and N random U-shaped curves with independent
and with AR(1) 0.5 noise (seeds outside the labelled set), since a small labelled set cannot show a
false-alarm rate. `--extract` turns a
real run's metrics.jsonl into a labelled curve file.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trainer.overtrain import Detector, DetectorConfig, Evaluation, evaluations_from_records, recommend  # noqa: E402
from trainer.rundir import read_metrics  # noqa: E402

CURVES = ROOT / "tests" / "curves"
sys.path.insert(0, str(CURVES))

from make_synthetic import curve, decay, u_shape  # noqa: E402


def load_curves(folder: Path = CURVES) -> list[dict]:
    """Every labelled curve, sorted by name."""
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]


def score(item: dict, config: DetectorConfig) -> dict:
    """Replay one curve through the detector and measure it against its label."""
    detector = Detector(config)
    steps = [e["step"] for e in item["evaluations"]]
    verdicts = [detector.update(Evaluation(**e)) for e in item["evaluations"]]
    label, slack = item["label"], config.patience + 2
    called = [k for k, v in enumerate(verdicts) if v.verdict == "overtraining"]
    onsets = [steps.index(verdicts[k].onset_step) for k in called]
    false_alarms = [k for k, onset in zip(called, onsets)
                    if label is None or k < label or abs(onset - label) > slack]
    first = called[0] if called else None
    collapsed = [k for k, v in enumerate(verdicts) if v.verdict == "collapsed"]
    checkpoints = {int(s): v for s, v in item.get("checkpoints", {}).items()}
    best = min(checkpoints, key=lambda s: (checkpoints[s], s)) if checkpoints else None
    return {"name": item["name"], "kind": item["kind"], "evals": len(steps), "label": label,
            "detected": first, "onset": onsets[0] if onsets else None,
            "delay": first - label if first is not None and label is not None else None,
            "onset_err": onsets[0] - label if onsets and label is not None else None,
            "false_alarms": len(false_alarms), "collapse": item.get("collapse"),
            "collapsed_at": collapsed[0] if collapsed else None,
            "recommend_ok": recommend(checkpoints) == best, "final": verdicts[-1].verdict}


def show(value: object) -> str:
    return "-" if value is None else str(value)


def report(rows: list[dict], config: DetectorConfig) -> None:
    header = f"{'curve':<24} {'kind':<19} {'evals':>5} {'onset':>5} {'found':>5} {'at':>5} {'delay':>5} " \
             f"{'err':>4} {'false':>5} {'collapse':>8} {'rec':>3}  final"
    print(header)
    print("-" * len(header))
    for r in rows:
        collapse = f"{show(r['collapse'])}/{show(r['collapsed_at'])}" if r["collapse"] is not None else "-"
        print(f"{r['name']:<24} {r['kind']:<19} {r['evals']:>5} {show(r['label']):>5} {show(r['onset']):>5} "
              f"{show(r['detected']):>5} {show(r['delay']):>5} {show(r['onset_err']):>4} {r['false_alarms']:>5} "
              f"{collapse:>8} {'ok' if r['recommend_ok'] else 'NO':>3}  {r['final']}")
    labelled = [r for r in rows if r["label"] is not None]
    found = [r for r in labelled if r["delay"] is not None]
    delays = [r["delay"] for r in found]
    errors = [abs(r["onset_err"]) for r in found]
    slack = config.patience + 2
    print("-" * len(header))
    print(f"config: smoothing {config.smoothing}, patience {config.patience}, tolerance {config.tolerance}, "
          f"noise factor {config.noise_factor}")
    print(f"onset curves: {len(found)}/{len(labelled)} detected, onset within patience+2 ({slack}): "
          f"{sum(e <= slack for e in errors)}/{len(labelled)}")
    if found:
        print(f"detection delay (evaluations): mean {statistics.fmean(delays):.1f}, median "
              f"{statistics.median(delays)}, max {max(delays)}; |onset error| mean {statistics.fmean(errors):.1f}, "
              f"max {max(errors)}")
    print(f"false alarms: {sum(r['false_alarms'] for r in rows)} evaluations on "
          f"{sum(r['false_alarms'] > 0 for r in rows)}/{len(rows)} curves "
          f"({sum(r['false_alarms'] > 0 for r in rows if r['label'] is None)}/"
          f"{sum(r['label'] is None for r in rows)} curves without an onset)")
    collapses = [r for r in rows if r["collapse"] is not None]
    print(f"collapse curves: {sum(r['collapsed_at'] is not None for r in collapses)}/{len(collapses)} called; "
          f"recommendation = lowest-val checkpoint on {sum(r['recommend_ok'] for r in rows)}/{len(rows)} curves")


STRESS_PLATEAUS = [  # (what, seed base, make_synthetic.curve options); the first is the original stress set
    ("gaussian noise", 10_000, {}),
    ("heavy-tailed noise (t3)", 50_000, {"noise_shape": "t3"}),
    ("wandering train loss", 60_000, {"train_wander": 0.04}),
    ("autocorrelated noise, AR(1) 0.5", 70_000, {"noise_rho": 0.5}),
    ("autocorrelated noise, AR(1) 0.8", 100_000, {"noise_rho": 0.8}),
]


def stress(count: int, config: DetectorConfig) -> None:
    """False-alarm rate on long random plateaus and onset accuracy on random U-shaped curves."""
    print(f"stress: {count} random 150-evaluation plateaus per noise level and kind, false alarms on how many")
    for what, base, options in STRESS_PLATEAUS:
        counts = []
        for level, noise in enumerate((0.01, 0.03, 0.05, 0.08)):
            rows = [score(curve("p", "noisy-plateau", "", base * (level + 1) + seed, 150, decay(3.0, 0.9, 6),
                                decay(3.0, 0.15, 30), noise, rises_for_good=False, **options), config)
                    for seed in range(count)]
            counts.append(f"{noise:.0%}: {sum(r['false_alarms'] > 0 for r in rows)}/{count}")
        print(f"  {what + ':':<34} " + ", ".join(counts))
    for rho in (0.0, 0.5):  # the same random shapes and seeds, independent or AR(1) 0.5 noise
        rng = random.Random(5)
        rows = []
        for seed in range(count):
            noise, turn = rng.choice((0.005, 0.01, 0.02, 0.04)), rng.randint(15, 40)
            rate, tau = rng.choice((0.002, 0.004, 0.008)), rng.randint(3, 8)
            rows.append(score(curve("u", "synthetic-onset", "", 20_000 + seed, turn + 45,
                                    u_shape(3.0, 0.8, tau, turn, rate), decay(3.0, 0.2, 15), noise,
                                    noise_rho=rho), config))
        found = [r for r in rows if r["delay"] is not None]
        within = sum(abs(r["onset_err"]) <= config.patience + 2 and not r["false_alarms"] for r in found)
        what = f", AR(1) {rho} noise" if rho else ""
        print(f"stress: {count} random U-shaped curves{what}: {len(found)} detected, {within} with every reported "
              f"onset within patience+2, delay mean {statistics.fmean(r['delay'] for r in found):.1f} evaluations")


def extract(run_dir: Path, name: str, label: int | None, description: str) -> Path:
    """Write a real run's evaluations and checkpoints as a labelled curve file."""
    evaluations, checkpoints, _ = evaluations_from_records(read_metrics(run_dir / "metrics.jsonl"))
    item = {"name": name, "kind": "real-tiny-overfit", "label": label, "collapse": None,
            "description": description, "source": f"voxtop run {run_dir.name}",
            "evaluations": [{"step": e.step, "val_loss": round(e.val_loss, 6),
                             "train_loss": None if e.train_loss is None else round(e.train_loss, 6),
                             "attention_score": None if e.attention_score is None else round(e.attention_score, 4)}
                            for e in evaluations],
            "checkpoints": {str(s): v for s, v in checkpoints.items() if v is not None}}
    path = CURVES / f"{name}.json"
    path.write_text(json.dumps(item, indent=1) + "\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patience", type=int, default=DetectorConfig.patience)
    parser.add_argument("--smoothing", type=float, default=DetectorConfig.smoothing)
    parser.add_argument("--tolerance", type=float, default=DetectorConfig.tolerance)
    parser.add_argument("--noise-factor", type=float, default=DetectorConfig.noise_factor)
    parser.add_argument("--json", action="store_true", help="rows as JSON instead of a table")
    parser.add_argument("--stress", type=int, default=0, metavar="N", help="also score N random curves per kind")
    parser.add_argument("--extract", type=Path, metavar="RUN_DIR", help="write RUN_DIR's curve into tests/curves")
    parser.add_argument("--name", help="curve name for --extract")
    parser.add_argument("--label", type=int, help="true onset evaluation index for --extract (omit: none)")
    parser.add_argument("--description", default="", help="what the curve shows, for --extract")
    args = parser.parse_args()
    if args.extract:
        print(extract(args.extract, args.name or f"real-{args.extract.name}", args.label, args.description))
        return 0
    config = DetectorConfig(smoothing=args.smoothing, patience=args.patience, tolerance=args.tolerance,
                            noise_factor=args.noise_factor)
    rows = [score(item, config) for item in load_curves()]
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        report(rows, config)
    if args.stress:
        stress(args.stress, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
