"""Reduce-LR-on-plateau and early stopping, driven by a scripted sequence of validation losses."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import only_run, tiny_config, voxtop
from trainer import config as cfg
from trainer.loop import Progress, Trainer
from trainer.rundir import RunDir, read_metrics


def scripted_trainer(tmp_path: Path, losses: list[float], **schedule) -> Trainer:
    config = cfg.from_dict({"schedule": schedule})
    run = RunDir(tmp_path / "run")
    run.make_folders()
    trainer = Trainer(run, config, log=lambda message: None)
    parameter = torch.nn.Parameter(torch.zeros(1))
    trainer.optimizer = torch.optim.Adam([parameter], lr=1e-3)
    trainer.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        trainer.optimizer, factor=config.schedule.plateau_factor, patience=config.schedule.plateau_patience - 1)
    trainer.progress = Progress()
    scripted = iter(losses)
    trainer.validate = lambda: {"loss": next(scripted), "attention_score": 0.5}
    return trainer


def events(trainer: Trainer) -> list[dict]:
    return [r for r in read_metrics(trainer.run.metrics_path) if r["kind"] == "event"]


def test_reduce_lr_on_plateau_leaves_an_event(tmp_path: Path) -> None:
    trainer = scripted_trainer(tmp_path, [1.0, 0.9, 0.95, 0.95, 0.95, 0.96], reduce_lr_on_plateau=True,
                               plateau_patience=2, plateau_factor=0.5)
    lrs = []
    for _ in range(6):
        trainer._validate_and_schedule()
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
    assert lrs == [1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4]
    reduced = [e for e in events(trainer) if e["code"] == "lr_reduced"]
    assert len(reduced) == 2 and "0.001 → 0.0005" in reduced[0]["message"]


def test_early_stop_after_patience_with_min_delta(tmp_path: Path) -> None:
    trainer = scripted_trainer(tmp_path, [1.0, 0.8, 0.79, 0.795, 0.78, 0.9], early_stop=True, es_patience=3,
                               es_min_delta=0.05)
    stops = [trainer._validate_and_schedule() for _ in range(5)]
    # 0.79, 0.795 and 0.78 are all within min_delta of the best (0.8): three bad evaluations.
    assert stops == [False, False, False, False, True]
    assert trainer.progress.best_val == 0.8
    assert [e["code"] for e in events(trainer)] == ["early_stop"]


def test_without_early_stop_it_never_stops(tmp_path: Path) -> None:
    trainer = scripted_trainer(tmp_path, [1.0] * 10, early_stop=False, es_patience=1)
    assert not any(trainer._validate_and_schedule() for _ in range(10))


@pytest.mark.slow
def test_early_stop_ends_a_real_run_after_saving(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    config = tiny_config(tmp_path, train={"max_steps": 20, "eval_every_steps": 1},
                         schedule={"early_stop": True, "es_patience": 2, "es_min_delta": 1000.0})
    result = voxtop("train", str(config), runs=runs)
    assert result.returncode == 0, result.stderr
    metrics = read_metrics(only_run(runs) / "metrics.jsonl")
    end = [r for r in metrics if r["kind"] == "end"][-1]
    assert end["reason"] == "early_stop" and end["step"] == 3
    assert [r for r in metrics if r["kind"] == "checkpoint"][-1]["step"] == 3
    assert any(r["kind"] == "event" and r["code"] == "early_stop" for r in metrics)


def test_overtraining_verdicts_become_events_and_can_stop_early(tmp_path: Path) -> None:
    from trainer.overtrain import Detector, DetectorConfig

    # val loss falls to a minimum at the 8th validation, then climbs while train loss keeps falling
    val = [2.0, 1.6, 1.3, 1.1, 0.95, 0.85, 0.8, 0.78, 0.8, 0.84, 0.9, 0.97, 1.05, 1.12, 1.2, 1.3]
    trainer = scripted_trainer(tmp_path, [], early_stop=True, es_patience=1000)
    trainer.detector = Detector(DetectorConfig(smoothing=0.3, patience=3))
    stopped_at = None
    for index, loss in enumerate(val):
        trainer.progress.step = (index + 1) * 10
        trainer.train_losses_since_eval = [1.0 - index * 0.05]
        trainer.validate = lambda loss=loss: (trainer._judge(loss, 0.5), {"loss": loss, "attention_score": 0.5})[1]
        if trainer._validate_and_schedule():
            stopped_at = trainer.progress.step
            break
    verdicts = [e for e in events(trainer) if e["code"] == "overtraining"]
    assert verdicts and verdicts[-1]["verdict"] == "overtraining"
    assert 80 <= verdicts[-1]["onset_step"] <= 90 and verdicts[-1]["level"] == "warn"
    assert stopped_at is not None and stopped_at <= 80 + (3 + 2) * 10 + 20
    assert events(trainer)[-1]["code"] == "early_stop" and "overtraining" in events(trainer)[-1]["message"]
