"""Hostile input: nothing in a dataset, a run folder or a config crashes voxtop, escapes its folder or hangs it.

One section per principle (issue "Hostile input"): the feature cache proves itself; records are
validated once; only regular files are opened and staleness is judged one way; every filesystem
fault is a sentence; the dataset check catches what training would trip on; pretrained files,
`--set` errors, run names and SIGHUP. Real files and real subprocesses throughout; a full or
read-only disk is a real tmpfs where this machine lets us mount one (root), else injected or chmod.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import soundfile

from conftest import ROOT, VOXTOP, make_dataset, tiny_config, voxtop, wait_for, write_wav
from trainer import config as cfg
from trainer.rundir import INJECT_WRITE_ERROR_ENV, MetricsReader, RunDir, create_run
from tui_helpers import sync

ROOTLESS = os.geteuid() != 0


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr


@contextlib.contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    """A real tmpfs of `size` at `path` (skipped where it cannot be mounted); read-only after mounting if asked."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(folder: Path) -> None:
    """Write into `folder` until its disk is full."""
    with open(folder / "filler", "wb") as handle:
        with contextlib.suppress(OSError):
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()


def run_with_metrics(runs: Path, lines: list[str], name: str = "odd") -> RunDir:
    run = create_run(runs, name, cfg.dumps(cfg.Config()))
    run.write_status(state="finished", step=6, epoch=1, total_steps=6, host="elsewhere", pid=None)
    run.metrics_path.write_text("\n".join(lines) + "\n")
    return run


# --- 1. the feature cache proves itself ------------------------------------------------------------


def five_clip_dataset(root: Path) -> Path:
    return make_dataset(root, [f"c{i}|Hello number {i}, said clearly." for i in range(5)])


