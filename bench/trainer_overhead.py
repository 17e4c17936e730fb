"""Trainer cost of being watched, and time waiting for data, on the real Trainer (tiny preset, CPU).

    .venv/bin/python bench/trainer_overhead.py [--steps 60] [--rounds 3] [--config configs/demo.toml]

One process sets up trainer.loop.Trainer on a fresh run directory (feature cache warmed
by setup), then, with the same seed for every round, alternates:

- stripped: `batch = train_set.batch(indices)` + `_train_step(batch)` only (no RunDir writes);
- watched: the same, plus what the real loop adds per step for watchers: `_log_interval()`
  every `log_every_steps` (device read-back + metrics line + log line), `_heartbeat()`
  (status.json, at most every 5 s), `_checkpoint_due()` and `run.checkpoints()` (a listing).

It prints the median seconds per step of each, their difference, the bookkeeping time
measured directly (the robust figure on a busy machine), and the fraction of step time
spent in `ClipSet.batch` (waiting for data with the cache warm). On a CUDA device each step
is synchronised before it is timed (`--preset full` there is the figure that matters).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="steps per round and mode")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median over all steps)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "demo.toml")
    parser.add_argument("--preset", default="tiny")
    args = parser.parse_args()

    import torch

    from trainer import config as config_mod
    from trainer.data import epoch_permutation, next_batch
    from trainer.loop import Trainer
    from trainer.rundir import create_run

    config = config_mod.load(args.config, [f"model.preset={args.preset}"])
    run = create_run(Path(tempfile.mkdtemp(prefix="voxtop-overhead-")), "overhead",
                     args.config.read_text())
    trainer = Trainer(run, config, log=lambda message: None)
    trainer.setup()
    trainer.model.train()
    order = epoch_permutation(len(trainer.train_set), config.train.seed, 0)
    log_every = config.train.log_every_steps
    trainer.interval_start = time.perf_counter()

    def step_batch(i: int) -> list[int]:
        offset = (i * trainer.batch_size) % max(1, len(order) - trainer.batch_size)
        return next_batch(order, offset, trainer.batch_size)[0]

    # On a GPU the step is asynchronous: wait for it so step times are the device's, not the launches'.
    sync = torch.cuda.synchronize if trainer.placement.device.type == "cuda" else (lambda: None)
    stripped, watched, data_s, bookkeeping = [], [], [], []
    torch.manual_seed(config.train.seed)
    for i in range(3):  # warm-up: allocator, caches (and on a GPU the graph capture)
        trainer._train_step(trainer.train_set.batch(step_batch(i), trainer.pad_to))
    for _ in range(args.rounds):
        for mode in ("stripped", "watched"):
            torch.manual_seed(config.train.seed)
            for i in range(args.steps):
                started = time.perf_counter()
                batch = trainer.train_set.batch(step_batch(i), trainer.pad_to)
                loaded = time.perf_counter()
                trainer._train_step(batch)
                sync()
                trained = time.perf_counter()
                if mode == "watched":
                    trainer.progress.step += 1
                    if trainer.progress.step % log_every == 0:
                        trainer._log_interval()
                    trainer._heartbeat("running")
                    trainer._checkpoint_due()
                    run.checkpoints()
                    bookkeeping.append(time.perf_counter() - trained)
                    watched.append(time.perf_counter() - started)
                else:
                    stripped.append(trained - started)
                data_s.append(loaded - started)
    s_med, w_med = statistics.median(stripped), statistics.median(watched)
    book = statistics.mean(bookkeeping)
    step_all = statistics.median(stripped + watched)
    print(f"preset {args.preset}, batch {trainer.batch_size}, log every {log_every} steps, "
          f"{len(stripped)} + {len(watched)} steps, device {trainer.placement.device}")
    print(f"stripped loop  median {s_med * 1000:8.1f} ms/step")
    print(f"watched loop   median {w_med * 1000:8.1f} ms/step  difference {100 * (w_med - s_med) / s_med:+.2f}%"
          " (noise on a busy machine; see the next line)")
    print(f"bookkeeping    mean {book * 1000:8.3f} ms/step = {100 * book / step_all:.3f}% of a step "
          f"(target < 1%: {'MET' if book / step_all < 0.01 else 'MISSED'})")
    wait = statistics.median(data_s)
    print(f"data wait      median {wait * 1000:8.2f} ms/step = {100 * wait / step_all:.2f}% of a step "
          f"(ClipSet.batch, cache warm; target < 5%: {'MET' if wait / step_all < 0.05 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
