"""Write run folders in the layouts of other trainers, with curves whose turns are at known steps.

    python tests/foreign/make_runs.py OUT     # rvc/, coqui/, piper/, piper_csv/, dllogger/, tensorboard/

The metrics go through the real writers (`torch.utils.tensorboard.SummaryWriter`, a DLLogger-format
JSON-lines file, a Lightning-format metrics.csv) under the real tag and file names of each tool.
The watched curve (`CURVE`) falls to a first minimum at step 1800, rises to a bump at 2400, falls to
its lowest point at step 3400 (a short plateau from 3000 to 3800) and then rises steadily (overfitting)
to the end at 6000. Checkpoints are saved every 600 steps, so the checkpoint nearest the best minimum
is step 3600 and the one at the first minimum step 1800.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

#: (step, value) knots of the watched curve, relative to its scale.
CURVE = [(0, 2.0), (1800, 1.0), (2400, 1.15), (3000, 0.9), (3400, 0.88), (3800, 0.9), (6000, 1.4)]
FIRST_MINIMUM, BEST_MINIMUM, PLATEAU = 1800, 3400, (3000, 3800)
LAST_STEP = 6000
CHECKPOINT_EVERY = 600
NOISE = 0.002  # relative noise of each logged value, seeded


def curve(steps: np.ndarray, scale: float = 1.0, seed: int = 0) -> np.ndarray:
    """The watched curve at `steps`, times `scale`, with a little seeded noise."""
    knots_x, knots_y = zip(*CURVE)
    clean = np.interp(steps, knots_x, knots_y) * scale
    rng = np.random.default_rng(seed)
    return clean * (1 + NOISE * rng.standard_normal(len(steps)))


def train_curve(steps: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """A train loss that keeps falling (what makes a rising validation loss overfitting)."""
    return scale * (0.4 + 1.6 * np.exp(-steps / 2500.0))


def _save(path: Path, payload: dict) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)


def _picture(step: int) -> np.ndarray:
    """A small HWC uint8 image that changes with the step (a stand-in mel spectrogram)."""
    rows = np.linspace(0, 1, 40)[:, None]
    cols = np.linspace(0, 1, 64)[None, :]
    gray = (255 * np.clip(np.sin(6 * rows + cols * (1 + step / 1000.0)) * 0.5 + 0.5, 0, 1)).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def write_rvc(out: Path, model: str = "myvoice", log_interval: int = 50, steps_per_epoch: int = 300,
              until: int = LAST_STEP) -> Path:
    """Applio/RVC `logs/<model>/`: G_/D_ checkpoints, small weights files, config.json, eval/."""
    import torch
    from torch.utils.tensorboard import SummaryWriter

    folder = out / "logs" / model
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"train": {"log_interval": log_interval, "epochs": 20},
                                                    "data": {"sampling_rate": 40000}}))
    writer = SummaryWriter(log_dir=str(folder))
    evals = SummaryWriter(log_dir=str(folder / "eval"))
    steps = np.arange(log_interval, until + 1, log_interval)
    mel = curve(steps, 20.0, seed=1)
    kl = 1.5 + 0.3 * np.exp(-steps / 3000.0)
    fm = 8.0 + 0.5 * np.exp(-steps / 3000.0)
    for k, step in enumerate(steps.tolist()):
        total = mel[k] + kl[k] + fm[k] + 2.5
        for tag, value in (("loss/g/total", total), ("loss/g/mel", mel[k]), ("loss/g/kl", kl[k]),
                           ("loss/g/fm", fm[k]), ("loss/d/total", 2.6), ("learning_rate", 1e-4),
                           ("grad_norm_g", 30.0), ("grad_norm_d", 5.0)):
            writer.add_scalar(tag, float(value), step)
        if step % CHECKPOINT_EVERY == 0:
            for tag in ("slice/mel_org", "slice/mel_gen", "all/mel"):
                writer.add_image(tag, _picture(step), step, dataformats="HWC")
            evals.add_audio("gen/audio", torch.zeros(1, 800), step, sample_rate=16000)
            epoch = step // steps_per_epoch
            _save(folder / f"G_{step}.pth", {"model": {"w": torch.zeros(2)}, "iteration": epoch,
                                             "learning_rate": 1e-4})
            _save(folder / f"D_{step}.pth", {"model": {"w": torch.zeros(2)}, "iteration": epoch})
            _save(folder / f"{model}_{epoch}e_{step}s.pth", {"weight": {"w": torch.zeros(2)}, "info": f"{epoch}epoch",
                                                          "sr": "40k", "f0": 1, "version": "v2", "epoch": epoch,
                                                          "step": step})
    writer.close()
    evals.close()
    return folder


def write_coqui(out: Path, print_step: int = 25, eval_every: int = 100) -> Path:
    """A Coqui TTS run folder: TrainIterStats/EvalStats scalars, figures, audio, checkpoint_<step>.pth."""
    import torch
    from torch.utils.tensorboard import SummaryWriter

    folder = out / "coqui" / "ljspeech-December-03-2026_10+00AM-0000000"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model": "tacotron2", "print_step": print_step}))
    (folder / "trainer_0_log.txt").write_text(" > Training Environment:\n")
    writer = SummaryWriter(log_dir=str(folder))
    train_steps = np.arange(print_step, LAST_STEP + 1, print_step)
    for step, loss in zip(train_steps.tolist(), train_curve(train_steps).tolist()):
        writer.add_scalar("TrainIterStats/loss", loss, step)
        writer.add_scalar("TrainIterStats/current_lr", 1e-3, step)
    eval_steps = np.arange(eval_every, LAST_STEP + 1, eval_every)
    for step, loss in zip(eval_steps.tolist(), curve(eval_steps, 1.0, seed=2).tolist()):
        writer.add_scalar("EvalStats/avg_loss", loss, step, new_style=True)  # a scalar tensor
        writer.add_scalar("EvalStats/avg_decoder_loss", loss * 0.6, step)
        if step % CHECKPOINT_EVERY == 0:
            writer.add_image("EvalFigures/alignment", _picture(step), step, dataformats="HWC")
            writer.add_audio("EvalAudios/EvalAudio", torch.zeros(1, 400), step, sample_rate=22050)
            _save(folder / f"checkpoint_{step}.pth", {"model": {"w": torch.zeros(2)}, "optimizer": {},
                                                      "step": step, "epoch": step // 300,
                                                      "config": {"print_step": print_step}})
    _save(folder / "best_model.pth", {"model": {"w": torch.zeros(2)}, "optimizer": {"state": {0: {"step": 7}}},
                                      "step": BEST_MINIMUM, "epoch": 11})
    writer.close()
    return folder


def write_piper(out: Path) -> Path:
    """Piper (PyTorch Lightning) `lightning_logs/version_0/`: hparams.yaml, checkpoints/*.ckpt, events."""
    import torch
    from torch.utils.tensorboard import SummaryWriter

    folder = out / "piper" / "lightning_logs" / "version_0"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hparams.yaml").write_text("batch_size: 16\nsample_rate: 22050\n")
    writer = SummaryWriter(log_dir=str(folder))
    steps = np.arange(50, LAST_STEP + 1, 50)
    for step, loss in zip(steps.tolist(), train_curve(steps, 30.0).tolist()):
        writer.add_scalar("loss_gen_all", loss, step)
        writer.add_scalar("loss_disc_all", 2.5, step)
    val_steps = np.arange(100, LAST_STEP + 1, 100)
    for step, loss in zip(val_steps.tolist(), curve(val_steps, 25.0, seed=3).tolist()):
        writer.add_scalar("val_loss", loss, step)
        writer.add_scalar("epoch", step // 300, step)
        if step % CHECKPOINT_EVERY == 0:
            _save(folder / "checkpoints" / f"epoch={step // 300 - 1}-step={step}.ckpt",
                  {"epoch": step // 300 - 1, "global_step": step, "pytorch-lightning_version": "1.7.7",
                   "state_dict": {"w": torch.zeros(2)}})
    _save(folder / "checkpoints" / "last.ckpt", {"epoch": 19, "global_step": LAST_STEP,
                                                  "pytorch-lightning_version": "1.7.7", "state_dict": {}})
    writer.close()
    return folder


def write_piper_csv(out: Path) -> Path:
    """A Lightning run logged with CSVLogger: `metrics.csv` (step, epoch, one column per metric)."""
    folder = out / "piper_csv" / "lightning_logs" / "version_3"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hparams.yaml").write_text("batch_size: 16\n")
    val_steps = np.arange(100, LAST_STEP + 1, 100)
    lines = ["epoch,loss_gen_all,step,val_loss"]
    for step, loss in zip(val_steps.tolist(), curve(val_steps, 25.0, seed=4).tolist()):
        lines.append(f"{step // 300},{float(train_curve(np.array([step]), 30.0)[0])},{step},")
        lines.append(f"{step // 300},,{step},{loss}")
    (folder / "metrics.csv").write_text("\n".join(lines) + "\n")
    return folder


def write_dllogger(out: Path, iterations_per_epoch: int = 100) -> Path:
    """NVIDIA DeepLearningExamples (Tacotron2): `nvlog.json` DLLogger lines, checkpoint_Tacotron2_<epoch>.pt."""
    import torch

    folder = out / "dllogger"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ['DLLL {"timestamp": "1", "datetime": "2026-12-03", "elapsedtime": 0.0, "type": "PARAMETER", '
             '"data": {"model_name": "Tacotron2"}}']
    epochs = LAST_STEP // iterations_per_epoch
    val = curve(np.arange(1, epochs + 1) * iterations_per_epoch, 1.0, seed=5)
    iteration = 0
    for epoch in range(1, epochs + 1):
        for i in range(iterations_per_epoch):
            iteration += 1
            if i % 10 == 0:
                loss = float(train_curve(np.array([iteration]))[0])
                lines.append("DLLL " + json.dumps({"timestamp": str(iteration), "elapsedtime": float(iteration),
                                                   "type": "LOG", "step": [epoch, i],
                                                   "data": {"train_loss": loss}}))
            else:
                iteration_only = {"type": "LOG", "step": [epoch, i], "data": {"train_items_per_sec": 100.0}}
                lines.append("DLLL " + json.dumps(iteration_only))
        lines.append("DLLL " + json.dumps({"elapsedtime": float(iteration), "type": "LOG", "step": [epoch],
                                           "data": {"val_loss": float(val[epoch - 1])}}))
        if epoch * iterations_per_epoch % CHECKPOINT_EVERY == 0:
            _save(folder / f"checkpoint_Tacotron2_{epoch}.pt",
                  {"optimizer": {"state": {0: {"step": 99}}}, "epoch": epoch, "iteration": iteration,
                   "state_dict": {"w": torch.zeros(2)}})
    (folder / "nvlog.json").write_text("\n".join(lines) + "\n")
    return folder


def write_tensorboard(out: Path) -> Path:
    """A plain TensorBoard logdir written in two sessions: the second restarts from step 3000."""
    from torch.utils.tensorboard import SummaryWriter

    folder = out / "tensorboard" / "run1"
    steps = np.arange(100, LAST_STEP + 1, 100)
    values = curve(steps, 1.0, seed=6)
    first = SummaryWriter(log_dir=str(folder))
    for step, value in zip(steps.tolist(), values.tolist()):
        if step > 4000:
            break
        # past step 3000 the first session logged what the second one supersedes
        first.add_scalar("val_loss", value if step <= 3000 else 5.0, step)
        first.add_scalar("train_loss", float(train_curve(np.array([step]))[0]), step)
    first.close()
    time.sleep(1.1)  # event file names carry the writer's start second
    second = SummaryWriter(log_dir=str(folder))
    for step, value in zip(steps.tolist(), values.tolist()):
        if step <= 3000:
            continue
        second.add_scalar("val_loss", value, step)
        second.add_scalar("train_loss", float(train_curve(np.array([step]))[0]), step)
    second.close()
    return folder


def write_all(out: Path) -> dict[str, Path]:
    """Every layout under `out`; their folders by layout name."""
    out.mkdir(parents=True, exist_ok=True)
    return {"rvc": write_rvc(out), "coqui": write_coqui(out), "piper": write_piper(out),
            "piper_csv": write_piper_csv(out), "dllogger": write_dllogger(out), "tensorboard": write_tensorboard(out)}


if __name__ == "__main__":
    for name, path in write_all(Path(sys.argv[1] if len(sys.argv) > 1 else "foreign_runs")).items():
        print(f"{name:12} {path}")
