"""DC-TTS on the tiny preset: each network trains on the demo and resumes bit for bit, the attention at
inference never moves back, and a pair of runs speaks a sentence into a wav."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from conftest import ROOT, tiny_config
from trainer import config as cfg
from trainer.rundir import RunDir, read_metrics
from trainer.text import get_language

pytestmark = pytest.mark.slow


def dctts_config(tmp_path: Path, network: str, **train: object) -> cfg.Config:
    return cfg.load(tiny_config(tmp_path, model={"preset": "tiny", "name": "dctts", "network": network},
                                train={"max_decoder_steps": 40, **train}))


def train(run: RunDir, config: cfg.Config, resume_from: Path | None = None) -> str:
    from trainer.loop import Trainer

    trainer = Trainer(run, config, resume_from=resume_from, log=lambda message: None)
    trainer.setup()
    try:
        return trainer.fit()
    finally:
        if trainer.metrics is not None:
            trainer.metrics.close()


def train_losses(run: RunDir) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run.metrics_path) if r["kind"] == "train"}


@pytest.mark.parametrize("network", ["text2mel", "ssrn"])
def test_each_network_learns_and_resumes_bit_for_bit(tmp_path: Path, network: str) -> None:
    from trainer.launch import prepare_run

    straight_config = dctts_config(tmp_path, network, max_steps=6)
    straight = prepare_run(tmp_path / "a", straight_config)
    assert train(straight, straight_config) == "finished"
    reference = train_losses(straight)
    assert sorted(reference) == list(range(1, 7))
    assert reference[6] < reference[1]  # it learns

    halted = prepare_run(tmp_path / "b", dctts_config(tmp_path, network, max_steps=3))
    train(halted, dctts_config(tmp_path, network, max_steps=3))
    assert [c.step for c in halted.checkpoints()] == [3]
    train(halted, straight_config, resume_from=halted.checkpoint_path(3))
    assert train_losses(halted) == reference  # same batches (and SSRN crops), dropout and Adam state

    records = read_metrics(straight.metrics_path)
    first = next(r for r in records if r["kind"] == "train")
    if network == "text2mel":
        for key in ("loss_mel", "loss_bd", "loss_guided", "attention_score", "attention_diagonality"):
            assert first[key] is not None, key
        alignment = next(r for r in records if r["kind"] == "alignment")
        assert np.load(straight.path / alignment["path"]).shape[1] == len(get_language("en").to_ids("Hello there."))
    else:
        assert first["loss_linear"] > 0 and first["loss_bd"] > 0 and "attention_score" not in first
    audio, rate = soundfile.read(straight.sample_path(6))
    assert rate == 22050 and len(audio) > 1000 and np.abs(audio).max() > 0.1


def test_forced_attention_never_moves_back_nor_jumps_far() -> None:
    from trainer.models.dctts.infer import MAX_JUMP, force_incremental, incremental_decode
    from trainer.models.dctts.modules import PRESETS, Text2Mel

    row = torch.tensor([0.1, 0.7, 0.1, 0.1])
    kept, forced = force_incremental(row, previous=1)
    assert not forced and torch.equal(kept, row)
    back, forced = force_incremental(row, previous=2)  # the peak (1) lies behind: one-hot on 3
    assert forced and int(back.argmax()) == 3 and float(back.sum()) == 1.0
    far, forced = force_incremental(torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 1.0]), previous=0)
    assert forced and int(far.argmax()) == 1

    torch.manual_seed(0)  # an untrained Text2Mel attends anywhere: forcing keeps it in line
    model = Text2Mel(40, 80, PRESETS["tiny"], 0.0).eval()
    tokens = torch.randint(1, 40, (30,)).tolist()
    with torch.no_grad():
        decoded = incremental_decode(model, tokens, torch.device("cpu"), 60, end_at=29, rest_steps=2)
    peaks = decoded.alignment.argmax(axis=1)
    moves = np.diff(peaks)
    assert (moves >= 0).all() and (moves <= MAX_JUMP).all()
    assert decoded.forced > 0 and decoded.coarse.shape == (80, len(peaks))


def test_a_pair_speaks_through_its_ssrn_and_exports_as_one_voice(tmp_path: Path) -> None:
    """Text2Mel's health renders through the newest SSRN checkpoint of its pair; the export speaks."""
    from trainer.export import export_run
    from trainer.health import evaluate

    runs = tmp_path / "runs"
    runs.mkdir()
    names = {"text2mel": "voice-text2mel", "ssrn": "voice-ssrn"}
    for network, other in (("text2mel", "ssrn"), ("ssrn", "text2mel")):
        config = cfg.load(tiny_config(tmp_path, model={"preset": "tiny", "name": "dctts", "network": network,
                                                         "pair": names[other]},
                                      train={"max_steps": 3, "max_decoder_steps": 40}))
        run = RunDir(runs / names[network])
        run.path.mkdir()
        run.config_path.write_text(cfg.dumps(config))
        run.make_folders()
        train(run, config)
    text2mel, ssrn = RunDir(runs / names["text2mel"]), RunDir(runs / names["ssrn"])
    assert [c.step for c in ssrn.checkpoints()] == [3]

    record = evaluate(text2mel, text2mel.checkpoint_path(3), frames_per_char=5.0, log=lambda m: None)
    assert record["vocoder"] == "SSRN of run voice-ssrn at step 3" and record["sentences"] == 12
    wav, rate = soundfile.read(text2mel.path / record["items"][0]["wav"])
    assert rate == 22050 and len(wav) > 0

    result = export_run(text2mel, tmp_path / "voice")
    exported = torch.load(str(result.out / "model.pt"), weights_only=True)
    assert exported["format"] == "voxtop-dctts"
    assert exported["text2mel"]["run"] == "voice-text2mel" and exported["ssrn"]["run"] == "voice-ssrn"
    out = tmp_path / "speech.wav"
    spoken = subprocess.run([sys.executable, "-m", "trainer.models.dctts.speak", str(result.out),
                             "The birch canoe slid on the smooth planks.", str(out)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert spoken.returncode == 0, spoken.stderr
    audio, rate = soundfile.read(out)
    assert rate == 22050 and len(audio) > 2048 and np.abs(audio).max() > 0.1


def test_voxtop_train_of_a_dctts_config_starts_the_pair(tmp_path: Path) -> None:
    """Two trainers, two run folders that name each other; `prepare` makes the pair too."""
    from conftest import voxtop

    runs = tmp_path / "runs"
    config = tiny_config(tmp_path, model={"preset": "tiny", "name": "dctts"},
                         train={"max_steps": 2, "max_decoder_steps": 20}, checkpoint={"every_steps": 100})
    result = voxtop("train", str(config), "--name", "voice", runs=runs)
    assert result.returncode == 0, result.stdout + result.stderr
    folders = sorted(p.name for p in runs.iterdir())
    assert [name.split("_")[0] for name in folders] == ["voice-ssrn", "voice-text2mel"]
    for folder in folders:
        run = RunDir(runs / folder)
        config_of_run = cfg.load(run.config_path, run_config=True)
        other = next(f for f in folders if f != folder)
        assert config_of_run.model.network == folder.split("_")[0].split("-")[1]
        assert config_of_run.model.pair == other
        assert run.read_status()["state"] == "finished" and [c.step for c in run.checkpoints()] == [2]
        assert "run finished at step 2" in run.log_path.read_text()
    assert "[text2mel] " in result.stdout and "[ssrn] " in result.stdout

    prepared = voxtop("prepare", str(config), "--name", "later", runs=runs)
    assert prepared.returncode == 0 and len(prepared.stdout.split()) == 2


def test_frame_by_frame_inference_is_the_network_itself() -> None:
    """The streamed rendering equals a whole-sequence forward over its own frames and attention."""
    import torch.nn.functional as F

    from trainer.models.dctts.infer import incremental_decode
    from trainer.models.dctts.modules import PRESETS, Text2Mel

    torch.manual_seed(1)
    model = Text2Mel(40, 80, PRESETS["tiny"], 0.0).eval()
    tokens = torch.randint(1, 40, (25,)).tolist()
    with torch.no_grad():
        decoded = incremental_decode(model, tokens, torch.device("cpu"), 50, end_at=24, rest_steps=2)
        frames = torch.from_numpy(decoded.coarse)[None]
        keys, values = model.text_enc(torch.tensor([tokens]))
        queries = model.audio_enc(F.pad(frames[:, :, :-1], (1, 0)))
        logits = model.decode(values, queries, torch.from_numpy(decoded.alignment)[None])
    assert torch.allclose(torch.sigmoid(logits), frames, atol=1e-5)


def test_a_slurm_script_of_a_pair_is_refused_with_what_to_do(tmp_path: Path) -> None:
    from conftest import voxtop

    config = tiny_config(tmp_path, model={"preset": "tiny", "name": "dctts"})
    result = voxtop("script", str(config), "--format", "slurm", runs=tmp_path / "runs")
    assert result.returncode == 1 and "--set model.network=NAME" in result.stderr
    one = voxtop("script", str(config), "--format", "slurm", "--set", "model.network=ssrn", runs=tmp_path / "runs")
    assert one.returncode == 0, one.stderr


def test_linear_features_are_keyed_by_the_audio_and_never_trusted_blindly(tmp_path: Path) -> None:
    """SSRN's own cache proves itself like the mel cache: a re-recorded wav is computed again, a damaged
    file is recomputed, and a clip id from disk never names a file outside the dataset."""
    import shutil

    from trainer.dataset import Clip
    from trainer.features import ClipError
    from trainer.models.dctts.features import LinearCache

    dataset = tmp_path / "demo"
    shutil.copytree(ROOT / "datasets" / "demo", dataset, ignore=shutil.ignore_patterns(".voxtop"))
    data = cfg.load(tiny_config(tmp_path, data={"dataset": str(dataset)})).data
    cache = LinearCache(data)
    clip_id = sorted(p.stem for p in (dataset / "wavs").glob("*.wav"))[0]
    clip = Clip(id=clip_id, text="x", wav=f"wavs/{clip_id}.wav", line=1, duration_s=1.0)
    assert cache.build([clip]) == 1 and cache.build([clip]) == 0
    first, before = cache.path(clip), cache.load(clip)

    other = sorted(p for p in (dataset / "wavs").glob("*.wav"))[1]
    wav = dataset / clip.wav
    replacement = tmp_path / "replacement.wav"
    shutil.copy2(other, replacement)
    replacement.replace(wav)  # re-recorded: another file where the clip's wav was
    assert cache.path(clip) != first and cache.build([clip]) == 1
    assert cache.load(clip).shape != before.shape or not np.array_equal(cache.load(clip), before)

    np.save(cache.path(clip), np.full((3, 3), np.nan, dtype=np.float16))  # damaged on disk
    loaded = cache.load(clip)
    assert loaded.shape[0] == data.n_fft // 2 + 1 and np.isfinite(loaded).all()
    assert cache.usable(np.load(cache.path(clip)))  # written again, whole

    with pytest.raises(ClipError):
        cache.path(Clip(id="../escape", text="x", wav="wavs/../escape.wav", line=1, duration_s=1.0))
