"""Other trainers' run folders (tests/foreign/make_runs.py) read as runs: layouts, checkpoints, verdict,
minima, the recommended checkpoint, following a growing run, restarts, pictures."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from trainer.foreign.sources import ForeignRun, analyse_series, open_foreign
from trainer.rundir import RunError
from trainer.rundir.source import list_sources, open_run

sys.path.insert(0, str(Path(__file__).parent / "foreign"))
import make_runs  # noqa: E402

pytest.importorskip("torch", reason="the fixtures are written with torch's SummaryWriter")
SAVED = list(range(make_runs.CHECKPOINT_EVERY, make_runs.LAST_STEP + 1, make_runs.CHECKPOINT_EVERY))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_runs.write_all(tmp_path_factory.mktemp("foreign"))


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("name, kind, verdict_tag, minima_tag", [
    ("rvc", "rvc", "loss/g/total", "loss/g/mel"),
    ("coqui", "coqui", "EvalStats/avg_loss", "EvalStats/avg_loss"),
    ("piper", "lightning", "val_loss", "val_loss"),
    ("piper_csv", "lightning", "val_loss", "val_loss"),
    ("dllogger", "dllogger", "val_loss", "val_loss"),
    ("tensorboard", "tensorboard", "val_loss", "val_loss"),
])
def test_each_layout_is_recognised_and_judged(runs: dict[str, Path], name: str, kind: str, verdict_tag: str,
                                              minima_tag: str) -> None:
    run = open_foreign(runs[name])
    assert run.layout.kind == kind
    analysis = run.analysis()
    assert (analysis.verdict_tag, analysis.minima_tag) == (verdict_tag, minima_tag)
    assert analysis.verdict is not None and analysis.verdict.verdict == "overtraining"
    assert make_runs.PLATEAU[0] <= analysis.verdict.onset_step <= 4800
    minima = [m.step for m in analysis.minima]
    assert len(minima) == 2, analysis.minima
    assert abs(minima[0] - make_runs.FIRST_MINIMUM) <= 100 and abs(minima[1] - make_runs.BEST_MINIMUM) <= 150
    summary = run.summary()
    assert summary.step == make_runs.LAST_STEP and summary.train_loss is not None


@pytest.mark.parametrize("name, steps, recommended", [
    ("rvc", SAVED, 3600),
    ("coqui", sorted({*SAVED, make_runs.BEST_MINIMUM}), make_runs.BEST_MINIMUM),  # best_model.pth: step from metadata
    ("piper", SAVED, 3600),  # last.ckpt: global_step 6000 from metadata, beside epoch=19-step=6000.ckpt
    ("dllogger", SAVED, 3600),  # checkpoint_Tacotron2_<epoch>.pt: iteration from metadata
])
def test_checkpoints_steps_and_recommendation(runs: dict[str, Path], name: str, steps: list[int],
                                              recommended: int) -> None:
    run = open_foreign(runs[name])
    assert [c.step for c in run.checkpoints()] == steps
    table = run.checkpoint_table()
    assert table.recommended == recommended
    assert [row.step for row in table.rows] == sorted(steps, reverse=True)
    tagged = {row.step: row.tags for row in table.rows if row.tags}
    assert tagged[recommended][0] == "recommended" and "minimum" in tagged[recommended]
    assert "minimum" in tagged[make_runs.FIRST_MINIMUM]
    assert all(row.val_loss is not None for row in table.rows)


def test_rvc_lists_the_small_weights_file_of_a_step(runs: dict[str, Path]) -> None:
    names = {c.step: c.path.name for c in open_foreign(runs["rvc"]).checkpoints()}
    assert names[3600] == "myvoice_12e_3600s.pth"


def test_recommended_moves_to_the_best_minimum_still_on_disk(runs: dict[str, Path], tmp_path: Path) -> None:
    folder = shutil.copytree(runs["rvc"], tmp_path / "logs" / "myvoice")
    run = open_foreign(folder)
    assert run.checkpoint_table().recommended == 3600
    for name in ("G_3600.pth", "D_3600.pth", "myvoice_12e_3600s.pth"):
        (folder / name).unlink()
    table = run.checkpoint_table()
    assert table.recommended == make_runs.FIRST_MINIMUM  # not 3000 or 4200, which were saved at no minimum
    assert "1800" in table.recommended_reason


def test_verdict_improves_plateaus_then_overtrains_at_known_steps() -> None:
    steps = np.arange(100, make_runs.LAST_STEP + 1, 100)
    values = make_runs.curve(steps, 1.0, seed=2)

    def verdict_until(step: int) -> str:
        keep = steps <= step
        found = analyse_series(steps[keep], values[keep], steps[keep], values[keep], SAVED, 0.6, 0.6)[0]
        return found.verdict

    assert verdict_until(make_runs.FIRST_MINIMUM) == "improving"
    assert verdict_until(4600) == "plateau"  # no new minimum since 3400, the rise not yet sure
    assert verdict_until(make_runs.LAST_STEP) == "overtraining"


def test_following_a_growing_event_file(runs: dict[str, Path], tmp_path: Path) -> None:
    """Bytes of a Coqui run's event file arrive in three parts, the second cut inside a record."""
    source = next(runs["coqui"].glob("events.out.tfevents.*"))
    data = source.read_bytes()
    folder = tmp_path / "coqui_live"
    folder.mkdir()
    for name in ("config.json", "trainer_0_log.txt"):
        shutil.copy(runs["coqui"] / name, folder / name)
    target = folder / source.name
    reader = open_foreign(folder).metrics_reader()
    seen: list[dict] = []
    for end in (len(data) // 3, 2 * len(data) // 3 + 5, len(data)):
        target.write_bytes(data[:end])
        seen.extend(reader.read_new())
    val_steps = [r["step"] for r in seen if r["kind"] == "val"]
    assert val_steps == list(range(100, make_runs.LAST_STEP + 1, 100))
    assert sum(r["kind"] == "train" for r in seen) == make_runs.LAST_STEP // 25
    assert reader.malformed == 0
    columns = open_foreign(folder).metrics_reader().read_new_columns({"val": ("step", "loss")}, tail=2)
    assert columns.columns["val"]["step"].tolist() == val_steps
    assert [r["step"] for r in columns.tails["val"]] == val_steps[-2:]


def test_a_restart_supersedes_what_it_logs_again(runs: dict[str, Path]) -> None:
    run = open_foreign(runs["tensorboard"])
    records = run.metrics_reader().read_new()
    starts = [r for r in records if r["kind"] == "start"]
    assert [r["step"] for r in starts] == [3100] and starts[0]["resumed_from"] == 3000
    steps, _, values = run.history().series["val_loss"].view()
    assert steps.tolist() == list(range(100, make_runs.LAST_STEP + 1, 100))
    assert values.max() < 2.5  # the first session's 5.0 past step 3000 is gone


def test_pictures_and_clips_of_event_files(runs: dict[str, Path], cache_home: Path) -> None:
    run = open_foreign(runs["rvc"])
    pictures = [r for r in run.metrics_reader().read_new() if r["kind"] == "alignment"]
    assert [r["step"] for r in pictures] == SAVED
    newest = pictures[-1]
    assert "slice/mel_gen" in newest["mel"] and "eval/gen/audio" in newest["wav"]
    path = run.picture_path(newest, "mel")
    assert path is not None and cache_home in path.parents
    matrix = np.load(path, allow_pickle=False)
    assert matrix.shape == (40, 64) and 0 <= matrix.min() < matrix.max() <= 1
    wav = run.picture_path(newest, "wav")
    assert wav is not None and wav.read_bytes().startswith(b"RIFF")
    assert not any(p.suffix == ".npy" for p in runs["rvc"].rglob("*"))  # nothing written into the trainer's folder


def test_open_run_and_list_sources_know_foreign_folders(runs: dict[str, Path], tmp_path: Path) -> None:
    root = runs["rvc"].parent.parent  # the fixtures' folder: logs/, coqui/, piper/, ...
    assert isinstance(open_run(tmp_path, str(runs["coqui"])), ForeignRun)
    assert isinstance(open_run(tmp_path, str(runs["piper"].parent.parent)), ForeignRun)  # the newest version
    with pytest.raises(RunError):
        open_run(tmp_path, str(tmp_path))
    names = {source.name for source in list_sources(root / "coqui")}
    assert names == {runs["coqui"].name}
    assert {s.name for s in list_sources(root / "logs")} == {"myvoice"}


def test_every_tag_is_a_metric_of_its_kind(runs: dict[str, Path]) -> None:
    """The charts' metric picker lists `train/<tag>` and `val/<tag>`; each reads that tag's own points."""
    reader = open_foreign(runs["rvc"]).metrics_reader()
    new = reader.read_new_columns({"train": ("step", "loss", "loss/g/kl"), "val": ("step", "loss")}, tail=1)
    train, val = new.columns["train"], new.columns["val"]
    steps = list(range(50, make_runs.LAST_STEP + 1, 50))
    assert train["step"].tolist() == steps and val["step"].tolist() == steps
    kl = 1.5 + 0.3 * np.exp(-np.array(steps) / 3000.0)
    assert np.allclose(train["loss/g/kl"], kl.astype(np.float32))  # the tag's own values, not the loss's
    assert np.allclose(val["loss"], make_runs.curve(np.array(steps), 20.0, seed=1).astype(np.float32))
    [newest] = new.tails["train"]
    assert {"loss/g/fm", "loss/d/total", "learning_rate", "grad_norm_g"} <= set(newest)
    assert newest["tag"] == "loss/g/total"
    assert new.lines == len(steps) * 2 + len(SAVED)  # rows of both kinds and one alignment record per picture step


def test_a_checkpoints_picture_and_the_follower_hooks(runs: dict[str, Path]) -> None:
    run = open_foreign(runs["coqui"])
    assert run.log_path == runs["coqui"] / "trainer_0_log.txt"
    assert run.checkpoints_dir == runs["coqui"]
    path = run.picture_for_step(3500, "alignment")  # the figure logged at step 3000, the newest before it
    assert path is not None and "3000" in path.name and "EvalFigures_alignment" in str(path)
    assert np.load(path, allow_pickle=False).shape == (64, 40)  # the Monitor shows an alignment transposed
    assert open_foreign(runs["rvc"]).detector_config().smoothing == 0.987
