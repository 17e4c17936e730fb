"""The model registry: `[model] name` picks a folder here, `[model] network` one of its networks.

Every network implements `trainer.models.base.Network`. Importing this package does not import
torch; `load_network` imports the chosen model's module.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

#: Model name -> its networks, each as (network name, "module:class"). A model of several networks is
#: trained as linked runs, one per network (DC-TTS: Text2Mel and SSRN).
MODELS: dict[str, dict[str, str]] = {
    "tacotron2": {"tacotron2": "trainer.models.tacotron2.network:Tacotron2Network"},
    "dctts": {"text2mel": "trainer.models.dctts.network:Text2MelNetwork",
              "ssrn": "trainer.models.dctts.network:SSRNNetwork"},
}


def network_name(config: Any) -> str:
    """The network a run of `config` trains; ValueError naming `[model] network` when it is ambiguous."""
    networks = MODELS[config.model.name]
    if len(networks) == 1:
        return next(iter(networks))
    chosen = config.model.network
    if chosen not in networks:
        raise ValueError(f"[model] name = {config.model.name!r} trains {len(networks)} networks "
                         f"({', '.join(networks)}) as a pair of runs; one run trains one of them: set "
                         f"[model] network to one of {', '.join(repr(n) for n in networks)} "
                         "(voxtop train starts both when it is empty)")
    return chosen


def load_network(config: Any) -> Any:
    """The `Network` of a run's config (imports torch and the model's module)."""
    module_name, _, class_name = MODELS[config.model.name][network_name(config)].partition(":")
    return getattr(import_module(module_name), class_name)(config)
