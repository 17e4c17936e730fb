"""Write the synthetic curves of the overtraining detector's labelled set (fixed seeds, stdlib only).

    .venv/bin/python tests/curves/make_synthetic.py

Each curve is noise-free shape times seeded Gaussian noise; `label` is the evaluation index where
the noise-free val loss is lowest before it rises for good (null when it never does), so the label
does not depend on the detector. The real-run curves (real-*.json) come from bench/overtrain_eval.py
--extract instead and are not rewritten here.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
EVAL_EVERY = 100  # steps between evaluations


def attention(n: int, rng: random.Random, top: float = 0.55, collapse_at: int | None = None) -> list[float]:
    """An attention score rising from ~0.1 to `top`, optionally falling to ~0.08 from `collapse_at`."""
    scores = []
    for t in range(n):
        clean = 0.1 + (top - 0.1) * (1 - math.exp(-t / 6))
        if collapse_at is not None and t >= collapse_at:
            clean = 0.08 + (clean - 0.08) * math.exp(-(t - collapse_at) / 1.5)
        scores.append(max(0.0, clean + rng.gauss(0, 0.02)))
    return scores


def val_noise(rng: random.Random, shape: str) -> float:
    """One unit-variance noise draw: Gaussian, or Student's t with 3 degrees of freedom (`t3`, heavy tails)."""
    if shape == "t3":
        return rng.gauss(0, 1) / math.sqrt(sum(rng.gauss(0, 1) ** 2 for _ in range(3)) / 3) / math.sqrt(3)
    return rng.gauss(0, 1)


def curve(name: str, kind: str, description: str, seed: int, n: int, val_clean, train_clean,
          noise: float, spikes: dict[int, float] | None = None, collapse_at: int | None = None,
          rises_for_good: bool = True, noise_shape: str = "gauss", noise_rho: float = 0.0,
          train_wander: float = 0.0) -> dict:
    """One labelled curve; `noise_rho` makes the val noise AR(1) (same variance), `train_wander` lets the
    train loss wander (relative AR(1) drift, innovations of that size) instead of falling steadily."""
    rng = random.Random(seed)
    clean = [val_clean(t) for t in range(n)]
    label = min(range(n), key=lambda t: clean[t]) if rises_for_good else None
    scores = attention(n, rng, collapse_at=collapse_at)
    evaluations = []
    previous, drift = 0.0, 0.0
    for t in range(n):
        if noise_shape == "gauss" and not noise_rho:
            deviation = rng.gauss(0, noise)  # the original draw, so older curves stay byte-identical
        else:
            previous = noise_rho * previous + math.sqrt(1 - noise_rho ** 2) * val_noise(rng, noise_shape)
            deviation = noise * previous
        val = clean[t] * (1 + deviation) * (spikes or {}).get(t, 1.0)
        if train_wander:
            drift = 0.9 * drift + rng.gauss(0, train_wander)
        train = train_clean(t) * (1 + drift + rng.gauss(0, noise * 1.5))
        evaluations.append({"step": (t + 1) * EVAL_EVERY, "val_loss": round(val, 6),
                            "train_loss": round(train, 6), "attention_score": round(scores[t], 4)})
    checkpoints = {str(e["step"]): e["val_loss"] for e in evaluations[4::5]}  # a checkpoint every 5 evals
    shape = ("" if noise_shape == "gauss" else f" {noise_shape}") + (f" AR(1) {noise_rho}" if noise_rho else "")
    return {"name": name, "kind": kind, "label": label, "collapse": collapse_at, "description": description,
            "source": f"synthetic, seed {seed}, noise {noise:.1%}{shape} relative", "evaluations": evaluations,
            "checkpoints": checkpoints}


def decay(start: float, floor: float, tau: float):
    return lambda t: floor + (start - floor) * math.exp(-t / tau)


def u_shape(start: float, floor: float, tau: float, turn: int, rate: float, power: float = 1.5):
    """Decay to a floor, then a rise of `rate` (relative to floor) per evaluation**power after `turn`."""
    base = decay(start, floor, tau)
    return lambda t: base(t) + floor * rate * max(0, t - turn) ** power


