"""TUI start: process start to the first painted Runs screen, against `import textual.app`.

    .venv/bin/python bench/tui_start.py [--repeat 10] [--runs DIR]

Both commands run the same way, in a detached tmux pane (100x30), and the clock stops when
`tmux capture-pane` first shows their marker: the Runs screen's header for voxtop, a
printed line for the floor (`python -c "import textual.app; print(...)"`). The pane is
polled every 5 ms, so both figures carry the same measuring overhead. Figures are medians.
voxtop's bytecode is compiled first, as ./run's set-up does and as pip does for textual.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
VOXTOP = ROOT / ".venv" / "bin" / "voxtop"
POLL_S = 0.005


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def time_to_marker(session: str, command: str, marker: str, timeout_s: float = 30.0) -> tuple[float, float]:
    """Wall seconds from (re)spawning `command` in the pane to `marker` appearing on it, and
    the CPU seconds (user + system) the pane's process had used by then.

    CPU time is reported too because other work on a small machine stretches wall time;
    `command` must `exec` its program so that the pane's process is the one measured.
    """
    tmux("respawn-pane", "-k", "-t", session, "sleep 3600")
    while marker in tmux("capture-pane", "-p", "-t", session):
        time.sleep(POLL_S)
    started = time.perf_counter()
    tmux("respawn-pane", "-k", "-t", session, command)
    while time.perf_counter() - started < timeout_s:
        if marker in tmux("capture-pane", "-p", "-t", session):
            wall_s = time.perf_counter() - started
            pid = int(tmux("display-message", "-p", "-t", session, "#{pane_pid}").strip())
            cpu = psutil.Process(pid).cpu_times()
            return wall_s, cpu.user + cpu.system
        time.sleep(POLL_S)
    raise TimeoutError(f"{marker!r} did not appear within {timeout_s} s; pane:\n"
                       + tmux("capture-pane", "-p", "-t", session))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="runs of each command (median reported)")
    parser.add_argument("--runs", type=Path, default=None,
                        help="runs folder voxtop lists (default: a temp folder with 3 small runs)")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("tmux is needed for this benchmark", file=sys.stderr)
        return 2
    # Like for like: textual's bytecode was compiled when pip installed it; ours is written by
    # ./run's set-up (an editable install compiles nothing), so make sure it is there.
    subprocess.run([str(PYTHON), "-m", "compileall", "-q", str(ROOT / "tui"), str(ROOT / "trainer")],
                   check=True, stdout=subprocess.DEVNULL)
    scratch = Path(tempfile.mkdtemp(prefix="voxtop-start-"))
    runs = args.runs or make_runs(scratch / "runs")
    session = f"voxtop-start-{int(time.time())}"
    subprocess.run(["tmux", "new-session", "-d", "-x", "100", "-y", "30", "-s", session, "sleep 3600"],
                   check=True)
    floor_cmd = (f"exec {PYTHON} -c 'import textual.app; print(\"FLOOR\" + \"READY\"); "
                 "import time; time.sleep(3600)'")
    app_cmd = f"cd {scratch} && exec {VOXTOP} --runs {runs} --datasets {scratch}"
    floor, app = [], []
    try:
        time_to_marker(session, app_cmd, "Runs · folder")  # warm the page cache once, untimed
        for _ in range(args.repeat):  # interleaved, so load changes hit both alike
            floor.append(time_to_marker(session, floor_cmd, "FLOORREADY"))
            app.append(time_to_marker(session, app_cmd, "Runs · folder"))
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
        shutil.rmtree(scratch, ignore_errors=True)
    for index, what in ((0, "wall"), (1, "CPU")):
        f_values, a_values = [x[index] for x in floor], [x[index] for x in app]
        f_med, a_med = statistics.median(f_values), statistics.median(a_values)
        print(f"{what:4}  floor  import textual.app        median {f_med * 1000:6.0f} ms  "
              f"(min {min(f_values) * 1000:.0f}, max {max(f_values) * 1000:.0f}, n={len(f_values)})")
        print(f"{what:4}  voxtop first painted Runs    median {a_med * 1000:6.0f} ms  "
              f"(min {min(a_values) * 1000:.0f}, max {max(a_values) * 1000:.0f}, n={len(a_values)})")
        ratio = a_med / f_med
        print(f"{what:4}  ratio {ratio:.2f}x the floor (target <= 1.5x): {'MET' if ratio <= 1.5 else 'MISSED'}")
    return 0


def make_runs(runs_root: Path) -> Path:
    """Three finished runs with a few metrics lines each, so the table has rows to paint."""
    sys.path.insert(0, str(ROOT))
    from trainer.rundir import MetricsWriter, create_run

    for index in range(3):
        run = create_run(runs_root, f"bench{index}", "[model]\npreset = \"tiny\"\n")
        writer = MetricsWriter(run.metrics_path)
        for step in range(1, 50):
            writer.write("train", step, epoch=0, loss=1.0 / step, attention_score=0.2)
        writer.close()
        run.write_status(state="finished", step=49, epoch=0, total_steps=49, started_at=time.time())
    return runs_root


if __name__ == "__main__":
    sys.exit(main())
