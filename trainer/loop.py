"""The training loop: read it top to bottom in `Trainer.fit`.

One step = one optimiser update. Losses are summed on the device and read back once per
log interval, so the step never waits for the host. Everything a watcher sees goes
through `RunDir` (status.json, metrics.jsonl) and stdout (train.log).
"""

from __future__ import annotations

import math
import signal
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from trainer import checkpoints as ckpt
from trainer.config import Config
from trainer import distributed
from trainer.cuda.device import Placement, place
from trainer.cuda.graphs import GraphedStep, graphs_wanted
from trainer.distributed import Ranks
from trainer.cuda.oom import check_injected, check_injected_crash, free_memory, injected_limit, is_oom_error, smaller_batch
from trainer.data import ClipSet, epoch_permutation, next_batch, split_clips, steps_for
from trainer.dataset import load_clips
from trainer.features import FeatureCache
from trainer.health import Launcher as HealthLauncher
from trainer.health import line as health_line
from trainer.health_records import health_by_step, parse_health
from trainer.models import load_network
from trainer.overtrain import (Detector, DetectorConfig, Evaluation, evaluations_from_records,
                               protected_checkpoints)
from trainer.rundir import HEARTBEAT_S, MetricsWriter, RunDir
from trainer.rundir.queries import current_records
from trainer.text import get_language

VERSION = 1
#: How long the trainer waits at its end for the read-through health of its last checkpoint.
HEALTH_WAIT_S = {"finished": 300.0, "early_stop": 300.0, "stopped": 45.0}
#: The loss terms summed on the device per log interval for Tacotron2: total, mel, gate, guided,
#: attention score, diagonality, gradient norm (other networks: total, their `terms`, gradient norm).
N_TERMS = 7


@dataclass
class Progress:
    """Where the run is and what the schedules remember; saved in every checkpoint."""

    step: int = 0
    epoch: int = 0            # completed epochs
    clips_in_epoch: int = 0   # clips of the current epoch already trained on
    batch_size: int = 0       # current batch size (lowered by out-of-memory back-off)
    best_val: float = math.inf
    best_step: int = -1
    es_bad_evals: int = 0
    last_val_step: int = -1
    last_val_loss: float | None = None
    # log-interval accumulators, so a resume mid-interval logs the same averages
    interval_sums: list[float] = field(default_factory=lambda: [0.0] * N_TERMS)
    interval_steps: int = 0
    interval_frames: int = 0