def build() -> list[dict]:
    curves = []
    onset_cases = [  # (seed, evaluations, tau, turn, rate, power, noise)
        (1, 60, 5, 25, 0.004, 1.5, 0.005),
        (2, 60, 5, 25, 0.004, 1.5, 0.01),
        (3, 70, 6, 30, 0.003, 1.5, 0.02),
        (4, 70, 4, 20, 0.01, 1.0, 0.03),
        (5, 80, 8, 35, 0.002, 1.5, 0.01),
        (6, 50, 3, 15, 0.02, 1.0, 0.02),
        (7, 90, 10, 45, 0.0015, 1.6, 0.015),
        (8, 70, 5, 28, 0.006, 1.2, 0.04),
    ]
    for seed, n, tau, turn, rate, power, noise in onset_cases:
        curves.append(curve(f"onset-{seed:02d}", "synthetic-onset",
                            f"U-shaped val loss: decay (tau {tau}) then a rise after evaluation {turn}",
                            seed, n, u_shape(3.0, 0.8, tau, turn, rate, power), decay(3.0, 0.2, 15), noise))
    for seed, noise in [(11, 0.005), (12, 0.01), (13, 0.02), (14, 0.03), (15, 0.05)]:
        curves.append(curve(f"plateau-{seed}", "noisy-plateau",
                            "val loss flattens and stays flat for a long time while train loss keeps falling",
                            seed, 150, decay(3.0, 0.9, 6), decay(3.0, 0.15, 30), noise, rises_for_good=False))
    guards = [  # noisier ones, as from a real 2-clip validation set: (seed, noise, what, options)
        (16, 0.08, "val noise 8% of the level", {}),
        (17, 0.05, "train loss wandering up and down by ~10% instead of falling steadily", {"train_wander": 0.04}),
        (18, 0.05, "heavy-tailed val noise (Student's t, 3 degrees of freedom)", {"noise_shape": "t3"}),
        (19, 0.03, "autocorrelated val noise, AR(1) 0.5 (a fixed validation set under a slowly changing model)",
         {"noise_rho": 0.5}),
        (20, 0.08, "autocorrelated val noise, AR(1) 0.5, 8% of the level", {"noise_rho": 0.5}),
    ]
    for seed, noise, what, options in guards:
        curves.append(curve(f"plateau-{seed}", "noisy-plateau", f"val loss flattens and stays flat: {what}",
                            seed, 150, decay(3.0, 0.9, 6), decay(3.0, 0.15, 30), noise, rises_for_good=False,
                            **options))
    curves.append(curve("onset-09", "synthetic-onset",
                        "U-shaped val loss: decay (tau 6) then a rise after evaluation 30, with AR(1) 0.5 val noise",
                        9, 80, u_shape(3.0, 0.8, 6, 30, 0.004, 1.5), decay(3.0, 0.2, 15), 0.02, noise_rho=0.5))
    for seed, noise in [(21, 0.01), (22, 0.02), (23, 0.04)]:
        curves.append(curve(f"slow-{seed}", "slow-improvement",
                            "val loss keeps improving slowly (0.2% per evaluation) with noise",
                            seed, 120, lambda t: 1.5 * 0.998 ** t, decay(2.0, 0.3, 40), noise,
                            rises_for_good=False))
    spike_cases = [(31, {20: 1.6}, 0.01), (32, {15: 2.0, 40: 1.5}, 0.01), (33, {25: 1.4, 26: 1.3}, 0.01),
                   (34, {30: 3.0}, 0.01), (35, {30: 4.0}, 0.003), (36, {35: 2.0, 36: 1.8}, 0.003)]
    for seed, spikes, noise in spike_cases:
        curves.append(curve(f"spikes-{seed}", "spikes",
                            f"improving val loss with single bad evaluations at {sorted(spikes)}",
                            seed, 60, decay(3.0, 0.8, 12), decay(3.0, 0.2, 15), noise, spikes=spikes,
                            rises_for_good=False))
    for seed, dips, noise in [(71, {40: 0.8}, 0.02), (72, {50: 0.7, 51: 0.8}, 0.05)]:
        curves.append(curve(f"dips-{seed}", "dips",
                            f"flat val loss with unusually low single evaluations at {sorted(dips)}: no minimum "
                            f"to rise from", seed, 100, decay(3.0, 0.9, 6), decay(3.0, 0.15, 30), noise,
                            spikes=dips, rises_for_good=False))
    for seed, rise in [(41, 0.008), (42, 0.012)]:
        curves.append(curve(f"small-rise-{seed}", "late-small-rise",
                            f"val loss bottoms out, then drifts up {rise:.1%} in all (within the 2% tolerance)",
                            seed, 80, lambda t, r=rise: (0.8 + 2.2 * math.exp(-t / 5)) * (1 + r * min(1, max(0, t - 40) / 30)),
                            decay(3.0, 0.2, 15), 0.002, rises_for_good=False))
    curves.append(curve("both-rising-51", "both-rising",
                        "val and train loss rise together (instability, not overtraining): a plateau",
                        51, 60, u_shape(3.0, 0.8, 5, 25, 0.004, 1.5), u_shape(3.0, 0.3, 5, 25, 0.006, 1.5), 0.005,
                        rises_for_good=False))
    for seed, at in [(61, 30), (62, 45)]:
        curves.append(curve(f"collapse-{seed}", "attention-collapse",
                            f"val loss improving while the attention score collapses from evaluation {at}",
                            seed, 70, decay(3.0, 0.8, 10), decay(3.0, 0.2, 15), 0.01, collapse_at=at,
                            rises_for_good=False))
    return curves


def main() -> None:
    for item in build():
        (HERE / f"{item['name']}.json").write_text(json.dumps(item, indent=1) + "\n")
        print(item["name"], item["kind"], "label", item["label"])


if __name__ == "__main__":
    main()