def test_a_copied_validation_cache_with_escaping_ids_is_rebuilt(tmp_path: Path) -> None:
    """cp -a keeps mtimes: a doctored info.json in a copied dataset must not name `../` files."""
    from trainer.dataset import scan

    original = five_clip_dataset(tmp_path / "original")
    assert scan(original).valid
    info = original / ".voxtop" / "info.json"
    doctored = json.loads(info.read_text())
    doctored["clips"][0].update(id="../../outside", wav="wavs/../../outside.wav")
    info.write_text(json.dumps(doctored))
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(original), str(copy)], check=True)
    for dataset in (original, copy):  # the same folder (key matches) and a copy (inodes differ)
        result = subprocess.run([*VOXTOP, "dataset", "check", str(dataset), "--json"], capture_output=True,
                                text=True, cwd=ROOT, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        clips = scan(dataset).clips
        assert sorted(c.id for c in clips) == [f"c{i}" for i in range(5)]
        assert all(c.wav == f"wavs/{c.id}.wav" for c in clips)


def test_features_never_follow_a_clip_id_out_of_the_dataset(tmp_path: Path) -> None:
    from trainer.dataset import Clip
    from trainer.features import ClipError, FeatureCache

    dataset = five_clip_dataset(tmp_path / "ds")
    write_wav(tmp_path / "outside.wav")
    cache = FeatureCache(cfg.DataConfig(dataset=str(dataset)))
    for clip in (Clip("../outside", "x", "wavs/../outside.wav", 1), Clip("c0", "x", "../outside.wav", 1)):
        with pytest.raises(ClipError, match="cannot be used"):
            cache.build([clip])
    assert not list(tmp_path.glob("*.npy")) and not list(dataset.glob("*.npy"))


def test_a_rerecorded_or_replaced_wav_is_computed_again(tmp_path: Path) -> None:
    from trainer.dataset import load_clips
    from trainer.features import FeatureCache

    dataset = five_clip_dataset(tmp_path / "ds")
    data = cfg.DataConfig(dataset=str(dataset), trim_silence=False)
    clips = load_clips(dataset)
    assert FeatureCache(data).build(clips) == 5
    before = FeatureCache(data).load(clips[0])
    wav = dataset / "wavs" / "c0.wav"
    write_wav(wav, seconds=0.5, freq=880.0)  # re-recorded: same length, new sound, new mtime
    cache = FeatureCache(data)
    assert cache.build(load_clips(dataset)) == 1
    rerecorded = cache.load(clips[0])
    assert rerecorded.shape == before.shape and not np.allclose(rerecorded, before)
    # replaced by another file with the very same size and mtime (cp -p, rsync -t): its inode differs
    stamp = wav.stat()
    write_wav(tmp_path / "new.wav", seconds=0.5, freq=330.0)
    os.utime(tmp_path / "new.wav", ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    os.replace(tmp_path / "new.wav", wav)
    cache = FeatureCache(data)
    assert cache.build(load_clips(dataset)) == 1
    assert not np.allclose(cache.load(clips[0]), rerecorded)
    assert len(list(cache.folder.glob("c0.*.npy"))) == 1  # the features of older recordings are gone


@pytest.mark.parametrize("damage", ["garbage", "wrong-shape", "nan", "fifo"])
def test_a_cached_feature_that_does_not_hold_up_is_computed_again(tmp_path: Path, damage: str) -> None:
    from trainer.dataset import load_clips
    from trainer.features import FeatureCache

    dataset = five_clip_dataset(tmp_path / "ds")
    data = cfg.DataConfig(dataset=str(dataset))
    clips = load_clips(dataset)
    cache = FeatureCache(data)
    cache.build(clips)
    good = cache.load(clips[1]).copy()
    path = FeatureCache(data).path(clips[1])
    path.unlink()
    if damage == "garbage":
        path.write_bytes(b"\x93NUMPY garbage")
    elif damage == "wrong-shape":
        np.save(path, np.zeros((3, 7), dtype=np.float32))
    elif damage == "nan":
        np.save(path, np.full_like(good, np.nan))
    else:
        os.mkfifo(path)
    cache = FeatureCache(data)
    assert cache.frames(clips[1]) == good.shape[1]
    assert np.allclose(cache.load(clips[1]), good)


# --- 3. records are validated once ---------------------------------------------------------------------

ODD_LINES = [
    '{"t": 1, "kind": "start", "step": 0, "epoch": 1, "resumed_from": null}',
    '{"t": 2, "kind": "train", "step": 3, "loss": 1.5, "epoch": 1}',
    '{"kind": "train", "step": null}',
    '{"t": 3, "kind": "val", "step": 3, "loss": 1.25, "attention_score": 0.2}',
    '{"t": 4, "kind": "checkpoint", "step": 3, "path": "checkpoints/step-00000003.pt", "tags": [1, {"x": 2}]}',
    '{"t": 4, "kind": "checkpoint", "step": 3, "path": "checkpoints/step-00000003.pt", "tags": "best"}',
    '{"t": 4, "kind": "checkpoint", "step": 3, "path": 7, "tags": ["final"]}',
    '{"t": 5, "kind": "event", "step": 3, "level": "warn", "code": "x", "message": {"not": "text"}}',
    '{"t": 6, "kind": "checkpoint", "step": 6, "path": "checkpoints/step-00000006.pt", "val_loss": 1.0, "tags": ["final"]}',
    '{"t": 7, "kind": "end", "step": 6, "reason": "finished"}',
]


def test_odd_records_are_counted_and_skipped_by_every_reader(tmp_path: Path) -> None:
    from trainer.rundir.queries import checkpoint_table, current_records

    runs = tmp_path / "runs"
    run = run_with_metrics(runs, ODD_LINES)
    for step in (3, 6):
        run.checkpoint_path(step).write_bytes(b"PK")
    other = run_with_metrics(runs, ODD_LINES[:2], name="plain")
    reader = MetricsReader(run.metrics_path)
    kinds = [r["kind"] for r in reader.read_new()]
    assert reader.malformed == 5 and kinds == ["start", "train", "val", "checkpoint", "end"]
    columns_reader = MetricsReader(run.metrics_path)
    columns = columns_reader.read_new_columns({"train": ("step", "loss"), "val": ("step", "loss")})
    assert columns_reader.malformed == 5  # what the Monitor reads: the same lines are malformed
    assert [r["tags"] for r in columns.records if r["kind"] == "checkpoint"] == [["final"]]
    assert all(isinstance(r.get("message", ""), str) for r in current_records(run.metrics_path))
    table = checkpoint_table(run)
    assert all(isinstance(tag, str) for row in table.rows for tag in row.tags)
    listed = voxtop("runs", runs=runs, timeout=60)
    assert listed.returncode == 0 and run.name in listed.stdout and other.name in listed.stdout, listed.stderr
    for args in (("runs", "--json"), ("checkpoints", run.name), ("checkpoints", run.name, "--json"),
                 ("watch", run.name)):
        result = voxtop(*args, runs=runs, timeout=60)
        assert result.returncode == 0, (args, result.stdout + result.stderr)
        no_traceback(result)


# --- 4. only regular files are opened; staleness is judged one way -----------------------------------------


def test_a_fifo_named_like_a_wav_does_not_hang_the_dataset_check(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "ds", ["a|Hello there.", "x|A pipe, not a wav."], wavs={"a": {}})
    os.mkfifo(dataset / "wavs" / "x.wav")
    for command in ("check", "info"):
        result = subprocess.run([*VOXTOP, "dataset", command, str(dataset)], capture_output=True, text=True,
                                cwd=ROOT, timeout=60)
        no_traceback(result)
    assert result.returncode == 0
    check = subprocess.run([*VOXTOP, "dataset", "check", str(dataset), "--no-cache"], capture_output=True,
                           text=True, cwd=ROOT, timeout=60)
    assert check.returncode == 1 and "wavs/x.wav" in check.stdout and "FIFO" in check.stdout, check.stdout


def test_fifos_in_a_dataset_or_a_run_hang_nothing(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "ds", ["a|Hello there."])
    (dataset / "metadata.csv").unlink()
    os.mkfifo(dataset / "metadata.csv")
    check = subprocess.run([*VOXTOP, "dataset", "check", str(dataset)], capture_output=True, text=True,
                           cwd=ROOT, timeout=60)
    assert check.returncode == 1 and "metadata.csv" in check.stdout and "FIFO" in check.stdout, check.stdout
    runs = tmp_path / "runs"
    fifo_run = run_with_metrics(runs, ODD_LINES[:2], name="pipes")
    fifo_run.metrics_path.unlink()
    os.mkfifo(fifo_run.metrics_path)
    fifo_run.log_path.unlink(missing_ok=True)
    os.mkfifo(fifo_run.log_path)
    fine = run_with_metrics(runs, ODD_LINES[:2], name="fine")
    listed = voxtop("runs", "--json", runs=runs, timeout=60)
    states = {r["name"]: r["state"] for r in json.loads(listed.stdout)}
    assert states == {fifo_run.name: "unreadable", fine.name: "finished"}, listed.stdout
    watched = voxtop("watch", fifo_run.name, runs=runs, timeout=60)
    no_traceback(watched)


@sync
async def test_the_datasets_screen_scans_a_dataset_with_a_fifo_and_quits(tmp_path: Path) -> None:
    from tui.app import create_app
    from tui_helpers import wait_for as wait_on_screen

    root = tmp_path / "datasets"
    dataset = make_dataset(root / "piped", ["a|Hello there.", "x|A pipe."], wavs={"a": {}})
    os.mkfifo(dataset / "wavs" / "x.wav")
    app = create_app(root, tmp_path / "runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_on_screen(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        await pilot.press("n")
        await wait_on_screen(pilot, lambda: "FIFO" in str(app.screen.query_one("#dataset-detail").render()))
        await pilot.press("q")
        await pilot.press("q")


def test_a_record_names_only_regular_pictures_inside_its_run(tmp_path: Path) -> None:
    from trainer.rundir.source import VoxtopRun

    run = run_with_metrics(tmp_path / "runs", ODD_LINES[:1], name="pictures")
    np.save(tmp_path / "outside.npy", np.ones((3, 3)))
    np.save(run.alignment_path(3), np.ones((3, 3)))
    os.mkfifo(run.alignment_path(6))
    source = VoxtopRun(run)
    assert source.picture_path({"path": "alignments/step-00000003.npy"}, "alignment") == run.alignment_path(3)
    for named in ("../../outside.npy", str(tmp_path / "outside.npy"), "alignments/step-00000006.npy"):
        assert source.picture_path({"path": named}, "alignment") is None, named


STUCK_APP = """
import sys
from textual import work
from textual.app import App
from tui.cli import run_then_leave

class Stuck(App):
    def on_mount(self):
        self.wait_on_the_pipe()
        self.set_timer(0.3, self.exit)

    @work(thread=True, exit_on_error=False)
    def wait_on_the_pipe(self):
        with open(sys.argv[1], "rb") as pipe:  # no writer ever comes
            pipe.read()

app = Stuck()
if sys.argv[2] == "leave":
    run_then_leave(app, headless=True)
else:
    app.run(headless=True)
"""


def test_quitting_works_whatever_a_worker_waits_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(subprocess.TimeoutExpired):  # what `App.run()` does: waits for the worker forever
        subprocess.run([sys.executable, "-c", STUCK_APP, str(tmp_path / "pipe"), "run"], cwd=ROOT, timeout=8,
                       capture_output=True)
    started = time.monotonic()
    left = subprocess.run([sys.executable, "-c", STUCK_APP, str(tmp_path / "pipe"), "leave"], cwd=ROOT, timeout=60,
                          capture_output=True, text=True)
    assert left.returncode == 0 and time.monotonic() - started < 30, left.stderr


def test_the_app_quits_through_the_same_door(tmp_path: Path) -> None:
    script = ("import sys\nfrom pathlib import Path\nfrom tui.app import VoxtopApp\nfrom tui.cli import run_then_leave\n"
              "async def quit_at_once(pilot):\n    await pilot.pause(0.3)\n    await pilot.press('q')\n"
              "root = Path(sys.argv[1])\n"
              "app = VoxtopApp(datasets_root=root / 'datasets', runs_root=root / 'runs', gpu_refresh_s=1.0)\n"
              "run_then_leave(app, headless=True, auto_pilot=quit_at_once)\nprint('quit', app.return_code)\n")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, timeout=120, capture_output=True,
                            text=True)
    assert result.returncode == 0 and "quit" in result.stdout, result.stdout + result.stderr


def holder(run: RunDir, state: str = "running") -> subprocess.Popen[str]:
    """A process that holds the run's lock and writes a fresh status, as a trainer does, then sleeps."""
    code = ("import os, socket, sys, time\n"
            "from trainer.rundir import RunDir\n"
            "from trainer.rundir.status import process_start_ticks\n"
            "run = RunDir(sys.argv[1]); run.acquire_lock()\n"
            f"run.write_status(state={state!r}, pid=os.getpid(), pgid=os.getpgid(0), step=5, total_steps=100,\n"
            "                 pid_start=process_start_ticks(os.getpid()), host=socket.gethostname())\n"
            "run.start_heartbeat()\n"
            "print('ready', flush=True)\n"
            "time.sleep(600)\n")
    process = subprocess.Popen([sys.executable, "-c", code, str(run.path)], cwd=ROOT, stdout=subprocess.PIPE,
                               text=True, start_new_session=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def age_status(run: RunDir, seconds: float) -> None:
    status = run.read_status()
    status["updated_at"] = time.time() - seconds
    run.status_path.write_text(json.dumps(status))


def test_a_stopped_trainer_is_not_responding_with_its_heartbeat_age(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run = run_with_metrics(runs, ODD_LINES[:2], name="frozen")
    trainer = holder(run)
    try:
        assert run.effective_state() == "running"
        os.kill(trainer.pid, signal.SIGSTOP)
        age_status(run, 300)  # five minutes pass: a stopped process writes no heartbeat
        assert run.effective_state() == "stale"
        listed = voxtop("runs", runs=runs, timeout=60)
        assert "not responding" in listed.stdout and "last heartbeat 5 min ago" in listed.stdout, listed.stdout
        started = time.monotonic()
        watched = voxtop("watch", run.name, "--interval", "0.2", runs=runs, timeout=60)
        assert watched.returncode == 1 and "not responding: last heartbeat 5 min ago" in watched.stdout
        assert time.monotonic() - started < 30
    finally:
        os.kill(trainer.pid, signal.SIGCONT)
        trainer.kill()
        trainer.wait()


def test_a_pid_that_is_not_the_trainer_it_recorded_is_stale_at_once(tmp_path: Path) -> None:
    from trainer.rundir.status import process_start_ticks

    runs = tmp_path / "runs"
    run = run_with_metrics(runs, ODD_LINES[:1], name="reused")
    other = subprocess.Popen(["sleep", "600"])
    try:
        ticks = process_start_ticks(other.pid)
        assert ticks is not None
        run.write_status(state="starting", pid=other.pid, pid_start=ticks, host=socket.gethostname())
        assert run.effective_state() == "starting"  # the process it recorded, young: still starting
        run.write_status(pid_start=ticks + 1)  # the same pid, another process
        listed = voxtop("runs", "--json", runs=runs, timeout=60)
        assert json.loads(listed.stdout)[0]["state"] == "stale"
        started = time.monotonic()
        watched = voxtop("watch", run.name, "--interval", "0.2", runs=runs, timeout=60)
        assert watched.returncode == 1 and time.monotonic() - started < 30, watched.stdout
        run.write_status(pid_start=None)
        assert run.effective_state() == "stale"  # no start time recorded: `sleep` is no trainer by its command line
        run.write_status(pid_start=ticks)
        age_status(run, -10 ** 6)
        assert run.effective_state() == "stale"  # the process it recorded, but a heartbeat from the future proves nothing
    finally:
        other.kill()
        other.wait()


def test_the_heartbeat_thread_beats_while_the_trainer_is_busy(tmp_path: Path) -> None:
    run = run_with_metrics(tmp_path / "runs", ODD_LINES[:1], name="beat")
    first = run.write_status(state="running")["updated_at"]
    stop = run.start_heartbeat(0.05)
    assert run.read_status()["heartbeat_s"] == 0.05  # what watchers judge its age against
    try:
        wait_for(lambda: run.read_status()["updated_at"] > first + 0.1, timeout=10)
    finally:
        stop.set()
    time.sleep(0.2)
    last = run.read_status()["updated_at"]
    time.sleep(0.3)
    assert run.read_status()["updated_at"] == last and run.read_status()["state"] == "running"


# --- 5. every filesystem fault is a sentence ---------------------------------------------------------------


def test_a_read_only_runs_folder_is_a_sentence(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    runs = tmp_path / "runs"
    with contextlib.ExitStack() as stack:
        if ROOTLESS:
            runs.mkdir()
            runs.chmod(0o555)
            stack.callback(runs.chmod, 0o755)
        else:  # root writes through chmod: a read-only file system does not let it
            stack.enter_context(tmpfs(runs, "1m", read_only=True))
        result = voxtop("prepare", str(config), runs=runs, timeout=120)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "read-only file system" in result.stderr or "permission denied" in result.stderr, result.stderr
        assert str(runs) in result.stderr
        no_traceback(result)
        assert not any(runs.iterdir())


def test_a_full_disk_at_run_start_leaves_no_run_folder(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    runs = tmp_path / "runs"
    injected = subprocess.run([*VOXTOP, "--runs", str(runs), "prepare", str(config)], capture_output=True, text=True,
                              cwd=ROOT, timeout=120, env={**os.environ, INJECT_WRITE_ERROR_ENV: "other:ENOSPC"})
    assert injected.returncode == 1 and "disk full writing" in injected.stderr, injected.stderr
    assert "config.toml" in injected.stderr
    no_traceback(injected)
    assert not any(runs.iterdir())
    with tmpfs(tmp_path / "full", "256k") as full:
        (full / "runs").mkdir()
        fill(full)
        result = voxtop("prepare", str(config), runs=full / "runs", timeout=120)
        assert result.returncode == 1 and "disk full writing" in result.stderr, result.stderr
        no_traceback(result)
        assert not any((full / "runs").iterdir())


@pytest.mark.slow
def test_a_disk_filling_mid_run_says_disk_full_and_how_to_resume(tmp_path: Path) -> None:
    """The run's folder on a 1 MB tmpfs: config, status, log and metrics fit, the first checkpoint does not
    (torch reports that as `RuntimeError: ... unexpected pos`)."""
    from trainer.launch import prepare_run

    config = cfg.load(tiny_config(tmp_path, train={"max_steps": 6}, checkpoint={"every_steps": 3}))
    with tmpfs(tmp_path / "small", "1m") as small:
        run = prepare_run(small / "runs", config)
        result = subprocess.run([sys.executable, "-m", "trainer", str(run.path)], capture_output=True, text=True,
                                cwd=ROOT, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert result.returncode == 1
        error = run.read_status()["error"]
        assert error.startswith("disk full writing ") and "step-00000003.pt" in error, error
        assert f"then `voxtop resume {run.name}`" in error
        assert "unexpected pos" not in error and "Traceback" not in result.stderr, result.stderr
        assert not run.checkpoints()


def test_torchs_short_write_is_read_as_the_full_disk_it_is(tmp_path: Path) -> None:
    import errno

    from trainer.checkpoints import as_write_error

    torch_says = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1152 vs 1050")
    with tmpfs(tmp_path / "full", "256k") as full:
        fill(full)
        mapped = as_write_error(torch_says, full / "step-00000004.pt")
        assert isinstance(mapped, OSError) and mapped.errno == errno.ENOSPC
        assert mapped.filename == str(full / "step-00000004.pt")
    other = RuntimeError("shape mismatch")
    assert as_write_error(other, tmp_path / "x.pt") is other  # only the short write is a disk fault


def test_an_unreadable_run_is_listed_and_hides_no_other(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    hidden = run_with_metrics(runs, ODD_LINES[:2], name="locked")
    shown = run_with_metrics(runs, ODD_LINES[:2], name="open")
    with contextlib.ExitStack() as stack:
        if ROOTLESS:
            hidden.path.chmod(0)
            stack.callback(hidden.path.chmod, 0o755)
        else:  # root reads through chmod: a status and metrics that are no files cannot be read by anyone
            hidden.metrics_path.unlink()
            hidden.metrics_path.mkdir()
        listed = voxtop("runs", runs=runs, timeout=60)
        assert listed.returncode == 0, listed.stderr
        lines = {line.split()[0]: line for line in listed.stdout.splitlines()[1:] if line.split()}
        assert "unreadable" in lines[hidden.name] and "finished" in lines[shown.name], listed.stdout
        no_traceback(listed)


def test_an_unreadable_runs_or_dataset_folder_is_a_sentence(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.write_text("a file where the runs folder should be")
    listed = voxtop("runs", runs=runs, timeout=60)
    assert listed.returncode == 1 and str(runs) in listed.stderr, listed.stdout + listed.stderr
    no_traceback(listed)
    dataset = make_dataset(tmp_path / "ds", ["a|Hello there."])
    shutil.rmtree(dataset / "wavs")
    (dataset / "wavs").write_text("not a folder")
    check = subprocess.run([*VOXTOP, "dataset", "check", str(dataset)], capture_output=True, text=True, cwd=ROOT,
                           timeout=60)
    assert check.returncode == 1 and "wavs/" in check.stdout
    no_traceback(check)
    if ROOTLESS:
        (dataset / "wavs").unlink()
        (dataset / "wavs").mkdir(mode=0)
        check = subprocess.run([*VOXTOP, "dataset", "check", str(dataset), "--no-cache"], capture_output=True,
                               text=True, cwd=ROOT, timeout=60)
        assert check.returncode == 1 and "cannot be read" in check.stdout
        (dataset / "wavs").chmod(0o755)


def test_a_wav_that_is_a_symlink_loop_is_a_problem(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "ds", ["a|Hello there.", "loop|Round and round."], wavs={"a": {}})
    os.symlink("loop.wav", dataset / "wavs" / "loop.wav")
    check = subprocess.run([*VOXTOP, "dataset", "check", str(dataset)], capture_output=True, text=True, cwd=ROOT,
                           timeout=60)
    assert check.returncode == 1 and "wavs/loop.wav" in check.stdout and "symbolic link loop" in check.stdout
    no_traceback(check)


@pytest.mark.parametrize("name, words", [("r" * 300, "300 characters long"), (".hidden", "cannot start with '.'")])
def test_run_names_too_long_or_hidden_are_refused_before_anything_is_made(tmp_path: Path, name: str,
                                                                          words: str) -> None:
    runs = tmp_path / "runs"
    result = voxtop("prepare", str(tiny_config(tmp_path)), "--name", name, runs=runs, timeout=120)
    assert result.returncode == 1 and words in result.stderr, result.stderr
    no_traceback(result)
    assert not runs.exists() or not any(runs.iterdir())


# --- 6. the dataset check catches what training would trip on ----------------------------------------------


def test_the_check_finds_what_training_would_trip_on(tmp_path: Path) -> None:
    lines = ["id|text", "tiny|One sample.", "nan|Not a number.", "digits|Call " + "9" * 5000 + " now.",
             "long|A very long clip."] + [f"ok{i}|A normal clip number {i}." for i in range(4)]
    dataset = make_dataset(tmp_path / "ds", lines, wavs={f"ok{i}": {"seconds": 1.0} for i in range(4)})
    soundfile.write(str(dataset / "wavs" / "tiny.wav"), np.zeros(1), 22050, subtype="PCM_16")
    poisoned = 0.1 * np.ones(22050, dtype=np.float32)
    poisoned[100] = np.nan
    soundfile.write(str(dataset / "wavs" / "nan.wav"), poisoned, 22050, subtype="FLOAT")
    write_wav(dataset / "wavs" / "long.wav", seconds=40.0)
    write_wav(dataset / "wavs" / "digits.wav")
    result = subprocess.run([*VOXTOP, "dataset", "check", str(dataset), "--json"], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 1, result.stderr
    problems = json.loads(result.stdout)["problems"]
    by_code = {p["code"]: p for p in problems}
    assert by_code["header_row"]["line"] == 1 and "header row" in by_code["header_row"]["message"]
    assert "tiny.wav" in by_code["too_short"]["file"] and "one STFT frame" in by_code["too_short"]["message"]
    assert "nan.wav" in by_code["non_finite_audio"]["file"]
    assert by_code["long_number"]["line"] == 4 and "5000 digits" in by_code["long_number"]["message"]
    assert by_code["long_clip"]["severity"] == "warning" and "padded" in by_code["long_clip"]["message"]
    assert "missing_wav" not in by_code  # the header row is named as such, not as a missing wav
    info = subprocess.run([*VOXTOP, "dataset", "info", str(dataset)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert info.returncode == 0 and "clips       5" in info.stdout, info.stdout
    no_traceback(info)


def test_every_cleaner_says_a_five_thousand_digit_number_without_crashing() -> None:
    from trainer.text import LANGUAGES

    for language in LANGUAGES.values():
        for text in ("9" * 5000, "$" + "9" * 5000, "9" * 5000 + "th", "1," + "000," * 2000 + "000", "1." + "5" * 5000):
            assert language.clean(text)
            assert not language.unknown_characters(text) or language.code != "en"


def test_a_bad_clip_met_in_training_is_named(tmp_path: Path) -> None:
    """A clip that turned bad after the check (or in a dataset checked with other STFT settings)."""
    from trainer.dataset import Clip
    from trainer.features import ClipError, FeatureCache

    dataset = make_dataset(tmp_path / "ds", ["short|Too short."], wavs={})
    soundfile.write(str(dataset / "wavs" / "short.wav"), np.zeros(3), 22050, subtype="PCM_16")
    with pytest.raises(ClipError) as failed:
        FeatureCache(cfg.DataConfig(dataset=str(dataset))).build([Clip("short", "Too short.", "wavs/short.wav", 1)])
    assert "clip short" in str(failed.value) and "short.wav" in str(failed.value)


# --- 7. pretrained files, --set errors, SIGHUP ------------------------------------------------------------


@pytest.mark.parametrize("content, words", [(None, "does not exist"), (b"", "is empty (0 bytes)"),
                                            (b"hello", "is not a PyTorch checkpoint")])
def test_a_bad_pretrained_file_is_refused_before_a_run_folder_exists(tmp_path: Path, content: bytes | None,
                                                                     words: str) -> None:
    pretrained = tmp_path / "pretrained.pt"
    if content is not None:
        pretrained.write_bytes(content)
    runs = tmp_path / "runs"
    result = voxtop("train", str(tiny_config(tmp_path, train={"pretrained": str(pretrained)})), runs=runs,
                    timeout=120)
    assert result.returncode == 1 and "train.pretrained" in result.stderr and words in result.stderr, result.stderr
    no_traceback(result)
    assert not runs.exists() or not any(runs.iterdir())


def test_a_set_error_names_the_set_not_a_line_of_the_config(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    result = voxtop("prepare", str(config), "--set", "train.epochs=-5", "--set", "train.bogus=1", runs=tmp_path / "r",
                    timeout=120)
    assert result.returncode == 1
    assert "--set train.epochs=-5: train.epochs:" in result.stderr, result.stderr
    assert "--set train.bogus=1: train.bogus: unknown key" in result.stderr
    assert f"{config}:" not in result.stderr  # tiny.toml sets train.epochs, but the --set is what is wrong
    crossed = voxtop("prepare", str(config), "--set", "data.win=4096", runs=tmp_path / "r", timeout=120)
    assert "--set data.win=4096: data.win: 4096 is larger than data.n_fft" in crossed.stderr, crossed.stderr


@pytest.fixture(scope="module")
def hung_up_run(tmp_path_factory: pytest.TempPathFactory) -> RunDir:
    """A tiny run whose trainer got SIGHUP (a closed tmux pane) after its first steps."""
    from trainer.launch import prepare_run

    tmp_path = tmp_path_factory.mktemp("hangup")
    config = cfg.load(tiny_config(tmp_path, train={"max_steps": 500}, checkpoint={"every_steps": 1000}))
    run = prepare_run(tmp_path / "runs", config)
    trainer = subprocess.Popen([sys.executable, "-m", "trainer", str(run.path)], cwd=ROOT, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        wait_for(lambda: (run.read_status() or {}).get("step", 0) >= 2, timeout=300, interval=0.2)
        trainer.send_signal(signal.SIGHUP)
        trainer.wait(timeout=300)
    finally:
        if trainer.poll() is None:
            trainer.kill()
    run.returncode = trainer.returncode  # type: ignore[attr-defined]
    return run


@pytest.mark.slow
def test_sighup_saves_and_stops_like_sigterm(hung_up_run: RunDir) -> None:
    run = hung_up_run
    assert run.returncode == 0  # type: ignore[attr-defined]
    status = run.read_status()
    assert status["state"] == "stopped" and run.checkpoints()
    assert run.checkpoints()[-1].step == status["step"]
    records = MetricsReader(run.metrics_path).read_new()
    assert records[-1]["kind"] == "end" and records[-1]["reason"] == "stopped"
    assert any(r["kind"] == "event" and "SIGHUP" in r["message"] for r in records)


@pytest.mark.slow
def test_resume_counts_and_skips_odd_records(hung_up_run: RunDir, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(hung_up_run.path, runs / hung_up_run.name)
    run = RunDir(runs / hung_up_run.name)
    step = run.read_status()["step"]
    with open(run.metrics_path, "a") as metrics:
        metrics.write("\n".join(ODD_LINES[2:8]) + "\n")
    resumed = voxtop("resume", run.name, "--set", f"train.max_steps={step + 2}", runs=runs, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr
    assert run.read_status()["state"] == "finished" and run.read_status()["step"] == step + 2
    for args in (("runs",), ("checkpoints", run.name), ("watch", run.name)):
        result = voxtop(*args, runs=runs, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        no_traceback(result)
