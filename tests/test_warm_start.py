"""Warm start from NVIDIA's published Tacotron2 format and from voxtop files; hostile files refused."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from trainer import config as cfg
from trainer.models.tacotron2 import (NVIDIA_N_SYMBOLS, NVIDIA_SYMBOLS, PretrainedError, build_model,
                                      read_pretrained, warm_start)
from trainer.text import get_language

WRAPPED = ("encoder.convolutions.", "postnet.convolutions.")


def nvidia_key(key: str) -> str:
    """torchaudio name → NVIDIA's: conv layers wrapped in `.conv`, linear ones in `.linear_layer`."""
    parts = key.split(".")
    if key.startswith(WRAPPED) and parts[3] == "0":
        parts.insert(4, "conv")
    elif key.startswith("decoder.attention_layer.location_layer.location_conv"):
        parts.insert(4, "conv")
    elif (key.startswith(("decoder.prenet.layers.", "decoder.linear_projection", "decoder.gate_layer",
                          "decoder.attention_layer.")) and not key.startswith(
            "decoder.attention_layer.location_layer.location_conv")):
        parts.insert(len(parts) - 1, "linear_layer")
    return "module." + ".".join(parts)


def tiny_config() -> cfg.Config:
    return cfg.from_dict({"model": {"preset": "tiny"}})


def make_nvidia_file(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(7)
    source = build_model(tiny_config(), NVIDIA_N_SYMBOLS)
    state = {nvidia_key(k): v.clone() for k, v in source.state_dict().items()}
    path = tmp_path / "tacotron2_statedict.pt"
    torch.save({"state_dict": state, "iteration": 1000, "optimizer": {}, "learning_rate": 1e-3}, path)
    return path, source.state_dict()


def test_nvidia_keys_look_like_nvidias(tmp_path: Path) -> None:
    path, _ = make_nvidia_file(tmp_path)
    keys = torch.load(path, weights_only=True)["state_dict"].keys()
    assert "module.encoder.convolutions.0.0.conv.weight" in keys
    assert "module.decoder.attention_layer.query_layer.linear_layer.weight" in keys
    assert "module.decoder.attention_layer.location_layer.location_conv.conv.weight" in keys
    assert "module.decoder.prenet.layers.0.linear_layer.weight" in keys


def test_warm_start_from_nvidia_format(tmp_path: Path) -> None:
    path, source = make_nvidia_file(tmp_path)
    symbols = get_language("de").symbols
    torch.manual_seed(99)
    model = build_model(tiny_config(), len(symbols))
    notes = warm_start(model, path, symbols)
    target = model.state_dict()
    assert notes[0].startswith(f"warm start from {path}")
    for key, value in source.items():
        if key != "embedding.weight":
            assert torch.equal(target[key], value), key
    # Shared symbols carry their rows over; German-only letters keep fresh rows.
    for symbol in "ab ,.":
        assert torch.equal(target["embedding.weight"][symbols.index(symbol)],
                           source["embedding.weight"][NVIDIA_SYMBOLS.index(symbol)])
    assert not torch.equal(target["embedding.weight"][symbols.index("ä")],
                           source["embedding.weight"][0])
    assert any("embedding: copied" in note for note in notes)


def test_warm_start_skips_layers_of_another_shape(tmp_path: Path) -> None:
    path, _ = make_nvidia_file(tmp_path)
    config = cfg.from_dict({"model": {"preset": "tiny"}, "data": {"n_mels": 40}})
    model = build_model(config, len(get_language("en").symbols))
    notes = warm_start(model, path, get_language("en").symbols)
    assert any("skipped decoder.linear_projection.weight: shape" in note for note in notes)


def test_warm_start_from_a_voxtop_checkpoint(tmp_path: Path) -> None:
    symbols = get_language("en").symbols
    source = build_model(tiny_config(), len(symbols))
    path = tmp_path / "voxtop.pt"
    torch.save({"model": source.state_dict(), "symbols": symbols}, path)
    model = build_model(tiny_config(), len(symbols))
    warm_start(model, path, symbols)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in source.state_dict().items())


class Exploit:
    def __reduce__(self):
        return (Path.touch, (Path(__file__).parent / "pwned",))


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = Path(__file__).parent / "pwned"
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as handle:
        pickle.dump({"state_dict": Exploit()}, handle)
    with pytest.raises(PretrainedError, match="refusing to load .*evil.pt: it is not a plain weights file"):
        read_pretrained(evil)
    assert not marker.exists()


def test_missing_pretrained_file_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(PretrainedError, match=r"does not exist \(train.pretrained\)"):
        read_pretrained(tmp_path / "nope.pt")


def test_griffin_lim_survives_a_decoder_that_stops_at_once() -> None:
    import numpy as np

    from trainer.config import DataConfig
    from trainer.synth import GriffinLim

    vocoder = GriffinLim(DataConfig())
    for frames in (1, 2, 5):
        audio = vocoder(np.full((80, frames), -5.0, dtype=np.float32))
        assert audio.ndim == 1 and len(audio) >= 256
