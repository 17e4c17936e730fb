"""How the trainer's process says what happened: progress lines, and a failure recorded in the run.

`python -m trainer` (one process) and `trainer.multiproc` (the launcher of several) both record
failures this way; neither imports the other for it.
"""

from __future__ import annotations

import sys

from trainer.rundir import MetricsWriter, RunDir


def log(message: str) -> None:
    """Print a line to train.log (the trainer's stdout), never failing on a full disk."""
    try:
        print(message, flush=True)
    except OSError:
        pass  # train.log is on a full or failing disk; the run's records say what happened


def fail_run(run: RunDir, step: int, error: str, writer: MetricsWriter | None = None) -> None:
    """Record a failure: an error event, an `end` record and `failed` in status.json.

    Each is tried on its own, so a disk that refuses metrics.jsonl still gets status.json
    saying `failed`, and the other way round; what could not be written is said on stderr.
    """
    unrecorded = []
    try:
        writer = writer or MetricsWriter(run.metrics_path)
        writer.write("event", step, level="error", code="crash", message=error)
        writer.write("end", step, reason="failed")
    except Exception as exc:  # noqa: BLE001 — the status below must still be written
        unrecorded.append(f"{run.metrics_path.name} ({exc})")
    try:
        run.force_status(state="failed", error=error)
    except Exception as exc:  # noqa: BLE001
        unrecorded.append(f"{run.status_path.name} ({exc})")
    log(f"run failed at step {step}: {error}")
    for what in unrecorded:
        try:
            print(f"error: could not record the failure in {what}", file=sys.stderr, flush=True)
        except OSError:
            pass
