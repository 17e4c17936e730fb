"""The model registry: `[model] name` and `network` pick a network; every network keeps the interface."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainer import config as cfg
from trainer.models import MODELS, load_network, network_name
from trainer.models.base import Network


def config_of(**model: str) -> cfg.Config:
    return cfg.from_dict({"data": {"dataset": "x"}, "model": {"preset": "tiny", **model}})


def test_tacotron2_is_the_default_and_dctts_needs_a_network() -> None:
    assert network_name(config_of()) == "tacotron2"
    assert load_network(config_of()).name == "tacotron2"
    with pytest.raises(ValueError, match=r"\[model\] network"):
        load_network(config_of(name="dctts"))
    assert load_network(config_of(name="dctts", network="text2mel")).name == "text2mel"
    assert load_network(config_of(name="dctts", network="ssrn")).name == "ssrn"


def test_an_unknown_model_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[data]\ndataset = "x"\n[model]\nname = "wavenet"\n')
    with pytest.raises(cfg.ConfigError) as caught:
        cfg.load(path)
    assert "model.name" in str(caught.value) and "'dctts'" in str(caught.value)


@pytest.mark.parametrize("model,network", [(m, n) for m, networks in MODELS.items() for n in networks])
def test_every_network_keeps_the_interface(model: str, network: str) -> None:
    net = load_network(config_of(name=model, network=network if model != "tacotron2" else ""))
    assert isinstance(net, Network) and net.name == network
    assert set(net.val_terms) <= set(net.terms) and set(net.log_labels) <= set(net.terms)
    built = net.build(40)
    assert isinstance(built, torch.nn.Module) and sum(p.numel() for p in built.parameters()) > 0
    assert net.export_format.startswith("voxtop-")
    assert net.checkpoint_bytes() > 12 * sum(p.numel() for p in built.parameters())


def test_full_presets_are_the_papers_sizes() -> None:
    """DC-TTS `full`: e = 128, d = 256 (Text2Mel), c = 512 (SSRN); F' = n_fft / 2 + 1."""
    t2m = load_network(cfg.from_dict({"data": {"dataset": "x"}, "model": {"name": "dctts", "network": "text2mel"}}))
    ssrn = load_network(cfg.from_dict({"data": {"dataset": "x"}, "model": {"name": "dctts", "network": "ssrn"}}))
    text2mel = t2m.build(40)
    assert text2mel.text_enc.embedding.embedding_dim == 128
    assert text2mel.audio_enc.layers[0].out_channels == 256
    model = ssrn.build(40)
    assert model.layers[0].out_channels == 512 and model.layers[-1].out_channels == 513


def test_each_model_has_its_own_parameters() -> None:
    """What the Parameters form hides for a model: only keys that exist, only models that exist."""
    keys = {info.key for info in cfg.schema()}
    assert set(cfg.MODEL_ONLY) <= keys
    assert all(set(models) <= set(MODELS) for models in cfg.MODEL_ONLY.values())
    assert not cfg.applies_to("model.frames_per_step", "dctts") and cfg.applies_to("model.frames_per_step", "tacotron2")
    assert cfg.applies_to("model.network", "dctts") and not cfg.applies_to("model.network", "tacotron2")
    assert cfg.applies_to("train.epochs", "dctts") and cfg.applies_to("train.guided_attention_weight", "dctts")
