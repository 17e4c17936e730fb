"""Tacotron2 behind the model interface: one network, one run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from trainer.models.base import Network, Rendering, StepLosses
from trainer.models.tacotron2.model import build_model, compute_losses, model_kwargs, warm_start


class Tacotron2Network(Network):
    """torchaudio's Tacotron2 with r frames per decoder step, a weighted stop token and guided attention."""

    name = "tacotron2"
    export_format = "voxtop-tacotron2"
    terms = ("loss_mel", "loss_gate", "loss_guided", "attention_score", "attention_diagonality")
    val_terms = ("loss_mel", "loss_gate", "attention_score", "attention_diagonality")
    log_labels = {"loss_mel": "mel", "loss_gate": "gate", "loss_guided": "guided"}

    def build(self, n_symbols: int) -> torch.nn.Module:
        return build_model(self.config, n_symbols)

    def clip_set(self, clips: list[Any], language: Any, cache: Any, training: bool = True) -> Any:
        from trainer.data import ClipSet

        return ClipSet(clips, language, cache, self.config.model.frames_per_step)

    def forward(self, model: torch.nn.Module, batch: Any, graph_safe: bool = False) -> Any:
        inputs = (batch.tokens, batch.text_lengths, batch.mels, batch.mel_lengths)
        if graph_safe:  # the graph-safe forward, for the eager steps around a captured one too
            from trainer.cuda.graphs import static_forward

            return static_forward(getattr(model, "module", model), *inputs)
        return model(*inputs)

    def losses(self, outputs: Any, batch: Any) -> StepLosses:
        t = self.config.train
        losses = compute_losses(outputs, batch.mels, batch.gates, batch.text_lengths, batch.mel_lengths,
                                t.guided_attention_weight, t.guided_attention_sigma, t.gate_pos_weight,
                                self.config.model.frames_per_step)
        parts = [losses.mel, losses.gate, losses.guided, losses.attention_score, losses.diagonality]
        return StepLosses(losses.total, parts, losses.mel + losses.gate)

    def render(self, model: torch.nn.Module, token_ids: list[int], device: torch.device, seed: int = 0,
               end_at: int | None = None, companion: Any = None) -> Rendering:
        from trainer.synth import GriffinLim, synthesise

        t = self.config.train
        result = synthesise(model, token_ids, device, t.max_decoder_steps, t.stop_after_end_frames,
                            seed=seed, end_at=end_at)
        vocoder = GriffinLim(self.config.data)
        return Rendering(result.alignment, result.mel, vocoder(result.mel), int(result.mel.shape[1]),
                         result.stop, vocoder.sample_rate)

    def warm_start(self, model: torch.nn.Module, path: str | Path, symbols: list[str]) -> list[str]:
        return warm_start(model, path, symbols)

    def graph_forward_reason(self) -> str | None:
        return None

    def export_fields(self, n_symbols: int) -> dict[str, Any]:
        return {"tacotron2": model_kwargs(self.config, n_symbols)}
