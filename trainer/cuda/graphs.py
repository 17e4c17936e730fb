"""Whole-step CUDA graphs for Tacotron2 training.

torchaudio's Tacotron2 decoder is a Python loop over mel frames: one batch of 800 frames
launches on the order of 100,000 small kernels, so on a fast GPU the step is bound by the CPU
launching them, not by the GPU (an H100 sat at 16-22% utilisation; BENCHMARKS.md). Capturing
the whole training step (forward, losses, backward, gradient clipping, Adam and the device
accumulators) once as a CUDA graph and replaying it removes that launch cost.

A graph replays fixed kernels on fixed memory, so:

- `static_forward` is `torchaudio.models.Tacotron2.forward` without its two host
  synchronisations (`lengths.max().item()` for the masks and the CPU lengths that
  `pack_padded_sequence` needs). The encoder's backward LSTM direction runs over each text
  reversed within its own length, which is what packing does, so the outputs at real positions
  are torchaudio's (tests/test_graphs.py compares them);
- full batches are padded to one shape for the whole run (the longest text and mel of the
  training set) instead of to their own longest clip. The losses are masked, attention never
  falls on padding, and what the padding does reach (the encoder convolutions at the end of
  a text, BatchNorm statistics) is what every shorter clip of any Tacotron2 batch already sees.
  A batch of another shape (the last, smaller one of an epoch) runs eagerly;
- the learning rate is a constant inside the graph, so a change of it (ReduceLROnPlateau)
  makes a new capture, as does a new batch size after an out-of-memory back-off;
- Adam runs with `capturable=True` (its step counters live on the GPU).

Graphs are used on CUDA in a single process at fp32 or bf16 (`[train] cuda_graphs = "auto"`);
fp16's grad scaler reads the overflow flag on the host every step, and DDP's bucketed
all-reduce has its own rules, so those run eagerly.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor

# One direction's weights of the encoder's bidirectional LSTM are not one contiguous chunk, so
# cuDNN copies them each call: inside a captured graph that is one small copy kernel.
warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous chunk")

WARMUP_STEPS = 2  # eager steps on a side stream before each capture (lazy cuBLAS/cuDNN set-up)


def _lengths_mask(lengths: Tensor, max_len: int) -> Tensor:
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def _encode(encoder: Any, x: Tensor, lengths: Tensor) -> Tensor:
    """torchaudio's `_Encoder.forward` on padded input without packing: (B, C, T) → (B, T, 2H)."""
    for conv in encoder.convolutions:
        x = F.dropout(F.relu(conv(x)), 0.5, encoder.training)
    x = x.transpose(1, 2)
    lstm = encoder.lstm
    batch, steps, _ = x.shape
    t = torch.arange(steps, device=x.device)[None, :]
    valid = t < lengths[:, None]
    # Each sequence reversed within its length (padding stays put): the backward direction of a
    # packed bidirectional LSTM starts at the last real token, never at the padding.
    reverse = torch.where(valid, lengths[:, None] - 1 - t, t)[:, :, None]
    zeros = x.new_zeros(1, batch, lstm.hidden_size)

    def run(inputs: Tensor, suffix: str) -> Tensor:
        weights = [getattr(lstm, f"{name}_l0{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        return torch._VF.lstm(inputs, (zeros, zeros), weights, True, 1, 0.0, lstm.training, False, True)[0]

    forward = run(x, "")
    backward = run(x.gather(1, reverse.expand_as(x)), "_reverse")
    backward = backward.gather(1, reverse.expand_as(backward))
    return torch.cat((forward, backward), dim=2) * valid[:, :, None]


def _decode(decoder: Any, memory: Tensor, mels: Tensor, memory_lengths: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """torchaudio's `_Decoder.forward` with the attention mask built without a host read."""
    first = decoder._get_initial_frame(memory).unsqueeze(0)
    inputs = decoder.prenet(torch.cat((first, decoder._parse_decoder_inputs(mels)), dim=0))
    mask = ~_lengths_mask(memory_lengths, memory.shape[1])
    (att_h, att_c, dec_h, dec_c, weights, weights_cum, context,
     processed) = decoder._initialize_decoder_states(memory)
    mel_outputs, gate_outputs, alignments = [], [], []
    for i in range(inputs.size(0) - 1):
        (mel, gate, att_h, att_c, dec_h, dec_c, weights, weights_cum, context) = decoder.decode(
            inputs[i], att_h, att_c, dec_h, dec_c, weights, weights_cum, context, memory, processed, mask)
        mel_outputs.append(mel.squeeze(1))
        gate_outputs.append(gate.squeeze(1))
        alignments.append(weights)
    return decoder._parse_decoder_outputs(torch.stack(mel_outputs), torch.stack(gate_outputs),
                                          torch.stack(alignments))


def static_forward(model: Any, tokens: Tensor, token_lengths: Tensor, mels: Tensor,
                   mel_lengths: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """`Tacotron2.forward` (teacher forcing) with no host synchronisation; same outputs."""
    embedded = model.embedding(tokens).transpose(1, 2)
    memory = _encode(model.encoder, embedded, token_lengths)
    mel, gates, alignments = _decode(model.decoder, memory, mels, token_lengths)
    post = mel + model.postnet(mel)
    if model.mask_padding:
        padding = ~_lengths_mask(mel_lengths, mel.shape[2])
        mel = mel.masked_fill(padding[:, None, :], 0.0)
        post = post.masked_fill(padding[:, None, :], 0.0)
        gates = gates.masked_fill(padding, 1e3)
    return mel, post, gates, alignments


def graphs_wanted(setting: str, device: torch.device, precision: str, distributed: bool,
                  model_reason: str | None = None) -> str | None:
    """None when the step should be graphed, else why not (for the log); `model_reason` is the
    network's own (`Network.graph_forward_reason`)."""
    if setting == "off":
        return "cuda_graphs = off"
    if model_reason is not None:
        return model_reason
    if device.type != "cuda":
        return "not on CUDA"
    if precision == "fp16":
        return "fp16's grad scaler checks for overflow on the host every step"
    if distributed:
        return "several processes (DDP)"
    return None


@dataclass
class GraphedStep:
    """Runs `step(batch)` eagerly for a few steps, then captures it once per key and replays it.

    `step` must do only device work on the batch it is given (its Python side effects run
    once, at capture). `key` names what the graph depends on besides memory: the batch shape
    and the learning rate.
    """

    step: Callable[[Any], None]
    device: torch.device
    key: Any = None
    graph: Any = None
    static: Any = None
    warmup_left: int = WARMUP_STEPS
    captures: int = 0
    capture_failed: bool = False
    """The last capture raised (the step was not applied: it can be run eagerly instead)."""
    side: Any = field(default=None, repr=False)

    def run(self, batch: Any, key: Any) -> bool:
        """One training step on `batch` (already on the device). True when it was a replay."""
        if key != self.key:
            self.reset()
            self.key = key
        if self.warmup_left > 0:
            self.warmup_left -= 1
            if self.side is None:
                self.side = torch.cuda.Stream(self.device)
            self.side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(self.side):
                self.step(batch)
            torch.cuda.current_stream(self.device).wait_stream(self.side)
            return False
        if self.graph is None:
            self.static = batch
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph):
                    self.step(self.static)
            except BaseException:
                self.reset()
                self.capture_failed = True
                raise
            self.graph = graph
            self.captures += 1
            self.capture_failed = False
        else:
            for mine, theirs in zip(self.static.tensors(), batch.tensors()):
                mine.copy_(theirs, non_blocking=True)
        self.graph.replay()
        return True

    def reset(self) -> None:
        """Forget the graph (its memory returns to the allocator once nothing refers to it)."""
        self.graph, self.static, self.key = None, None, None
        self.warmup_left = WARMUP_STEPS
