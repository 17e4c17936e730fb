"""GPU: `full` preset training frames/s at fp32, bf16 and fp16, with GPU utilisation sampled by NVML.

    .venv/bin/python bench/gpu_throughput.py [--steps 60] [--warmup 10] [--batch 32] [--modes fp32,fp32+graphs,...]

Needs a CUDA GPU (exits 2 without one). Synthetic batches shaped like LJSpeech (text 150
tokens, 800 mel frames of 80 bins, lengths varied) feed trainer.models.tacotron2's model
and losses through the trainer's own precision handling (`trainer.cuda` placement:
autocast + GradScaler), eagerly or captured as a CUDA graph (`+graphs`: trainer.cuda.graphs,
what the trainer does with `[train] cuda_graphs = "auto"`), so the figures are those of the
trainer's step minus data loading.
A thread samples utilisation the way the GPU panel does (tui.gpu.Sampler, NVML) every
0.5 s while the timed steps run; the median is reported (target >= 90%).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def sample_utilisation(stop: threading.Event, readings: list[float]) -> None:
    from tui.gpu import Sampler

    sampler = Sampler()
    while not stop.wait(0.5):
        reading = sampler.sample()
        if reading.gpus:
            readings.append(float(reading.gpus[0].util_pct))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--modes", default="fp32,fp32+graphs,bf16,bf16+graphs,fp16",
                        help="precision, +graphs for the captured step (trainer.cuda.graphs)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "demo.toml")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("not measured: no CUDA GPU available in this environment")
        return 2
    from trainer import config as config_mod
    from trainer.cuda.device import place
    from trainer.data import Batch
    from trainer.models.tacotron2 import build_model, compute_losses
    from trainer.text import get_language

    from trainer.cuda.graphs import GraphedStep, static_forward

    for mode in args.modes.split(","):
        precision, _, graphs = mode.partition("+")
        config = config_mod.load(args.config, ["model.preset=full", f"train.precision={precision}",
                                               f"train.batch_size={args.batch}"])
        placement = place(config, 0)
        use_graphs = graphs == "graphs"
        torch.manual_seed(0)
        n_symbols = len(get_language(config.data.language).symbols)
        model = build_model(config, n_symbols).to(placement.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=use_graphs)
        scaler = placement.grad_scaler()
        text_len, frames = 150, 800
        tokens = torch.randint(1, n_symbols, (args.batch, text_len), device=placement.device)
        text_lengths = torch.full((args.batch,), text_len, device=placement.device)
        text_lengths[1:] = torch.randint(text_len // 2, text_len, (args.batch - 1,))
        text_lengths, _ = torch.sort(text_lengths, descending=True)
        mels = torch.randn(args.batch, config.data.n_mels, frames, device=placement.device)
        mel_lengths = torch.randint(frames // 2, frames + 1, (args.batch,), device=placement.device)
        mel_lengths[0] = frames
        gates = (torch.arange(frames, device=placement.device)[None] >= (mel_lengths[:, None] - 1)).float()
        batch = Batch(tokens, text_lengths, mels, mel_lengths, gates)

        def device_step(b: Batch) -> None:
            optimizer.zero_grad(set_to_none=True)
            with placement.autocast():
                if use_graphs:
                    outputs = static_forward(model, b.tokens, b.text_lengths, b.mels, b.mel_lengths)
                else:
                    outputs = model(b.tokens, b.text_lengths, b.mels, b.mel_lengths)
            losses = compute_losses(outputs, b.mels, b.gates, b.text_lengths, b.mel_lengths,
                                    config.train.guided_attention_weight, config.train.guided_attention_sigma)
            scaler.scale(losses.total).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)
            scaler.update()

        graphed = GraphedStep(device_step, placement.device) if use_graphs else None

        def step() -> None:
            if graphed is not None:
                graphed.run(batch, "fixed")
            else:
                device_step(batch)

        warm_started = time.perf_counter()
        for _ in range(args.warmup):
            step()
        torch.cuda.synchronize()
        warm_s = time.perf_counter() - warm_started
        stop, readings = threading.Event(), []
        sampler = threading.Thread(target=sample_utilisation, args=(stop, readings), daemon=True)
        sampler.start()
        started = time.perf_counter()
        for _ in range(args.steps):
            step()
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
        stop.set()
        sampler.join()
        frames_per_s = float(mel_lengths.sum()) * args.steps / elapsed
        util = statistics.median(readings) if readings else float("nan")
        print(f"{mode:12} ({placement.precision}) batch {args.batch}: {elapsed / args.steps * 1000:7.1f} ms/step "
              f"{frames_per_s:10.0f} frames/s  GPU util median {util:.0f}% "
              f"(target >= 90%: {'MET' if util >= 90 else 'MISSED'})  warm-up {warm_s:.1f} s  "
              f"peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB on {torch.cuda.get_device_name()}",
              flush=True)
        del model, optimizer, graphed
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return 0


if __name__ == "__main__":
    sys.exit(main())
