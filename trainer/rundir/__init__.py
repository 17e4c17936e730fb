"""The run directory: the contract between trainer and TUI, both sides, no torch.

Anything that writes or reads a run goes through this package; nothing else knows file names.
Its modules, one concern each, and what they own:

- `names`: run names, the files of a run, states and timings; `RunError`.
- `faults`: fault injection (`VOXTOP_INJECT_WRITE_ERROR`) for tests and bench/kill_soak.py.
- `atomic`: atomic writes (temp file, fsync, rename).
- `layout`: `RunDir` (paths, checkpoints), creating, finding and listing runs.
- `status`: status.json and the trainer's lock (`RunDir` inherits `RunStatus`).
- `records`: the one record parser (`parse_record`) and the resume rule (`current_history`).
- `writer`: `MetricsWriter`, metrics.jsonl and its metrics.index rows.
- `index`: the metrics.index format and reading it.
- `columns`: the fast numpy column reader of the chart kinds.
- `reader`: `MetricsReader` (records or columns, by byte offset), `read_metrics`, tails.
- `queries`: what the screens and commands ask of a run, answered one way and at a bounded
  cost: its summary, its checkpoint rows with tags and the recommended one, tails, the
  records a resume replays.
- `source`: `RunSource`, what the screens and commands need from a run behind one interface;
  `VoxtopRun` (this contract) is the first implementation, other trainers' folders plug in beside it.

Readers ignore unknown keys and kinds and a trailing partial line; a malformed line is
counted and skipped, never fatal, the same way by every reader. `from trainer.rundir import X`
works for every public name below.
"""

from __future__ import annotations

from trainer.rundir.atomic import atomic_write, atomic_write_bytes, atomic_write_json, atomic_write_text
from trainer.rundir.columns import READ_CHUNK_BYTES, MetricsColumns
from trainer.rundir.faults import INJECT_WRITE_ERROR_ENV, injected_write_error
from trainer.rundir.index import (INDEX_FIELDS, INDEX_HEADER, INDEX_KINDS, INDEX_REPAIR_BYTES, INDEX_ROW,
                                  index_path, index_row, index_rows)
from trainer.rundir.layout import CheckpointFile, RunDir, create_run, inside, list_runs, resolve_run
from trainer.rundir.names import (ACTIVE_STATES, CHECKPOINT_RE, CONFIG_FILE, FINAL_STATES, HEARTBEAT_S, INDEX_FILE,
                                  LOCK_FILE, LOG_FILE, METRICS_FILE, RUN_PREFIX_RE, STALE_AFTER_S, STATUS_FILE,
                                  TEMP_MARK, RunError, check_run_prefix, new_run_name, step_file_name)
from trainer.rundir.reader import MetricsReader, iter_records, read_metrics, read_tail
from trainer.rundir.records import as_float, current_history, finite, parse_record, resumed_from_step
from trainer.rundir.status import RunStatus
from trainer.rundir.writer import MetricsWriter

__all__ = [
    "ACTIVE_STATES", "CHECKPOINT_RE", "CONFIG_FILE", "FINAL_STATES", "HEARTBEAT_S", "INDEX_FIELDS", "INDEX_FILE",
    "INDEX_HEADER", "INDEX_KINDS", "INDEX_REPAIR_BYTES", "INDEX_ROW", "INJECT_WRITE_ERROR_ENV", "LOCK_FILE",
    "LOG_FILE", "METRICS_FILE", "READ_CHUNK_BYTES", "RUN_PREFIX_RE", "STALE_AFTER_S", "STATUS_FILE", "TEMP_MARK",
    "CheckpointFile", "MetricsColumns", "MetricsReader", "MetricsWriter", "RunDir", "RunError", "RunStatus",
    "as_float", "atomic_write", "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "check_run_prefix",
    "create_run", "current_history", "finite", "index_path", "index_row", "index_rows", "injected_write_error",
    "inside", "iter_records", "list_runs", "new_run_name", "parse_record", "read_metrics", "read_tail",
    "resolve_run", "resumed_from_step", "step_file_name",
]
