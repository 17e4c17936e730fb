"""The headless commands as scripts and users run them: watch, script, prepare, export."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, VOXTOP, only_run, tiny_config, voxtop
from trainer.rundir import RunDir, read_metrics
from tui.watch import LogFollower

SHORT = {"train": {"max_steps": 3}, "checkpoint": {"every_steps": 2}}


def ended(run: Path) -> bool:
    return any(r["kind"] == "end" for r in read_metrics(run / "metrics.jsonl"))


def start_and_watch(tmp_path: Path, env: dict[str, str] | None = None, **sections: dict
                    ) -> tuple[Path, list[tuple[str, bool]], int]:
    """Start a detached trainer as the TUI does and `voxtop watch` it at once.

    Returns the run, each output line with whether the run had ended when it arrived, and
    watch's exit status.
    """
    from trainer import config as cfg
    from trainer.launch import prepare_run, start_detached

    runs = tmp_path / "runs"
    run = prepare_run(runs, cfg.load(tiny_config(tmp_path, **sections)), "watched")
    start_detached(run, env=env)
    watch = subprocess.Popen([*VOXTOP, "--runs", str(runs), "watch", run.name, "--interval", "0.2"],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[tuple[str, bool]] = []
    assert watch.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(
        (line.rstrip("\n"), ended(run.path)) for line in watch.stdout))  # type: ignore[union-attr]
    reader.start()
    try:
        code = watch.wait(timeout=540)
    finally:
        watch.kill()
        reader.join(10)
    return run.path, lines, code


@pytest.fixture(scope="module")
def watched_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, bool]], int]:
    """One short real run (with an injected out-of-memory back-off) watched live from its start."""
    tmp_path = tmp_path_factory.mktemp("watched")
    return start_and_watch(tmp_path, env={"VOXTOP_INJECT_OOM_ABOVE": "3"}, **SHORT)


# --- watch ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_watch_follows_a_live_run_as_it_trains_and_exits_0(watched_run) -> None:
    run, lines, code = watched_run
    texts = [text for text, _ in lines]
    assert code == 0, "\n".join(texts)
    progress = [(text, at_end) for text, at_end in lines if text.startswith("epoch ")]
    assert [text.split(" step ")[1].split()[0] for text, _ in progress] == ["1/3", "2/3", "3/3"]
    assert not progress[0][1], "progress lines arrived only after the run had ended"
    assert "[event warn oom_backoff] out of memory at batch 4 → 3" in texts
    assert not any(text.startswith("warn: out of memory") for text in texts), "event printed twice"
    assert "run finished at step 3" in texts
    assert texts[-1].startswith(f"voxtop: run {run.name} finished: step 3/3, train loss")


@pytest.mark.slow
def test_watch_on_a_finished_run_prints_its_tail_and_summary_at_once(watched_run) -> None:
    run, lines, _ = watched_run
    started = time.monotonic()
    result = voxtop("watch", run.name, "--lines", "2", runs=run.parent)
    assert time.monotonic() - started < 20
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert len(out) == 3 and out[1] == "run finished at step 3" and "finished: step 3/3" in out[2]
    assert out[0] == [text for text, _ in lines][-3]

    full = voxtop("watch", str(run), "--from-start", runs=run.parent / "elsewhere")
    assert full.returncode == 0
    assert full.stdout.splitlines() == [text for text, _ in lines]


@pytest.mark.slow
def test_watch_a_run_that_fails_exits_1_with_its_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"PK\x03\x04 not a checkpoint")  # a zip's first bytes: past the check made before the run
    run, lines, code = start_and_watch(tmp_path, train={"pretrained": str(junk)})
    texts = [text for text, _ in lines]
    assert code == 1, "\n".join(texts)
    assert any(text.startswith("Traceback") for text in texts)
    assert any(text.startswith("[event error crash] ") and "junk.pt" in text for text in texts)
    assert texts[-1].startswith(f"voxtop: run {run.name} failed: step 0/") and "PretrainedError" in texts[-1]


def test_watch_prints_what_a_trainer_writes_as_it_writes_it(tmp_path: Path) -> None:
    """This test plays the trainer (it holds the run's lock), so each step is checked in order."""
    import queue
    import socket

    from trainer import config as cfg
    from trainer.launch import prepare_run
    from trainer.rundir import MetricsWriter

    run = prepare_run(tmp_path / "runs", cfg.load(tiny_config(tmp_path)), "played")
    run.acquire_lock()
    run.write_status(state="running", pid=os.getpid(), host=socket.gethostname(), step=6, total_steps=10)
    metrics = MetricsWriter(run.metrics_path)
    metrics.write("start", 0, resumed_from=None)
    metrics.write("end", 6, reason="stopped")  # an earlier session, then a resume: not the end
    metrics.write("start", 6, resumed_from=6)
    log = open(run.log_path, "a", encoding="utf-8")

    def say(text: str) -> None:
        log.write(text)
        log.flush()

    say("".join(f"old line {i}\n" for i in range(20)))
    watch = subprocess.Popen([*VOXTOP, "watch", str(run.path), "--lines", "2", "--interval", "0.1"], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    arrived: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [arrived.put(line.rstrip("\n")) for line in watch.stdout], daemon=True).start()
    next_line = lambda: arrived.get(timeout=30)  # noqa: E731
    try:
        assert [next_line(), next_line()] == ["old line 18", "old line 19"]
        say("epoch 1/100 step 7/10 loss 2.0000\n")
        assert next_line() == "epoch 1/100 step 7/10 loss 2.0000"
        metrics.write("event", 7, level="warn", code="oom_backoff", message="out of memory at batch 4 → 3")
        say("warn: out of memory at batch 4 → 3\n")
        assert next_line() == "[event warn oom_backoff] out of memory at batch 4 → 3"
        say("epoch 1/100 step 8/10 lo")
        time.sleep(0.5)
        assert arrived.empty(), "a partial line was printed"
        say("ss 1.5000\n")
        assert next_line() == "epoch 1/100 step 8/10 loss 1.5000"
        metrics.write("train", 8, loss=1.5)
        metrics.write("end", 10, reason="finished")
        say("run finished at step 10\n")
        run.write_status(state="finished", step=10)
    finally:
        run.release_lock()
    assert watch.wait(timeout=30) == 0
    assert next_line() == "run finished at step 10"
    assert next_line() == f"voxtop: run {run.name} finished: step 10/10, train loss 1.5000"
    assert arrived.empty()


def test_watch_attaches_to_a_long_finished_run_from_its_tail(tmp_path: Path) -> None:
    from trainer import config as cfg
    from trainer.launch import prepare_run

    run = prepare_run(tmp_path / "runs", cfg.load(tiny_config(tmp_path)), "long")
    with open(run.metrics_path, "w") as handle:  # ~3 MB: far more than the tail that is read
        handle.write(json.dumps({"t": 1, "kind": "start", "step": 0}) + "\n")
        handle.write(json.dumps({"t": 1, "kind": "val", "step": 10, "loss": 9.5}) + "\n")
        for step in range(1, 40_001):
            handle.write(json.dumps({"t": 1, "kind": "train", "step": step, "loss": 1 + 1 / step}) + "\n")
        handle.write(json.dumps({"t": 1, "kind": "end", "step": 40_000, "reason": "early_stop"}) + "\n")
    run.log_path.write_text("run early_stop at step 40000\n")
    run.write_status(state="finished", step=40_000, total_steps=50_000)
    result = voxtop("watch", str(run.path), runs=tmp_path, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "run early_stop at step 40000",
        f"voxtop: run {run.name} early_stop: step 40000/50000, train loss 1.0000, val loss 9.5000"]  # as `voxtop runs`


def test_watch_a_killed_trainer_exits_1_as_stale(tmp_path: Path) -> None:
    from trainer import config as cfg
    from trainer.launch import prepare_run

    run = prepare_run(tmp_path / "runs", cfg.load(tiny_config(tmp_path)), "killed")
    dead = subprocess.Popen(["true"])
    dead.wait()
    run.log_path.write_text("epoch 1/100 step 1/6 loss 9.0\n")
    run.write_status(state="running", pid=dead.pid, step=1, total_steps=6)  # and no trainer holds the lock
    result = voxtop("watch", str(run.path), runs=tmp_path, timeout=30)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "epoch 1/100 step 1/6 loss 9.0",
        f"voxtop: run {run.name} stale: step 1/6, the trainer is gone without saying why (killed?)"]


