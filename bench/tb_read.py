"""Reading a long RVC-style TensorBoard event file: voxtop's reader beside TensorBoard's EventAccumulator and tbparse,
and the CPU cost of following a TensorBoard-logged run while it is written.

    .venv/bin/python bench/tb_read.py [--scalars 1000000] [--images 300] [--data DIR] [--skip-slow] [--follow-s 30]

1. Generates (once, cached in --data) `logs/bench/events.out.tfevents.*` as RVC/Applio writes it: at every logged
   step the ten scalars (`loss/g/total`, `loss/g/mel`, `loss/g/kl`, `loss/g/fm`, `loss/d/total`, `learning_rate`,
   `grad_norm_g`, `grad_norm_d`, `loss/g/adv`, `loss/d/adv`) as `simple_value`, and every so often the three
   images (`slice/mel_org`, `slice/mel_gen`, `all/mel`) as PNG; the Event protos are TensorBoard's own
   (`tensorboard.compat.proto`), framed as TFRecords. About 150 MB with the defaults.
2. Reads the whole file to complete per-tag arrays (what a chart needs), each reader in a fresh process:
   voxtop (`ForeignRun(...).metrics_reader()`, every tag's series), TensorBoard's EventAccumulator as TensorBoard
   reads without TensorFlow (size_guidance 0 for scalars: every point kept), and tbparse's `SummaryReader.scalars`.
   Wall time, CPU time (the process's user + system, start and imports included) and peak RSS of each,
   --repeat rounds interleaved; the three must agree on the number of scalars.
3. Follows a live run: a writer process appends RVC's ten scalars per logged step, --follow-rate steps a second
   (default 5: 50 scalars/s, as bench/follow_cpu.py's 50 records/s; RVC's default logs one step in 200). First a reader polls every second as the Monitor
   does (its CPU time over --follow-s seconds, as a share of one core); then voxtop itself in a tmux pane
   (100x30), its Monitor open on the run (the TUI process's CPU time over --follow-s seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TAGS = ["loss/g/total", "loss/g/mel", "loss/g/kl", "loss/g/fm", "loss/d/total", "learning_rate", "grad_norm_g",
        "grad_norm_d", "loss/g/adv", "loss/d/adv"]
IMAGE_TAGS = ["slice/mel_org", "slice/mel_gen", "all/mel"]


def _frame(data: bytes) -> bytes:
    import google_crc32c

    def masked(chunk: bytes) -> int:
        crc = google_crc32c.value(chunk)
        return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF

    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked(header)) + data + struct.pack("<I", masked(data))


def generate(folder: Path, scalars: int, images: int) -> Path:
    """The event file (cached: made again only when missing)."""
    import io

    import numpy as np
    from PIL import Image
    from tensorboard.compat.proto import event_pb2, summary_pb2

    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "done.json"
    if done.exists() and json.loads(done.read_text()) == {"scalars": scalars, "images": images}:
        return next(folder.glob("events.out.tfevents.*"))
    for old in folder.glob("events.out.tfevents.*"):
        old.unlink()
    path = folder / f"events.out.tfevents.{int(time.time())}.bench.1.0"
    steps = scalars // len(TAGS)
    image_every = max(1, steps // max(1, images // len(IMAGE_TAGS)))
    rng = np.random.default_rng(0)
    start = time.time() - steps * 0.5
    with open(path, "wb") as out:
        first = event_pb2.Event(wall_time=start, file_version="brain.Event:2")
        out.write(_frame(first.SerializeToString()))
        chunk = []
        mel = 20 + 5 * np.exp(-np.arange(steps) / (steps / 5)) + 0.3 * rng.standard_normal(steps)
        for step in range(1, steps + 1):
            wall = start + step * 0.5
            for k, tag in enumerate(TAGS):
                value = float(mel[step - 1]) * (1 + 0.1 * k)
                event = event_pb2.Event(wall_time=wall, step=step,
                                        summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(
                                            tag=tag, simple_value=value)]))
                chunk.append(_frame(event.SerializeToString()))
            if step % image_every == 0:
                for tag in IMAGE_TAGS:
                    pixels = rng.integers(0, 256, size=(320, 340, 3), dtype=np.uint8)
                    buffer = io.BytesIO()
                    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
                    image = summary_pb2.Summary.Image(height=320, width=340, colorspace=3,
                                                      encoded_image_string=buffer.getvalue())
                    event = event_pb2.Event(wall_time=wall, step=step, summary=summary_pb2.Summary(
                        value=[summary_pb2.Summary.Value(tag=tag, image=image)]))
                    chunk.append(_frame(event.SerializeToString()))
            if len(chunk) > 50_000:
                out.write(b"".join(chunk))
                chunk = []
        out.write(b"".join(chunk))
    done.write_text(json.dumps({"scalars": scalars, "images": images}))
    return path


READERS = {
    "voxtop": """
