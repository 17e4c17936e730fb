"""A small stand-in for another trainer, for `voxtop launch` tests: logs a val_loss to a TensorBoard event file
and saves a checkpoint file every few steps; on Ctrl-C (SIGINT) saves one last checkpoint and exits 0, as RVC,
Coqui and Lightning do.

    python tests/foreign/fake_trainer.py LOGDIR [--steps N] [--step-s S] [--fail-at N] [--ignore-sigint]
"""

from __future__ import annotations

import argparse
import signal
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from trainer.foreign.tbevents import masked_crc32c  # noqa: E402
from trainer.foreign.tbproto import event_class  # noqa: E402


def record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("logdir", type=Path)
    parser.add_argument("--steps", type=int, default=100000)
    parser.add_argument("--step-s", type=float, default=0.05)
    parser.add_argument("--fail-at", type=int, default=0)
    parser.add_argument("--ignore-sigint", action="store_true")
    args = parser.parse_args()
    args.logdir.mkdir(parents=True, exist_ok=True)
    interrupted: list[int] = []
    if args.ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGINT, lambda *_: interrupted.append(1))
    Event = event_class()
    events = open(args.logdir / f"events.out.tfevents.{int(time.time())}.fake.1.0", "ab")
    for step in range(1, args.steps + 1):
        event = Event(wall_time=time.time(), step=step)
        event.summary.value.add(tag="val_loss", simple_value=1.0 / step + 0.001 * step)
        events.write(record(event.SerializeToString()))
        events.flush()
        if step % 10 == 0:
            (args.logdir / f"checkpoint_{step}.pth").write_bytes(b"not a real checkpoint")
            print(f"step {step}: saved checkpoint_{step}.pth", flush=True)
        if step == args.fail_at:
            print("error: something broke", flush=True)
            return 3
        if interrupted:
            (args.logdir / f"checkpoint_{step}.pth").write_bytes(b"saved on Ctrl-C")
            print(f"interrupted at step {step}: saved checkpoint_{step}.pth", flush=True)
            return 0
        time.sleep(args.step_s)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