def test_headless_modules_keep_torch_out() -> None:
    code = ("import sys, tui.cli, tui.watch, tui.scripts; tui.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchaudio')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr


def test_watch_usage_and_missing_runs(tmp_path: Path) -> None:
    missing = voxtop("watch", "nope", runs=tmp_path)
    assert missing.returncode == 1 and "nope is not a voxtop run" in missing.stderr
    assert voxtop("watch", "nope", "--interval", "0", runs=tmp_path).returncode == 2


def test_log_follower_reads_only_new_complete_lines(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_bytes(b"".join(f"old line {i}\n".encode() for i in range(100)))
    follower = LogFollower(log)
    assert follower.start_at_tail(2) == ["old line 98", "old line 99"]
    assert follower.offset == log.stat().st_size and follower.read_new() == []
    with open(log, "ab") as handle:
        handle.write("step 1 → ok\r\nstep 2 par".encode())
    assert follower.read_new() == ["step 1 → ok"]
    with open(log, "ab") as handle:
        handle.write(b"tial\n")
    assert follower.read_new() == ["step 2 partial"]
    log.write_bytes(b"replaced\n")  # a shorter file: read again from its start
    assert follower.read_new() == ["replaced"]


# --- script and prepare --------------------------------------------------------------------


def fake_voxtop(tmp_path: Path) -> dict[str, str]:
    """PATH with a `voxtop` that records its working folder and arguments as JSON."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    fake = bin_dir / "voxtop"
    fake.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                    f"json.dump({{'cwd': os.getcwd(), 'argv': sys.argv[1:]}}, "
                    f"open({str(tmp_path / 'called.json')!r}, 'w'))\n")
    fake.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_bash_script_passes_every_value_through_quoting(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    hostile = "data.alignment_text=it's \"$(touch pwned)\" `x`; rm -rf / \n$HOME"
    script = tmp_path / "train me.sh"
    result = voxtop("script", str(config), "--format", "bash", "--venv", "none", "--gpus-per-node", "2",
                    "--set", hostile, "--name", "my-voice", "--out", str(script), runs=tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    assert os.access(script, os.X_OK)
    called = subprocess.run(["bash", str(script)], cwd="/", env=fake_voxtop(tmp_path), capture_output=True,
                            text=True, timeout=30)
    assert called.returncode == 0, called.stderr
    recorded = json.loads((tmp_path / "called.json").read_text())
    assert recorded["cwd"] == str(ROOT)
    assert recorded["argv"] == ["--runs", str(tmp_path / "runs"), "train", str(config), "--name", "my-voice",
                                "--set", hostile, "--set", "device.nproc=2"]
    assert not (Path("/") / "pwned").exists() and not (ROOT / "pwned").exists()


def test_relative_bash_script_works_from_a_copied_project(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    config = tiny_config(project)
    result = subprocess.run([*VOXTOP, "--runs", "runs", "script", "tiny.toml", "--format", "bash",
                             "--paths", "relative", "--venv", "none", "--out", "scripts/go.sh"],
                            cwd=project, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    text = (project / "scripts" / "go.sh").read_text()
    assert str(project) not in text
    moved = tmp_path / "moved"
    project.rename(moved)
    called = subprocess.run(["bash", "moved/scripts/go.sh"], cwd=tmp_path, env=fake_voxtop(tmp_path),
                            capture_output=True, text=True, timeout=30)
    assert called.returncode == 0, called.stderr
    recorded = json.loads((tmp_path / "called.json").read_text())
    assert recorded["cwd"] == str(moved) and recorded["argv"] == ["--runs", "runs", "train", config.name]


def sbatch_options(text: str) -> dict[str, str]:
    return dict(line.removeprefix("#SBATCH --").split("=", 1) for line in text.splitlines()
                if line.startswith("#SBATCH"))


def test_slurm_script_for_several_nodes_uses_srun_torchrun_with_c10d(tmp_path: Path) -> None:
    result = voxtop("script", str(tiny_config(tmp_path)), "--format", "slurm", "--nodes", "4",
                    "--gpus-per-node", "8", "--time", "2-00:00:00", "--partition", "gpu", "--name", "big",
                    runs=tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    assert sbatch_options(result.stdout) == {
        "job-name": "voxtop-big", "nodes": "4", "ntasks-per-node": "1", "gpus-per-node": "8",
        "cpus-per-task": "32", "time": "2-00:00:00", "partition": "gpu", "output": "slurm-%x-%j.out",
        "chdir": str(ROOT)}
    flat = " ".join(result.stdout.split())
    assert 'head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)' in flat
    assert ('srun --kill-on-bad-exit=1 torchrun --nnodes "$SLURM_NNODES" --nproc-per-node 8 --rdzv-backend c10d '
            '--rdzv-endpoint "$head_node:$port" --rdzv-id "$SLURM_JOB_ID" -m trainer "$run_dir"') in flat
    assert "prepare \"$config\" --name big --set device.nproc=8)" in flat
    assert subprocess.run(["bash", "-n"], input=result.stdout, text=True).returncode == 0


def test_slurm_script_for_one_cpu_node_has_no_gpu_line(tmp_path: Path) -> None:
    result = voxtop("script", str(tiny_config(tmp_path)), "--format", "slurm", "--gpus-per-node", "0",
                    runs=tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    options = sbatch_options(result.stdout)
    assert "gpus-per-node" not in options and options["cpus-per-task"] == "4" and "time" not in options
    assert 'launch=(srun --kill-on-bad-exit=1 python3 -m trainer "$run_dir")' in result.stdout
    assert "torchrun" not in result.stdout and "device.nproc" not in result.stdout


def test_script_refuses_bad_input_naming_it(tmp_path: Path) -> None:
    config = tiny_config(tmp_path)
    bad_key = voxtop("script", str(config), "--format", "bash", "--set", "train.bogus=1", runs=tmp_path)
    assert bad_key.returncode == 1 and "train.bogus: unknown key" in bad_key.stderr
    assert voxtop("script", str(config), "--format", "bash", "--nodes", "2", runs=tmp_path).returncode == 2
    assert voxtop("script", str(config), "--format", "slurm", "--partition", "a b", runs=tmp_path).returncode == 2
    spaced = tmp_path / "my runs"
    unsafe = subprocess.run([*VOXTOP, "--runs", str(spaced), "script", str(config), "--format", "slurm"],
                            cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert unsafe.returncode == 0, unsafe.stderr  # a runs folder with a space is fine: it is quoted
    assert f"--runs {shlex.quote(str(spaced))} prepare" in unsafe.stdout
    folder = tmp_path / "a project"
    folder.mkdir()
    chdir = subprocess.run([*VOXTOP, "script", str(config), "--format", "slurm"], cwd=folder,
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert chdir.returncode == 1 and "#SBATCH" in chdir.stderr and "--paths relative" in chdir.stderr


def test_prepare_makes_one_run_directory_and_prints_it(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    result = voxtop("prepare", str(tiny_config(tmp_path)), "--name", "prep", "--set", "train.max_steps=2",
                    runs=runs)
    assert result.returncode == 0, result.stderr
    run = RunDir(Path(result.stdout.strip()))
    assert run.path == only_run(runs) and run.name.startswith("prep_")
    assert run.read_status()["state"] == "starting" and "max_steps = 2" in run.config_path.read_text()
    refused = voxtop("prepare", str(tiny_config(tmp_path)), "--set", "train.epochs=-1", runs=tmp_path / "none")
    assert refused.returncode == 1 and "train.epochs" in refused.stderr and not (tmp_path / "none").exists()


# --- export --------------------------------------------------------------------------------


@pytest.mark.slow
def test_export_loads_weights_only_into_torchaudio_tacotron2_and_speaks(watched_run, tmp_path: Path) -> None:
    import torch

    from trainer import config as cfg
    from trainer.models.tacotron2 import build_model, read_pretrained
    from trainer.text import get_language

    run, _, _ = watched_run
    out = tmp_path / "voice"
    result = voxtop("export", run.name, str(out), runs=run.parent)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["README.txt", "alphabet.txt", "config.toml", "model.pt"]
    exported = torch.load(out / "model.pt", weights_only=True)
    # the checkpoint `voxtop checkpoints` recommends (one rule: trainer.overtrain.recommend)
    listing = json.loads(voxtop("checkpoints", run.name, "--json", runs=run.parent).stdout)
    recommended = [row["step"] for row in listing if "recommended" in row["tags"]]
    assert [exported["step"]] == recommended and "recommended" in result.stdout
    config = cfg.load(out / "config.toml")
    language = get_language(config.data.language)
    assert exported["symbols"] == language.symbols and exported["language"] == "en"
    alphabet = [line.split("\t")[1] for line in (out / "alphabet.txt").read_text().splitlines()
                if not line.startswith("#")]
    assert alphabet == exported["symbols"]
    model = build_model(config, len(exported["symbols"]))
    model.load_state_dict(exported["model"], strict=True)
    model.eval()
    with torch.no_grad():
        mel, lengths, alignments = model.infer(torch.tensor([language.to_ids("Hello.")]))
    assert mel.shape[1] == exported["n_mels"] == config.data.n_mels and int(lengths[0]) > 0
    state, symbols = read_pretrained(out / "model.pt")  # usable as train.pretrained, as README.txt says
    assert symbols == exported["symbols"] and state.keys() == exported["model"].keys()


@pytest.mark.slow
def test_export_readme_code_runs_as_written(watched_run, tmp_path: Path) -> None:
    run, _, _ = watched_run
    assert voxtop("export", str(run), str(tmp_path / "voice"), "--checkpoint",
                  "checkpoints/step-00000002.pt", runs=tmp_path).returncode == 0
    readme = (tmp_path / "voice" / "README.txt").read_text()
    code = readme[readme.index("import soundfile"):]
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    import soundfile

    info = soundfile.info(str(tmp_path / "speech.wav"))
    assert info.samplerate == 22050 and info.frames > 0
    import torch

    assert torch.load(tmp_path / "voice" / "model.pt", weights_only=True)["step"] == 2


def test_export_refuses_to_overwrite_and_names_missing_checkpoints(tmp_path: Path) -> None:
    from trainer import config as cfg
    from trainer.launch import prepare_run

    run = prepare_run(tmp_path / "runs", cfg.load(tiny_config(tmp_path)), "empty")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    taken = voxtop("export", str(run.path), str(out), runs=tmp_path)
    assert taken.returncode == 1 and "not empty" in taken.stderr and (out / "keep.txt").read_text() == "mine"
    none_yet = voxtop("export", str(run.path), str(tmp_path / "new"), runs=tmp_path)
    assert none_yet.returncode == 1 and "no checkpoints yet" in none_yet.stderr
    missing = voxtop("export", str(run.path), str(tmp_path / "new"), "--checkpoint", "step-9.pt", runs=tmp_path)
    assert missing.returncode == 1 and "step-9.pt does not exist" in missing.stderr
    assert not (tmp_path / "new").exists()
