"""Read-through health records as the trainer writes them, for tests of everything that reads them."""

from __future__ import annotations

from typing import Any

from tui_helpers import FakeRun

SENTENCES = [
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.", "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
]


def health_record(step: int, read_through: int, understood: int | None, sentences: int = 12,
                  heard: dict[int, str] | None = None, wer: float | None = 0.71) -> dict[str, Any]:
    """A `health` record for the checkpoint at `step` (without `t`/`kind`): the first `read_through`
    sentences read through, the first `understood` understood; `heard` overrides what was heard."""
    folder = f"health/step-{step:08d}"
    items = []
    for index in range(sentences):
        text = SENTENCES[index % len(SENTENCES)]
        reads = index < read_through
        said = text.lower().rstrip(".") if understood is not None and index < understood else \
            " ".join(text.lower().split()[:3])  # misheard: the recogniser caught the first words only
        recognised = None if understood is None else (heard or {}).get(index, said)
        items.append({
            "text": text, "reached_end": reads, "stopped": reads, "stop": "gate" if reads else "limit",
            "frames": 140, "expected_frames": 151.2, "length_ratio": 0.93 if reads else 2.5,
            "monotonicity": 0.99, "skipped": 0, "repeated": 0, "diagonality": 0.95,
            "heard": recognised, "chosen": text if understood is not None and index < understood else None,
            "understood": None if understood is None else index < understood,
            "wer": None if understood is None else (0.0 if index < understood else 1.0),
            "wav": f"{folder}/{index:02d}.wav", "alignment": f"{folder}/{index:02d}.npy"})
    return {"checkpoint": f"checkpoints/step-{step:08d}.pt", "sentences": sentences,
            "reached_end": read_through, "stopped": read_through, "monotonic": sentences,
            "read_through": read_through, "understood": understood, "wer": wer if understood is not None else None,
            "monotonicity": 0.985, "length_ratio": 0.93, "diagonality": 0.91,
            "recogniser": "pocketsphinx 5.1.1 (en-us)" if understood is not None else None,
            "elapsed_s": 21.4, "items": items}


def write_health(fake: FakeRun, step: int, read_through: int, understood: int | None, /, **fields: Any) -> None:
    """Append the health record of checkpoint `step` to the fake run's metrics.jsonl; `fields` override its keys."""
    record = health_record(step, read_through, understood)
    record.update(fields)
    fake.record("health", step, **record)