from pathlib import Path
from trainer.foreign.layouts import recognise
from trainer.foreign.sources import ForeignRun
run = ForeignRun(recognise(Path(FOLDER)))
reader = run.metrics_reader()
reader.poll()
count = sum(s.count for s in reader.history.series.values())
""",
    "EventAccumulator": """
from tensorboard.backend.event_processing import event_accumulator as ea
acc = ea.EventAccumulator(FOLDER, size_guidance={ea.SCALARS: 0})
acc.Reload()
count = sum(len(acc.Scalars(tag)) for tag in acc.Tags()["scalars"])
""",
    "tbparse": """
from tbparse import SummaryReader
count = len(SummaryReader(FOLDER).scalars)
""",
}


def measure(name: str, folder: Path) -> dict[str, float]:
    """One reader in a fresh process: wall seconds, peak RSS (MB) and the scalars it read."""
    code = ("import time, json, sys; sys.path.insert(0, %r); FOLDER = %r; began = time.perf_counter()\n"
            % (str(ROOT), str(folder)) + READERS[name]
            + "\nprint(json.dumps({'seconds': time.perf_counter() - began, 'count': count}))")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    out = process.stdout.read() if process.stdout is not None else b""
    _, _, usage = os.wait4(process.pid, 0)  # reaped here, so its own rusage: peak RSS of this reader alone
    process.returncode = 0
    found = json.loads(out.decode().strip().splitlines()[-1])
    found["peak_rss_mb"] = usage.ru_maxrss / 1024
    found["cpu_s"] = usage.ru_utime + usage.ru_stime  # the whole process: start, imports and reading
    return found


WRITER = """
import struct, sys, time
sys.path.insert(0, %r)
from tensorboard.compat.proto import event_pb2, summary_pb2
from bench.tb_read import TAGS, _frame
out = open(sys.argv[1], "ab")
step = 0
end = time.time() + float(sys.argv[2])
while time.time() < end:
    step += 1
    for tag in TAGS:
        event = event_pb2.Event(wall_time=time.time(), step=step, summary=summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=tag, simple_value=1.0 / step)]))
        out.write(_frame(event.SerializeToString()))
    out.flush()
    time.sleep(1.0 / float(sys.argv[3]))
"""

FOLLOWER = """
import sys, time, resource
sys.path.insert(0, %r)
from pathlib import Path
from trainer.foreign.layouts import recognise
from trainer.foreign.sources import ForeignRun
folder, seconds = Path(sys.argv[1]), float(sys.argv[2])
while recognise(folder) is None:
    time.sleep(0.05)
reader = ForeignRun(recognise(folder)).metrics_reader()
fields = {"train": ("step", "loss"), "val": ("step", "loss")}
reader.read_new_columns(fields)
began, cpu0 = time.monotonic(), time.process_time()
polls = points = 0
while time.monotonic() - began < seconds:
    time.sleep(1.0)
    new = reader.read_new_columns(fields)
    polls += 1
    points += sum(len(c["step"]) for c in new.columns.values())
cpu = time.process_time() - cpu0
print(f"{cpu / (time.monotonic() - began) * 100:.2f} {polls} {points} {sum(s.count for s in reader.history.series.values())}")
"""


def follow(seconds: float, rate: float) -> dict[str, float]:
    """The follower's share of a core while a writer logs RVC's ten scalars `rate` steps a second."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "logs" / "live"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        (folder / "G_0.pth").write_bytes(b"")
        target = folder / f"events.out.tfevents.{int(time.time())}.live.1.0"
        writer = subprocess.Popen([sys.executable, "-c", WRITER % str(ROOT), str(target), str(seconds + 3), str(rate)])
        try:
            result = subprocess.run([sys.executable, "-c", FOLLOWER % str(ROOT), str(folder), str(seconds)],
                                    capture_output=True, text=True, timeout=seconds + 60,
                                    env={**os.environ, "OMP_NUM_THREADS": "1"})
        finally:
            writer.wait(timeout=seconds + 30)
        share, polls, points, total = result.stdout.split()
        return {"core_percent": float(share), "polls": int(polls), "new_points": int(points), "series_points": int(total)}


