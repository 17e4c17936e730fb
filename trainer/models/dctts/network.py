"""DC-TTS's networks behind the model interface: Text2Mel and SSRN, each trained by its own run.

The two runs of a voice know each other through `[model] pair` (the other run's folder name, beside
this one). A Text2Mel run renders its samples and its read-through health through the newest SSRN
checkpoint of its pair, and through Griffin-Lim on its own coarse mel until one exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainer.models.base import Network, Rendering, StepLosses
from trainer.models.common import attention_score, diagonality, guided_attention_weights, lengths_mask
from trainer.models.dctts.data import SSRN_CROP, SSRNClips, Text2MelClips
from trainer.models.dctts.features import LINEAR_REF_DB, MEL_REF_DB, LinearCache, denormalise_log
from trainer.models.dctts.infer import incremental_decode
from trainer.models.dctts.modules import PRESETS, REDUCTION, SSRN, Text2Mel

#: Griffin-Lim raises SSRN's magnitude to this power first (sharper harmonics, as dc_tts recipes do).
SHARPEN = 1.5


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values` [B, C, T] over the real frames of `mask` [B, T]."""
    weights = mask[:, None, :].float()
    return (values * weights).sum() / (weights.sum() * values.shape[1]).clamp(min=1)


def l1_and_divergence(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's two spectrogram losses: L1 of sigmoid(logits), and the binary divergence."""
    logits = logits.float()
    l1 = _masked_mean((torch.sigmoid(logits) - targets).abs(), mask)
    divergence = _masked_mean(F.binary_cross_entropy_with_logits(logits, targets, reduction="none"), mask)
    return l1, divergence


def linear_audio(linear: np.ndarray, data: Any) -> np.ndarray:
    """Normalised linear magnitude [F', T] → audio with Griffin-Lim (peak 0.9)."""
    import torchaudio

    magnitude = np.exp(denormalise_log(linear.astype(np.float32), LINEAR_REF_DB)) ** SHARPEN
    min_frames = data.n_fft // data.hop
    if magnitude.shape[1] < min_frames:
        magnitude = np.pad(magnitude, ((0, 0), (0, min_frames - magnitude.shape[1])))
    griffin_lim = torchaudio.transforms.GriffinLim(n_fft=data.n_fft, n_iter=32, win_length=data.win,
                                                   hop_length=data.hop, power=1.0)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        audio = griffin_lim(torch.from_numpy(np.ascontiguousarray(magnitude)))
    peak = float(audio.abs().max()) or 1.0
    return (audio / peak * 0.9).numpy()


def coarse_to_log_mel(values: np.ndarray) -> np.ndarray:
    """Normalised coarse mel [F, Tc] → log mel at the full frame rate [F, 4 Tc] (each frame repeated)."""
    return np.repeat(denormalise_log(values, MEL_REF_DB), REDUCTION, axis=1).astype(np.float32)


class _DCTTS(Network):
    reads_text = True
    adam = {"betas": (0.5, 0.9), "eps": 1e-6}  # the paper's

    def _sizes(self) -> Any:
        return PRESETS[self.config.model.preset]

    def graph_forward_reason(self) -> str | None:
        return "DC-TTS is convolutional: its eager step launches few kernels (no graph needed)"


class Text2MelNetwork(_DCTTS):
    """Text → coarse mel, with guided attention (the network whose attention becomes a diagonal)."""

    name = "text2mel"
    export_format = "voxtop-dctts"
    #: The step of the SSRN checkpoint `companion` loaded last.
    companion_step: int | None = None
    terms = ("loss_mel", "loss_bd", "loss_guided", "attention_score", "attention_diagonality")
    val_terms = ("loss_mel", "loss_bd", "attention_score", "attention_diagonality")
    log_labels = {"loss_mel": "L1", "loss_bd": "bd", "loss_guided": "guided"}

    def build(self, n_symbols: int) -> torch.nn.Module:
        return Text2Mel(n_symbols, self.config.data.n_mels, self._sizes(), self.config.model.dropout)

    def clip_set(self, clips: list[Any], language: Any, cache: Any, training: bool = True) -> Any:
        return Text2MelClips(clips, language, cache)

    def forward(self, model: torch.nn.Module, batch: Any, graph_safe: bool = False) -> Any:
        shifted = F.pad(batch.coarse[:, :, :-1], (1, 0))  # frame t is predicted from frames < t
        return model(batch.tokens, batch.text_lengths, shifted)

    def losses(self, outputs: Any, batch: Any) -> StepLosses:
        logits, attention = outputs
        t = self.config.train
        mask = lengths_mask(batch.coarse_lengths, batch.coarse.shape[2])
        l1, divergence = l1_and_divergence(logits, batch.coarse, mask)
        align = attention.float()
        steps = mask.sum().clamp(min=1)
        if t.guided_attention_weight > 0:
            weights = guided_attention_weights(batch.text_lengths, batch.coarse_lengths, align.shape[1],
                                               align.shape[2], t.guided_attention_sigma)
            guided = (align * weights).sum() / steps
        else:
            guided = torch.zeros((), device=logits.device)
        total = l1 + divergence + t.guided_attention_weight * guided
        detached = align.detach()
        parts = [l1.detach(), divergence.detach(), guided.detach(),
                 attention_score(detached, batch.coarse_lengths),
                 diagonality(detached, batch.text_lengths, batch.coarse_lengths)]
        return StepLosses(total, parts, (l1 + divergence).detach())

    def render(self, model: torch.nn.Module, token_ids: list[int], device: torch.device, seed: int = 0,
               end_at: int | None = None, companion: Any = None) -> Rendering:
        t, data = self.config.train, self.config.data
        max_steps = max(1, -(-t.max_decoder_steps // REDUCTION))
        rest_steps = max(1, -(-t.stop_after_end_frames // REDUCTION))
        was_training = model.training
        model.eval()
        try:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
                torch.manual_seed(seed)
                result = incremental_decode(model, token_ids, device, max_steps,
                                            len(token_ids) - 1 if end_at is None else end_at, rest_steps)
                coarse_values = result.coarse
                if companion is not None:
                    ssrn = companion.to(device).eval()
                    linear = torch.sigmoid(ssrn(torch.from_numpy(coarse_values)[None].to(device)))[0]
                    audio = linear_audio(linear.float().cpu().numpy(), data)
        finally:
            model.train(was_training)
        log_mel = coarse_to_log_mel(coarse_values)
        if companion is None:
            from trainer.synth import GriffinLim

            audio = GriffinLim(data)(log_mel)
        return Rendering(result.alignment, log_mel, audio, int(log_mel.shape[1]), result.stop, data.sample_rate)

    def companion(self, run_path: Path, device: torch.device, log: Any = print) -> Any:
        """The newest SSRN checkpoint of the pair as a model in eval mode, or None (Griffin-Lim on the mel)."""
        found = newest_pair_checkpoint(run_path, self.config.model.pair)
        if found is None:
            return None
        try:
            model, self.companion_step = load_ssrn(found)
            return model
        except Exception as exc:  # noqa: BLE001 — no SSRN yet is a rougher sample, never a failed run
            log(f"SSRN checkpoint {found} of the pair cannot be used ({type(exc).__name__}: {exc}); "
                "Griffin-Lim on the coarse mel instead")
            return None

    def export_fields(self, n_symbols: int) -> dict[str, Any]:
        sizes = self._sizes()
        return {"text2mel": {"n_symbols": n_symbols, "n_mels": self.config.data.n_mels,
                             "embedding": sizes.embedding, "hidden": sizes.hidden, "ssrn": sizes.ssrn,
                             "dropout": self.config.model.dropout}}


class SSRNNetwork(_DCTTS):
    """Coarse mel → full-rate linear magnitude (trained on the recordings alone, no text)."""

    name = "ssrn"
    export_format = "voxtop-dctts"
    terms = ("loss_linear", "loss_bd")
    val_terms = ("loss_linear", "loss_bd")
    log_labels = {"loss_linear": "L1", "loss_bd": "bd"}
    reads_text = False

    def n_linear(self) -> int:
        return self.config.data.n_fft // 2 + 1

    def build(self, n_symbols: int) -> torch.nn.Module:
        return SSRN(self.config.data.n_mels, self.n_linear(), self._sizes().ssrn, self.config.model.dropout)

    def clip_set(self, clips: list[Any], language: Any, cache: Any, training: bool = True) -> Any:
        linear = LinearCache(self.config.data)
        linear.build(clips)
        return SSRNClips(clips, language, cache, linear, SSRN_CROP if training else None)

    def forward(self, model: torch.nn.Module, batch: Any, graph_safe: bool = False) -> Any:
        return model(batch.coarse)

    def losses(self, outputs: Any, batch: Any) -> StepLosses:
        mask = lengths_mask(batch.mel_lengths, batch.linear.shape[2])
        l1, divergence = l1_and_divergence(outputs, batch.linear, mask)
        return StepLosses(l1 + divergence, [l1.detach(), divergence.detach()], (l1 + divergence).detach())

    def render(self, model: torch.nn.Module, token_ids: list[int], device: torch.device, seed: int = 0,
               end_at: int | None = None, companion: Any = None) -> Rendering:
        """`companion`: a normalised coarse mel [F, Tc] (a validation clip's) to turn into audio."""
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                linear = torch.sigmoid(model(torch.as_tensor(companion)[None].to(device)))[0].float().cpu().numpy()
        finally:
            model.train(was_training)
        audio = linear_audio(linear, self.config.data)
        log_mel = coarse_to_log_mel(np.asarray(companion))
        return Rendering(np.zeros((0, 0), np.float32), log_mel, audio, int(linear.shape[1]), "gate",
                         self.config.data.sample_rate)

    def export_fields(self, n_symbols: int) -> dict[str, Any]:
        return {"ssrn": {"n_mels": self.config.data.n_mels, "n_linear": self.n_linear(),
                         "channels": self._sizes().ssrn, "dropout": self.config.model.dropout}}


def newest_pair_checkpoint(run_path: Path, pair: str) -> Path | None:
    """The newest checkpoint of the paired run (a folder beside `run_path`), or None."""
    if not pair:
        return None
    from trainer.rundir import RunDir

    other = Path(run_path).parent / pair
    if not other.is_dir():
        return None
    checkpoints = RunDir(other).checkpoints()
    return checkpoints[-1].path if checkpoints else None


def load_ssrn(path: Path) -> tuple[torch.nn.Module, int]:
    """(SSRN model in eval mode, its step) from one of its run's checkpoints."""
    from trainer import checkpoints
    from trainer.config import from_dict, upgrade_run_config

    payload = checkpoints.load(path)
    config = from_dict(upgrade_run_config(payload["config"]))
    network = SSRNNetwork(config)
    model = network.build(0)
    model.load_state_dict({k.removeprefix("module."): v for k, v in payload["model"].items()})
    return model.eval(), int(payload["progress"]["step"])