class Trainer:
    """Trains one run directory until its targets, a stop signal or early stopping."""

    def __init__(self, run: RunDir, config: Config, resume_from: Path | None = None,
                 log: Any = print, ranks: Ranks | None = None):
        self.run, self.config = run, config
        self.ranks = ranks or Ranks()
        # Only rank 0 speaks; the others reach train.log only through a traceback.
        self.log = log if self.ranks.is_main else (lambda message: None)
        self.resume_from = resume_from
        self.stop_requested: str | None = None  # set by the signal handler
        self.stop_signal: str | None = None     # acted on: at once alone, agreed with several ranks
        self.progress = Progress()
        self.metrics: MetricsWriter | None = None
        self.minutes_due = False
        self.last_saved_step = -1
        self.detector: Detector | None = None
        self.evaluations: list[Evaluation] = []
        self.train_losses_since_eval: list[float] = []

    # --- setup ----------------------------------------------------------------------

    def setup(self) -> None:
        c = self.config
        self.placement: Placement = place(c, self.ranks.local_rank)
        distributed.init(self.ranks, self.placement.device)
        self.language = get_language(c.data.language)
        self.symbols = self.language.symbols
        clips = load_clips(c.data.dataset, c.data.language, c.data.sample_rate, c.data.resample, n_fft=c.data.n_fft)
        train_clips, val_clips = split_clips(clips, c.data.val_fraction, c.data.seed, c.data.fraction)
        cache = FeatureCache(c.data)
        computed = cache.build(train_clips + val_clips, log=self.log) if self.ranks.is_main else 0
        self.ranks.barrier()  # the other ranks find every feature cached
        cache.build(train_clips + val_clips)
        self.log(f"data: {len(train_clips)} train / {len(val_clips)} validation clips "
                 f"({computed} features computed, rest cached in {cache.folder})")
        self.network = load_network(c)
        self.terms = ("loss", *self.network.terms, "grad_norm")
        self.train_set: ClipSet = self.network.clip_set(train_clips, self.language, cache, training=True)
        self.val_set: ClipSet = self.network.clip_set(val_clips, self.language, cache, training=False)
        self.frames_per_char = self.train_set.frames_per_char()
        self.log(f"speaking rate: {self.frames_per_char:.3f} frames/char (median of the training clips"
                 f"{', silence trimmed' if c.data.trim_silence else ''})")
        self.oom_limit = injected_limit()

        torch.manual_seed(c.train.seed)
        self.core = self.network.build(len(self.symbols)).to(self.placement.device)
        self.model = self.core
        self.graphs_off = graphs_wanted(c.train.cuda_graphs, self.placement.device, self.placement.precision,
                                        self.ranks.distributed, self.network.graph_forward_reason())
        self.optimizer = torch.optim.Adam(self.core.parameters(), lr=c.train.learning_rate,
                                          weight_decay=c.train.weight_decay, **self.network.adam,
                                          capturable=self.graphs_off is None)
        self.graphed = None if self.graphs_off else GraphedStep(self._device_step, self.placement.device)
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=c.schedule.plateau_factor,
            patience=c.schedule.plateau_patience - 1)
        self.scaler = self.placement.grad_scaler()
        self.alignment_tokens = self.language.to_ids(c.data.alignment_text) or [1]
        if not self.progress.step:  # the accumulators hold one sum per logged term
            self.progress.interval_sums = [0.0] * len(self.terms)
        s = c.schedule
        if s.overtraining:
            self.detector = Detector(DetectorConfig(smoothing=s.overtraining_smoothing,
                                                    patience=s.overtraining_patience))
        self.val_loss_of_checkpoint: dict[int, float] = {}
        self.health = (HealthLauncher(self.run, self.frames_per_char, self.log)
                       if c.health.enabled and self.network.reads_text and self.ranks.is_main else None)
        if self.resume_from is not None:
            payload = ckpt.load(self.resume_from)
            self._restore(payload)
            self._replay_history(payload.get("detector"))
        elif c.train.pretrained:
            for note in self.network.warm_start(self.core, c.train.pretrained, self.symbols):
                self.log(note)
        if self.ranks.distributed:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.placement.device.index] if self.placement.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.core, device_ids=device_ids)
        self._reset_accumulators(self.progress.interval_sums, self.progress.interval_frames)
        self.pad_to = self.train_set.max_shape() if self.graphed is not None else None
        if self.pad_to is not None:
            self.log(f"CUDA graphs: on; batches padded to {self.pad_to[0]} tokens, {self.pad_to[1]} frames; "
                     "an epoch's last batch is left out when it is not full")
        elif self.placement.device.type == "cuda":
            self.log(f"CUDA graphs: off ({self.graphs_off})")
        if not self.progress.batch_size:
            self.progress.batch_size = min(c.train.batch_size, len(self.train_set))
        self._plan()

    @property
    def batch_size(self) -> int:
        return self.progress.batch_size

    @property
    def graph_shape(self) -> tuple[int, int, int] | None:
        """The one batch shape that is captured and replayed (full batches, padded to `pad_to`)."""
        return (self.batch_size, *self.pad_to) if self.pad_to is not None else None

    def _plan(self) -> None:
        """Total steps for the targets, from where the run is and the current batch size."""
        c, p = self.config, self.progress
        world = self.ranks.world_size
        drop = self.pad_to is not None
        per_epoch = steps_for(len(self.train_set), self.batch_size, world, drop)
        left_in_epoch = steps_for(len(self.train_set) - p.clips_in_epoch, self.batch_size, world, drop)
        target = p.step + left_in_epoch + (c.train.epochs - p.epoch - 1) * per_epoch
        self.total_steps = min(target, c.train.max_steps) if c.train.max_steps else target

    def _replay_history(self, detector_state: dict[str, Any] | None) -> None:
        """Evaluations and checkpoint val losses up to the resume step, from metrics.jsonl.

        Records past the resume step belong to the interrupted attempt and are ignored.
        """
        step = self.progress.step
        history = [r for r in current_records(self.run.metrics_path) if r["step"] <= step]
        self.evaluations, checkpoint_val, _ = evaluations_from_records(history)
        if self.health is not None:  # results already in metrics.jsonl are not recorded twice
            self.health.recorded |= {r["step"] for r in history if r.get("kind") == "health"}
            self.health.summaries.update(health_by_step(history))
        self.val_loss_of_checkpoint = {k: v for k, v in checkpoint_val.items() if v is not None}
        last_eval = self.evaluations[-1].step if self.evaluations else -1
        self.train_losses_since_eval = [r["loss"] for r in history if r.get("kind") == "train"
                                        and r["step"] > last_eval and isinstance(r.get("loss"), float)]
        if self.detector is not None:
            if detector_state:
                self.detector.load_state_dict(detector_state)
            else:
                for evaluation in self.evaluations:
                    self.detector.update(evaluation)

    def _fit_optimizer_state(self) -> None:
        """A checkpoint from a graphed (capturable) run resumes eagerly, and the other way round."""
        capturable = self.graphed is not None
        for group in self.optimizer.param_groups:
            group["capturable"] = capturable
        for state in self.optimizer.state.values():
            step = state.get("step")
            if isinstance(step, torch.Tensor):
                device = self.placement.device if capturable else torch.device("cpu")
                state["step"] = step.to(device=device, dtype=torch.float32)

    def _restore(self, payload: dict[str, Any]) -> None:
        self.core.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self._fit_optimizer_state()
        self.plateau.load_state_dict(payload["scheduler"])
        self.scaler.load_state_dict(payload["scaler"])
        self.progress = Progress(**payload["progress"])
        sums = self.progress.interval_sums  # a checkpoint from before diagonality was summed has 6
        if self.network.name == "tacotron2" and len(sums) < N_TERMS:
            self.progress.interval_sums = sums[:5] + [0.0] * (N_TERMS - len(sums)) + sums[5:]
        ckpt.set_rng_states(payload["rng"])
        self.log(f"resumed from {self.resume_from} at step {self.progress.step}, "
                 f"epoch {self.progress.epoch + 1}")
        moved = ckpt.set_aside_newer(self.run, self.progress.step) if self.ranks.is_main else None
        if moved is not None:
            self.log(f"checkpoints newer than step {self.progress.step} were moved to {moved} "
                     "(this resume starts a new branch; nothing is overwritten)")

    # --- the loop ---------------------------------------------------------------------

    def fit(self) -> str:
        """Train; returns the end reason: finished, early_stop or stopped."""
        c, p = self.config, self.progress
        self._heartbeat("running", force=True)
        # A restart from scratch after a trainer died before its first checkpoint supersedes
        # what that trainer logged, exactly as a resume from step 0 would.
        restarted = self.resume_from is None and self.run.metrics_path.is_file() and \
            self.run.metrics_path.stat().st_size > 0
        resumed_from = p.step if self.resume_from else (0 if restarted else None)
        self._record("start", epoch=p.epoch + 1, resumed_from=resumed_from,
                     device=str(self.placement.device), world_size=self.ranks.world_size,
                     precision=self.placement.precision,
                     torch=torch.__version__, batch_size=self.batch_size)
        if self.resume_from:
            self._event("info", "resume", f"resumed from {self.resume_from.name} at step {p.step}")
        self.model.train()
        self.interval_start = time.perf_counter()
        self.last_checkpoint_time = time.monotonic()
        if p.step >= self.total_steps:
            return self._finish("finished")
        while True:
            order = epoch_permutation(len(self.train_set), c.train.seed, p.epoch)
            while p.clips_in_epoch < len(order):
                indices, consumed = next_batch(order, p.clips_in_epoch, self.batch_size, self.ranks.rank,
                                               self.ranks.world_size, drop_tail=self.pad_to is not None)
                if not indices:  # a tail too short to give every rank a clip
                    p.epoch, p.clips_in_epoch = p.epoch + 1, 0
                    break
                try:
                    self._train_step(self.train_set.batch(indices, self.pad_to))
                except Exception as exc:
                    if not is_oom_error(exc) or self.ranks.distributed:
                        raise
                    self._back_off(exc)
                    continue
                p.step += 1
                p.clips_in_epoch += consumed
                epoch_done = p.clips_in_epoch >= len(order)
                if epoch_done:
                    p.epoch, p.clips_in_epoch = p.epoch + 1, 0
                at_log = p.step % c.train.log_every_steps == 0
                if at_log:
                    self._log_interval()
                if not self.ranks.distributed:
                    self.stop_signal = self.stop_requested
                elif at_log:
                    # Agree on the host-side decisions here only, not every step.
                    self.stop_signal, self.minutes_due = self._agree()
                early_stop = False
                eval_every = c.train.eval_every_steps
                if (eval_every and p.step % eval_every == 0) or (not eval_every and epoch_done):
                    early_stop = self._validate_and_schedule()
                self._heartbeat("stopping" if self.stop_signal else "running", force=bool(self.stop_signal))
                if early_stop:
                    return self._finish("early_stop")
                if self.stop_signal:
                    return self._finish("stopped")
                if p.step >= self.total_steps:
                    return self._finish("finished")
                if self._checkpoint_due():
                    self.save_checkpoint()
                if epoch_done:
                    break

    def _agree(self) -> tuple[str | None, bool]:
        """(stop signal, time-based checkpoint due) as raised by any rank."""
        stop, due = self.ranks.any([self.stop_requested is not None, self._minutes_elapsed()],
                                   self.placement.device)
        return (self.stop_requested or "SIGTERM") if stop else None, due

    def _back_off(self, exc: BaseException) -> None:
        """Out of memory: free it, lower the batch size, retry the same step; give up at 1."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.graphed is not None:
            self.graphed.reset()
        free_memory()
        old = self.batch_size
        new = smaller_batch(old)
        if new is None:
            raise RuntimeError(f"out of memory even with batch size 1 ({exc}); use precision = 'bf16' "
                               "or 'fp16', the tiny preset, or shorter clips") from exc
        self.progress.batch_size = new
        self._plan()
        self._event("warn", "oom_backoff", f"out of memory at batch {old} → {new}",
                    old_batch_size=old, new_batch_size=new)

    def _train_step(self, batch: Any) -> None:
        check_injected(batch.size, self.oom_limit)
        check_injected_crash(self.ranks.rank, self.progress.step + 1)
        batch = batch.to(self.placement.device)
        if self.graphed is None or self.graphs_off or batch.shape != self.graph_shape or not self._replay(batch):
            self._device_step(batch)
        self.progress.interval_steps += 1

    def _replay(self, batch: Any) -> bool:
        """The step through the CUDA graph (warm-up, capture or replay); False if it could not be
        captured, which turns graphs off for the rest of the run (the step is then not applied)."""
        graphed = self.graphed
        assert graphed is not None
        captures = graphed.captures
        try:
            graphed.run(batch, (batch.shape, float(self.optimizer.param_groups[0]["lr"])))
        except Exception as exc:
            if is_oom_error(exc) or not graphed.capture_failed:
                raise  # out of memory (the caller backs off), or a failure of the step itself
            # This GPU, driver or torch build cannot capture the step: train on, eagerly.
            self.graphs_off = f"capture failed: {type(exc).__name__}: {exc}"
            self._event("warn", "cuda_graphs_off", f"CUDA graphs turned off ({self.graphs_off}); "
                        "training goes on without them, slower", error=str(exc))
            return False
        if graphed.captures != captures:
            self.log(f"CUDA graph captured for batches of {batch.shape[0]} clips, {batch.shape[1]} tokens, "
                     f"{batch.shape[2]} frames (capture {graphed.captures})")
        return True

    def _device_step(self, batch: Any) -> None:
        """Forward, losses, backward, clip, update, accumulate: device work only, so it can be graphed."""
        c = self.config
        with self.placement.autocast():
            # the graph-safe forward when graphed, for the eager steps around a captured one too
            outputs = self.network.forward(self.core if self.graphed is not None else self.model, batch,
                                           graph_safe=self.graphed is not None)
        losses = self.network.losses(outputs, batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses.total).backward()
        self.scaler.unscale_(self.optimizer)
        clip = c.train.grad_clip if c.train.grad_clip > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        terms = torch.stack([losses.total.detach(), *losses.parts, grad_norm.detach()]).double()
        # Accumulate on the device: reading a loss back every step would stall the GPU.
        self._acc += terms
        self._acc_frames += batch.mel_lengths.sum()

    def _reset_accumulators(self, sums: list[float], frames: int) -> None:
        """Set the device accumulators in place: a captured graph keeps adding into the same memory."""
        device = self.placement.device
        if getattr(self, "_acc", None) is None:
            self._acc = torch.zeros(len(self.terms), dtype=torch.float64, device=device)
            self._acc_frames = torch.zeros((), dtype=torch.int64, device=device)
        self._acc.copy_(torch.tensor(sums, dtype=torch.float64))
        self._acc_frames.fill_(frames)

    def _flush_interval(self) -> tuple[list[float], int, int]:
        """Read the device accumulators back once: (means of the terms, steps, frames)."""
        p = self.progress
        self.ranks.sum_(self._acc)
        self.ranks.sum_(self._acc_frames)
        world = self.ranks.world_size
        sums, frames, steps = [v / world for v in self._acc.tolist()], int(self._acc_frames), p.interval_steps
        p.interval_steps = 0
        self._reset_accumulators([0.0] * len(self.terms), 0)
        return [s / max(steps, 1) for s in sums], steps, frames

    def _log_interval(self) -> None:
        p = self.progress
        means, steps, frames = self._flush_interval()
        values = dict(zip(self.terms, means))
        loss = values["loss"]
        if not math.isfinite(loss):
            raise FloatingPointError(f"loss became {loss} at step {p.step}; lower train.learning_rate "
                                     "or check the dataset")
        now = time.perf_counter()
        elapsed = now - self.interval_start
        self.interval_start = now
        s_per_it = elapsed / max(steps, 1)
        extra = {}
        if self.placement.device.type == "cuda":
            extra["gpu_mem_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            torch.cuda.reset_peak_memory_stats()
        self.train_losses_since_eval.append(loss)
        self._collect_health()
        self._record("train", epoch=self._epoch_label(), **values,
                     lr=float(self.optimizer.param_groups[0]["lr"]), batch_size=self.batch_size,
                     frames_per_s=round(frames / elapsed, 1) if elapsed > 0 else None, **extra)
        eta = format_eta(s_per_it * (self.total_steps - p.step))
        parts = " ".join(f"{label} {values[key]:.4f}" for key, label in self.network.log_labels.items())
        alignment = (f"attention {values['attention_score']:.3f} diagonal {values['attention_diagonality']:.2f} "
                     if "attention_score" in values else "")
        self.log(f"epoch {self._epoch_label()}/{self.config.train.epochs} step {p.step}/{self.total_steps} "
                 f"loss {loss:.4f} ({parts}) {alignment}{s_per_it:.2f} s/it ETA {eta}")

    def _epoch_label(self) -> int:
        """The 1-based epoch the latest step belongs to."""
        p = self.progress
        return p.epoch if p.clips_in_epoch == 0 and p.step > 0 else p.epoch + 1

    # --- validation and schedules -------------------------------------------------------

    def validate(self) -> dict[str, float] | None:
        """Teacher-forced losses and attention score over the validation clips."""
        if not len(self.val_set):
            return None
        p = self.progress
        chosen = [self.network.terms.index(key) for key in self.network.val_terms]
        totals = torch.zeros(len(chosen) + 2, device=self.placement.device)
        devices = [self.placement.device] if self.placement.device.type == "cuda" else []
        self.core.eval()
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            indices = list(range(len(self.val_set)))[self.ranks.rank::self.ranks.world_size]
            for start in range(0, len(indices), self.batch_size):
                batch = self.val_set.batch(indices[start:start + self.batch_size]).to(self.placement.device)
                with self.placement.autocast():
                    outputs = self.network.forward(self.core, batch)
                losses = self.network.losses(outputs, batch)
                # the validation loss users compare is the network's (Tacotron2: mel + gate), without the guide
                totals += torch.stack([losses.val, *(losses.parts[i] for i in chosen),
                                       torch.ones_like(losses.val)]) * batch.size
        self.core.train()
        self.ranks.sum_(totals)
        loss, *means = (totals[:-1] / totals[-1]).tolist()
        values = dict(zip(self.network.val_terms, means))
        p.last_val_step, p.last_val_loss = p.step, loss
        self._record("val", epoch=self._epoch_label(), loss=loss, **values)
        score = values.get("attention_score")
        alignment = (f" attention {score:.3f} diagonal {values['attention_diagonality']:.2f}"
                     if score is not None else "")
        self.log(f"validation at step {p.step}: loss {loss:.4f}{alignment}")
        self._judge(loss, score)
        return {"loss": loss, "attention_score": score}

    def _judge(self, val_loss: float, attention: float | None) -> None:
        """Feed the overtraining detector; each change of verdict becomes an event."""
        train = self.train_losses_since_eval
        evaluation = Evaluation(self.progress.step, val_loss, sum(train) / len(train) if train else None,
                                attention)
        self.train_losses_since_eval = []
        self.evaluations.append(evaluation)
        if self.detector is None:
            return
        verdict = self.detector.update(evaluation)
        if verdict.changed:
            level = "warn" if verdict.verdict in ("overtraining", "collapsed") else "info"
            self._event(level, "overtraining", verdict.message, verdict=verdict.verdict,
                        best_step=verdict.best_step, onset_step=verdict.onset_step)

    def _validate_and_schedule(self) -> bool:
        """Validate, then apply reduce-LR-on-plateau and early stopping; True to stop early."""
        result = self.validate()
        if result is None:
            return False
        s, p = self.config.schedule, self.progress
        loss = result["loss"]
        if loss < p.best_val - s.es_min_delta:
            p.best_val, p.best_step, p.es_bad_evals = loss, p.step, 0
        else:
            p.es_bad_evals += 1
        if s.reduce_lr_on_plateau:
            before = self.optimizer.param_groups[0]["lr"]
            self.plateau.step(loss)
            after = self.optimizer.param_groups[0]["lr"]
            if after < before:
                self._event("info", "lr_reduced", f"learning rate {before:.3g} → {after:.3g}: "
                            f"no improvement for {s.plateau_patience} validations")
        verdict = self.detector.verdict if self.detector is not None else None
        if s.early_stop and verdict is not None and verdict.verdict == "overtraining":
            self._event("info", "early_stop", f"overtraining detected: {verdict.message}")
            return True
        if s.early_stop and p.es_bad_evals >= s.es_patience:
            self._event("info", "early_stop", f"validation loss has not improved for {p.es_bad_evals} "
                        f"validations (best {p.best_val:.4f} at step {p.best_step})")
            return True
        return False

    # --- checkpoints --------------------------------------------------------------------

    def _checkpoint_due(self) -> bool:
        cp, p = self.config.checkpoint, self.progress
        if cp.every_steps and p.step % cp.every_steps == 0:
            return True
        if self.ranks.distributed:
            due, self.minutes_due = self.minutes_due, False
            return due
        return self._minutes_elapsed()

    def _minutes_elapsed(self) -> bool:
        minutes = self.config.checkpoint.every_minutes
        return bool(minutes) and time.monotonic() - self.last_checkpoint_time >= minutes * 60

    def save_checkpoint(self, tags: tuple[str, ...] = ()) -> Path:
        """Validate if needed, save atomically, synthesise the alignment sentence, rotate."""
        p = self.progress
        if p.last_val_step != p.step:
            self.validate()
        self.last_saved_step = p.step
        if not self.ranks.is_main:
            self.last_checkpoint_time = time.monotonic()
            return self.run.checkpoint_path(p.step)
        self._flush_interval_into_progress()
        payload = {
            "version": VERSION, "model": self.core.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.plateau.state_dict(), "scaler": self.scaler.state_dict(),
            "rng": ckpt.rng_states(), "progress": asdict(p), "config": self.config.to_dict(),
            "symbols": self.symbols, "language": self.language.code,
            "detector": self.detector.state_dict() if self.detector is not None else None,
        }
        path = ckpt.save(self.run, p.step, payload)
        self.last_checkpoint_time = time.monotonic()
        val_loss = p.last_val_loss
        all_tags = list(tags)
        if val_loss is not None:
            self.val_loss_of_checkpoint[p.step] = val_loss
            if val_loss <= min(self.val_loss_of_checkpoint.values()):
                all_tags.append("best")
        backup = self.config.checkpoint.backup_every_steps
        if backup and p.step % backup == 0:
            all_tags.append("backup")
        relative = str(path.relative_to(self.run.path))
        self._record("checkpoint", path=relative, val_loss=val_loss, tags=all_tags)
        self.log(f"checkpoint {relative} (val loss {val_loss if val_loss is None else round(val_loss, 4)})"
                 + (f" [{', '.join(all_tags)}]" if all_tags else ""))
        self._synthesise(relative)
        self._rotate()
        if self.health is not None:
            self._collect_health()
            self.health.start()  # after rotation, so it never renders a checkpoint about to go
        return path

    def _collect_health(self) -> None:
        """Record the health worker's new results; restart it if a checkpoint still waits for one."""
        health = self.health
        if health is None:
            return
        for result in health.results():
            step = result.pop("step")
            if "error" in result:
                self._record_at("event", step, level="warn", code="health_failed",
                                message=f"read-through health of step {step} failed: {result['error']}")
                continue
            self._record_at("health", step, **result)
            summary = parse_health({"step": step, **result})
            if summary is not None:
                health.summaries[step] = summary
            self.log(health_line({"step": step, **result}))
        if not health.busy() and health.waiting():
            health.start()

    def _wait_for_health(self, reason: str) -> None:
        """At the end of the run: give the worker time to judge the last checkpoint, then record it."""
        health = self.health
        if health is None:
            return
        if not health.busy() and health.waiting():
            health.start()
        if health.busy():
            limit = HEALTH_WAIT_S.get(reason, 45.0)
            self.log(f"waiting up to {limit:.0f} s for the read-through health of the last checkpoint")
            if not health.wait(limit):
                self.log("the health worker is still busy; its results are recorded at the next resume")
        self._collect_health()

    def _flush_interval_into_progress(self) -> None:
        """Copy the device accumulators into Progress so a checkpoint carries them."""
        self.progress.interval_sums = self._acc.tolist()
        self.progress.interval_frames = int(self._acc_frames)

    def _synthesise(self, checkpoint: str) -> None:
        """The alignment sentence free-running (a network without text: a validation clip's input)."""
        import numpy as np
        import soundfile

        from trainer.rundir import atomic_write

        step, network = self.progress.step, self.network
        if network.reads_text:
            result = network.render(self.core, self.alignment_tokens, self.placement.device,
                                    end_at=self.language.last_spoken(self.alignment_tokens),
                                    companion=network.companion(self.run.path, self.placement.device, self.log))
        else:
            with torch.random.fork_rng(devices=[]):  # a training set's batch is a random crop
                batch = (self.val_set if len(self.val_set) else self.train_set).batch([0])
            coarse = batch.coarse[0, :, :int(batch.coarse_lengths[0])]
            result = network.render(self.core, [], self.placement.device, companion=coarse)
        rel = lambda path: str(path.relative_to(self.run.path))  # noqa: E731
        atomic_write(self.run.mel_path(step), lambda h: np.save(h, result.mel))
        atomic_write(self.run.sample_path(step), lambda h: soundfile.write(
            h, result.audio, result.sample_rate, format="WAV", subtype="PCM_16"))
        if not network.reads_text:
            self._record("sample", mel=rel(self.run.mel_path(step)), wav=rel(self.run.sample_path(step)),
                         checkpoint=checkpoint)
            return
        atomic_write(self.run.alignment_path(step), lambda h: np.save(h, result.alignment))
        self._record("alignment", path=rel(self.run.alignment_path(step)), mel=rel(self.run.mel_path(step)),
                     wav=rel(self.run.sample_path(step)), text=self.config.data.alignment_text,
                     checkpoint=checkpoint, reached_limit=result.stop == "limit", stop=result.stop)

    def _rotate(self) -> None:
        cp = self.config.checkpoint
        rules = ckpt.RotationRules(cp.max_to_keep, cp.keep_best, cp.backup_every_steps)
        existing = self.run.checkpoints()
        on_disk = {c.step: self.val_loss_of_checkpoint.get(c.step) for c in existing}
        config = self.detector.config if self.detector is not None else DetectorConfig()
        # the local minima a user will want to listen to survive rotation
        health = self.health.summaries if self.health is not None else None
        protected = protected_checkpoints(self.evaluations, on_disk, cp.keep_best, config, health)
        for old in ckpt.to_delete(existing, self.val_loss_of_checkpoint, rules, protected):
            old.path.unlink(missing_ok=True)

    # --- endings, records, status ---------------------------------------------------------

    def _finish(self, reason: str) -> str:
        p = self.progress
        if reason == "stopped":
            self._event("info", "signal", f"{self.stop_signal} received: saving a checkpoint and stopping")
        tags = ("final",) if reason in ("finished", "early_stop") else ()
        if self.last_saved_step != p.step:
            self.save_checkpoint(tags)  # before the last log line, so it carries a partial interval
        if p.interval_steps:
            self._log_interval()
        state = "stopped" if reason == "stopped" else "finished"
        self._wait_for_health(reason)
        self._record("end", reason=reason)
        self._heartbeat(state, force=True)
        self.log(f"run {reason} at step {p.step}")
        return reason

    def _record(self, kind: str, **fields: Any) -> None:
        self._record_at(kind, self.progress.step, **fields)

    def _record_at(self, kind: str, step: int, **fields: Any) -> None:
        if not self.ranks.is_main:
            return
        if self.metrics is None:
            self.metrics = MetricsWriter(self.run.metrics_path)
        self.metrics.write(kind, step, **fields)

    def _event(self, level: str, code: str, message: str, **fields: Any) -> None:
        self._record("event", level=level, code=code, message=message, **fields)
        self.log(f"{level}: {message}")

    def _heartbeat(self, state: str, force: bool = False) -> None:
        if not self.ranks.is_main:
            return
        now = time.monotonic()
        if not force and now - getattr(self, "_last_heartbeat", 0.0) < HEARTBEAT_S:
            return
        self._last_heartbeat = now
        p = self.progress
        self.run.write_status(state=state, step=p.step, epoch=self._epoch_label(),
                              total_steps=self.total_steps, host=socket.gethostname())

    def request_stop(self, signum: int, _frame: Any = None) -> None:
        """Signal handler: finish the step, save, end as `stopped`."""
        if self.stop_requested is None:
            self.stop_requested = signal.Signals(signum).name


def format_eta(seconds: float) -> str:
    """train.log's ETA: h:mm:ss, or `?` (`trainer.rundir.names.hms`, which the Monitor reads back)."""
    from trainer.rundir.names import hms

    return hms(seconds)