def follow_tui(seconds: float, rate: float) -> dict[str, float]:
    """The TUI's share of a core, its Monitor open on an RVC folder a writer logs to `rate` steps a second."""
    import shutil

    import psutil

    voxtop = ROOT / ".venv" / "bin" / "voxtop"
    if shutil.which("tmux") is None or not voxtop.exists():
        raise RuntimeError("needs tmux and the .venv voxtop script")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "runs" / "live"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        (folder / "G_0.pth").write_bytes(b"")
        target = folder / f"events.out.tfevents.{int(time.time())}.live.1.0"
        writer = subprocess.Popen([sys.executable, "-c", WRITER % str(ROOT), str(target), str(seconds + 40),
                                   str(rate)])
        session = f"voxtop-tb-follow-{os.getpid()}"
        try:
            subprocess.run(["tmux", "new-session", "-d", "-x", "100", "-y", "30", "-s", session,
                            f"cd {tmp} && exec {voxtop} --runs {tmp}/runs --datasets {tmp}"], check=True)

            def screen() -> str:
                return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                      text=True).stdout

            deadline = time.time() + 30
            while "live" not in screen():
                if time.time() > deadline:
                    raise TimeoutError("the Runs screen did not list the run")
                time.sleep(0.1)
            subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)
            while "live ·" not in screen():
                if time.time() > deadline:
                    raise TimeoutError("the Monitor did not open")
                time.sleep(0.1)
            time.sleep(3)  # the first full read settles
            pane = subprocess.run(["tmux", "display-message", "-p", "-t", session, "#{pane_pid}"],
                                  capture_output=True, text=True).stdout.strip()
            tui = psutil.Process(int(pane))
            before, began = tui.cpu_times(), time.monotonic()
            time.sleep(seconds)
            after, elapsed = tui.cpu_times(), time.monotonic() - began
            shown = screen()
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
            writer.kill()
            writer.wait()
    used = (after.user - before.user) + (after.system - before.system)
    return {"core_percent": used / elapsed * 100, "seconds": elapsed, "screen": shown}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scalars", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "voxtop-bench-tb")
    parser.add_argument("--skip-slow", action="store_true", help="voxtop only (no EventAccumulator, no tbparse)")
    parser.add_argument("--follow-s", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the three readers, interleaved")
    parser.add_argument("--follow-rate", type=float, default=5.0,
                        help="logged steps a second (ten scalars each) while following (default 5: 50 scalars/s)")
    parser.add_argument("--skip-read", action="store_true", help="only the following part")
    args = parser.parse_args()
    folder = args.data / "logs" / "bench"
    began = time.perf_counter()
    path = generate(folder, args.scalars, args.images)
    (folder / "config.json").write_text("{}")
    (folder / "G_0.pth").write_bytes(b"")  # an RVC folder
    print(f"event file: {path} ({path.stat().st_size / 2**20:.0f} MB), ready in {time.perf_counter() - began:.0f} s")
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average, {os.cpu_count()} cores)")
    results: dict[str, list[dict[str, float]]] = {}
    names = [] if args.skip_read else ["voxtop"] if args.skip_slow else ["voxtop", "EventAccumulator", "tbparse"]
    for _ in range(args.repeat):  # interleaved, so a change of load falls on all of them
        for name in names:
            found = measure(name, folder)
            results.setdefault(name, []).append(found)
            print(f"{name:18} {found['seconds']:8.2f} s wall  {found['cpu_s']:8.2f} s CPU  "
                  f"{found['peak_rss_mb']:7.0f} MB  {found['count']} scalars", flush=True)
    median = {name: {key: statistics.median(run[key] for run in runs) for key in ("seconds", "cpu_s")}
              for name, runs in results.items()}
    for name, found in median.items():
        if name != "voxtop" and "voxtop" in median:
            print(f"voxtop is {found['seconds'] / median['voxtop']['seconds']:.0f}x faster than {name} in wall time, "
                  f"{found['cpu_s'] / median['voxtop']['cpu_s']:.0f}x in CPU time (medians)")
    if args.follow_s > 0:
        live = follow(args.follow_s, args.follow_rate)
        print(f"{args.follow_rate * len(TAGS):g} scalars/s logged ({args.follow_rate:g} steps of ten tags)")
        print(f"following a live run (the reader, polled every second): {live['core_percent']:.2f}% of a core "
              f"over {args.follow_s:.0f} s ({live['polls']} polls, {live['new_points']} new points)")
        shown = follow_tui(args.follow_s, args.follow_rate)
        print(f"following a live run (voxtop's TUI, its Monitor open): {shown['core_percent']:.2f}% of a core "
              f"over {shown['seconds']:.0f} s")
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
