"""Seconds per training step of Tacotron2, Text2Mel and SSRN on the demo dataset, interleaved.

    OMP_NUM_THREADS=1 .venv/bin/python bench/dctts_step.py --steps 15 --rounds 3

Each network is built from its demo config (configs/demo.toml, configs/demo_dctts.toml: tiny preset,
batch 16) and trained for `--steps` steps per round through the registry's interface (forward, losses,
backward, gradient clipping, Adam), the three taking turns for `--rounds` rounds so a shared machine's
load falls on all of them alike. Prints the median seconds per step and mel frames per second of each,
and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup(config_path: Path, overrides: list[str]) -> dict:
    import torch

    from trainer import config as config_mod
    from trainer.data import epoch_permutation, split_clips
    from trainer.dataset import load_clips
    from trainer.features import FeatureCache
    from trainer.models import load_network
    from trainer.text import get_language

    config = config_mod.load(config_path, overrides)
    language = get_language(config.data.language)
    clips = load_clips(config.data.dataset, config.data.language, config.data.sample_rate, config.data.resample)
    train, _ = split_clips(clips, config.data.val_fraction, config.data.seed, config.data.fraction)
    cache = FeatureCache(config.data)
    cache.build(train)
    network = load_network(config)
    clip_set = network.clip_set(train, language, cache, training=True)
    torch.manual_seed(config.train.seed)
    model = network.build(len(language.symbols))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.learning_rate, **network.adam)
    order = epoch_permutation(len(clip_set), config.train.seed, 0)
    batch_size = config.train.batch_size
    return {"name": network.name, "network": network, "model": model, "optimizer": optimizer, "set": clip_set,
            "order": order, "batch": batch_size, "times": [], "frames": [], "offset": 0}


def step(entry: dict) -> None:
    import torch

    order, size = entry["order"], entry["batch"]
    start = entry["offset"] % max(1, len(order) - size)
    entry["offset"] += size
    batch = entry["set"].batch(order[start:start + size])
    began = time.perf_counter()
    outputs = entry["network"].forward(entry["model"], batch)
    losses = entry["network"].losses(outputs, batch)
    entry["optimizer"].zero_grad(set_to_none=True)
    losses.total.backward()
    torch.nn.utils.clip_grad_norm_(entry["model"].parameters(), 1.0)
    entry["optimizer"].step()
    elapsed = time.perf_counter() - began
    entry["times"].append(elapsed)
    entry["frames"].append(batch.frames() / elapsed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    load_before = os.getloadavg()
    configs = ROOT / "configs"
    entries = [setup(configs / "demo.toml", []),
               setup(configs / "demo_dctts.toml", ["model.network=text2mel"]),
               setup(configs / "demo_dctts.toml", ["model.network=ssrn"])]
    for entry in entries:  # warm-up, not timed
        step(entry)
        entry["times"].clear()
        entry["frames"].clear()
    for _ in range(args.rounds):
        for entry in entries:
            for _ in range(args.steps):
                step(entry)
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} (2 cores), "
          f"{torch.get_num_threads()} torch thread(s), batch 16, tiny presets")
    for entry in entries:
        times = entry["times"]
        print(f"{entry['name']:>9}: {statistics.median(times):.3f} s/step (min {min(times):.3f}, "
              f"{len(times)} steps), {statistics.median(entry['frames']):.0f} mel frames/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
