"""Speak a sentence with an exported DC-TTS voice: `python -m trainer.models.dctts.speak EXPORT TEXT OUT.wav`.

EXPORT is the folder `voxtop export` wrote for a DC-TTS run (its `model.pt` holds both networks).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer.models.dctts.modules import SSRN, Sizes, Text2Mel


def load_export(folder: Path) -> dict[str, Any]:
    """The export's contents; ValueError naming the file when it is not a DC-TTS export."""
    path = Path(folder) / "model.pt"
    try:
        export = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist: give the folder `voxtop export` wrote") from None
    if not isinstance(export, dict) or export.get("format") != "voxtop-dctts":
        raise ValueError(f"{path} is not a DC-TTS export (format {export.get('format') if isinstance(export, dict) else '?'})")
    return export


def build_pair(export: dict[str, Any]) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(Text2Mel, SSRN) in eval mode from an export's two entries."""
    t, s = export["text2mel"], export["ssrn"]
    text2mel = Text2Mel(t["n_symbols"], t["n_mels"], Sizes(t["embedding"], t["hidden"], t["ssrn"]), t["dropout"])
    text2mel.load_state_dict(t["model"])
    ssrn = SSRN(s["n_mels"], s["n_linear"], s["channels"], s["dropout"])
    ssrn.load_state_dict(s["model"])
    return text2mel.eval(), ssrn.eval()


def speak(export: dict[str, Any], text: str) -> tuple[np.ndarray, int]:
    """(audio, sample rate) of `text` spoken by the exported pair."""
    from trainer.config import Config, DataConfig
    from trainer.models.dctts.network import Text2MelNetwork
    from trainer.text import get_language

    config = Config(data=DataConfig(sample_rate=export["sample_rate"], n_fft=export["n_fft"],
                                    hop=export["hop_length"], win=export["win_length"], n_mels=export["n_mels"],
                                    fmin=export["fmin"], fmax=export["fmax"], language=export["language"]))
    language = get_language(export["language"])
    tokens = language.to_ids(text)
    if not tokens:
        raise ValueError(f"{text!r} has no character of the {language.name} alphabet to speak")
    text2mel, ssrn = build_pair(export)
    rendering = Text2MelNetwork(config).render(text2mel, tokens, torch.device("cpu"),
                                               end_at=language.last_spoken(tokens), companion=ssrn)
    return rendering.audio, rendering.sample_rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.models.dctts.speak", description=__doc__.splitlines()[0])
    parser.add_argument("export", type=Path)
    parser.add_argument("text")
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    import soundfile

    try:
        audio, rate = speak(load_export(args.export), args.text)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    soundfile.write(str(args.out), audio, rate, subtype="PCM_16")
    print(f"{args.out}: {len(audio) / rate:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
