"""`voxtop export`: one checkpoint as a weights-only model folder for synthesis elsewhere.

The folder holds `model.pt` (only tensors, lists, strings and numbers, so
`torch.load(..., weights_only=True)` reads it and it can run no code), the training
`config.toml`, the `alphabet.txt` of symbol ids and a `README.txt` on loading it with
torchaudio's Tacotron2. The same `model.pt` works as `train.pretrained` for a warm start.

A DC-TTS voice is a pair of runs: exporting either run writes both networks into one `model.pt`
(format `voxtop-dctts`; this run's chosen checkpoint, the other run's recommended one), which
`python -m trainer.models.dctts.speak` reads.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.rundir import RunDir, RunError
from trainer.rundir.queries import checkpoint_table

FORMAT = "voxtop-tacotron2"  # Tacotron2's; each network names its own (`Network.export_format`)
FORMAT_VERSION = 1


class ExportError(Exception):
    """An export that cannot be done as asked; the message says why and what to do."""


@dataclass(frozen=True)
class ExportResult:
    out: Path
    checkpoint: Path
    step: int
    reason: str  # why this checkpoint: "chosen", "recommended", "newest"


def choose_checkpoint(run: RunDir, requested: str | None = None) -> tuple[Path, str]:
    """(checkpoint path, why it was chosen): `requested`, else the recommended one, else the newest.

    The recommended one is the checkpoint query's (`trainer.rundir.queries.checkpoint_table`), as
    `voxtop checkpoints` and the Monitor show it: the one that reads its held-out sentences through
    best, then the lowest val loss.
    """
    if requested:
        try:
            chosen = run.resolve_checkpoint(requested)
        except RunError as exc:
            raise ExportError(str(exc)) from None
        assert chosen is not None  # a name was given
        return chosen, "chosen"
    table = checkpoint_table(run)
    if not table.rows:
        raise ExportError(f"{run.path} has no checkpoints yet; let it train to its first checkpoint")
    if table.recommended is not None:
        return table.path_of(table.recommended) or table.rows[0].path, f"recommended: {table.recommended_reason}"
    return table.rows[0].path, "newest: no checkpoint has a validation loss or a health check"


def export_run(run: RunDir, out: Path, requested: str | None = None) -> ExportResult:
    """Write the export folder `out` (refusing a non-empty one), atomically: all of it or nothing."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} already exists and is not empty; choose a new folder or remove it")
    path, reason = choose_checkpoint(run, requested)
    import tomli_w
    import torch

    from trainer import config as config_mod
    from trainer.models import load_network

    state, config, symbols, step, payload = _read_checkpoint(path)
    network = load_network(config_mod.from_dict(config_mod.upgrade_run_config(config)))
    data = config["data"]
    model = {
        "format": network.export_format, "format_version": FORMAT_VERSION,
        "model": state, "symbols": symbols, "language": str(payload.get("language", data["language"])),
        **network.export_fields(len(symbols)),
        "n_mels": int(data["n_mels"]), "sample_rate": int(data["sample_rate"]),
        "n_fft": int(data["n_fft"]), "hop_length": int(data["hop"]), "win_length": int(data["win"]),
        "fmin": float(data["fmin"]), "fmax": float(data["fmax"]),
        "step": step, "run": run.name, "checkpoint": path.name,
    }
    if network.export_format == "voxtop-dctts":  # a voice is the pair: Text2Mel and SSRN in one model.pt
        model = _dctts_pair(run, model, network.name, config)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        torch.save(model, staging / "model.pt")
        (staging / "config.toml").write_text(tomli_w.dumps(config), encoding="utf-8")
        (staging / "alphabet.txt").write_text(alphabet_text(symbols, model["language"]), encoding="utf-8")
        readme = dctts_readme(model, out.name) if model["format"] == "voxtop-dctts" else readme_text(model, out.name)
        (staging / "README.txt").write_text(readme, encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(out, path, step, reason)


def _read_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any], list[str], int, dict[str, Any]]:
    """(weights on the CPU, config, symbols, step, payload) of a checkpoint; ExportError if unreadable."""
    from trainer import checkpoints

    try:
        payload = checkpoints.load(path)
        state = {key.removeprefix("module."): tensor.detach().cpu().contiguous()
                 for key, tensor in payload["model"].items()}
        return state, payload["config"], list(payload["symbols"]), int(payload["progress"]["step"]), payload
    except (KeyError, TypeError, AttributeError) as exc:
        raise ExportError(f"{path} is not a voxtop checkpoint (missing {exc})") from None
    except Exception as exc:  # unpickling errors of a damaged file
        raise ExportError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None


def _dctts_pair(run: RunDir, exported: dict[str, Any], network: str, config: dict[str, Any]) -> dict[str, Any]:
    """A DC-TTS export: this run's network and the other one of its pair (its recommended checkpoint)."""
    from trainer import config as config_mod
    from trainer.models import load_network

    pair = str(config["model"].get("pair", ""))
    other_name = "ssrn" if network == "text2mel" else "text2mel"
    other_run = RunDir(run.path.parent / pair) if pair else None
    if other_run is None or not other_run.path.is_dir():
        raise ExportError(f"{run.path} is the {network} of a DC-TTS voice, but its pair "
                          f"({'[model] pair is empty' if not pair else run.path.parent / pair}) is not there; "
                          f"a DC-TTS voice needs both networks: train the {other_name} run, then export")
    other_path, _ = choose_checkpoint(other_run)
    state, other_config, _, other_step, _ = _read_checkpoint(other_path)
    other = load_network(config_mod.from_dict(config_mod.upgrade_run_config(other_config)))
    exported = dict(exported)
    own = {"model": exported.pop("model"), "step": exported.pop("step"), "run": exported.pop("run"),
           "checkpoint": exported.pop("checkpoint")}
    theirs = {"model": state, "step": other_step, "run": other_run.name, "checkpoint": other_path.name}
    exported[network] = {**exported[network], **own}
    exported[other_name] = {**other.export_fields(len(exported["symbols"]))[other_name], **theirs}
    exported["step"], exported["run"] = exported["text2mel"]["step"], exported["text2mel"]["run"]
    exported["checkpoint"] = exported["text2mel"]["checkpoint"]
    return exported


def dctts_readme(model: dict[str, Any], folder: str) -> str:
    t2m, ssrn = model["text2mel"], model["ssrn"]
    return textwrap.dedent(f"""\
        voxtop export of a DC-TTS voice: Text2Mel of run {t2m['run']} at step {t2m['step']} ({t2m['checkpoint']})
        and SSRN of run {ssrn['run']} at step {ssrn['step']} ({ssrn['checkpoint']}), {model['sample_rate']} Hz.

        model.pt     both networks' weights and sizes as plain tensors, lists, strings and numbers:
                     load it with torch.load(..., weights_only=True)
        config.toml  the Text2Mel run's training config
        alphabet.txt symbol ids of the text input; id 0 is padding

        Text2Mel predicts every 4th mel frame, SSRN the linear magnitude, both in [0, 1]
        (decibels normalised; trainer/models/dctts/features.py). To speak with voxtop's code:

            python -m trainer.models.dctts.speak {folder} "hello world." speech.wav
        """)


def alphabet_text(symbols: list[str], language: str) -> str:
    lines = [f"# symbol ids of the model's text input (language {language}): id<TAB>symbol",
             "# texts are lower-cased, numbers spelled out, other characters dropped (trainer/text.py)"]
    for i, symbol in enumerate(symbols):
        label = "\t(padding)" if i == 0 else "\t(space)" if symbol == " " else ""
        lines.append(f"{i}\t{symbol}{label}")
    return "\n".join(lines) + "\n"


def readme_text(model: dict[str, Any], folder: str) -> str:
    return textwrap.dedent(f"""\
        voxtop export of run {model['run']}, step {model['step']} ({model['checkpoint']}):
        a Tacotron2 with {model['tacotron2']['n_symbol']} symbols and {model['n_mels']} mels at {model['sample_rate']} Hz.

        model.pt     the weights and everything needed to rebuild the model, as plain tensors,
                     lists, strings and numbers: load it with torch.load(..., weights_only=True)
        config.toml  the training config
        alphabet.txt symbol ids of the text input; id 0 is padding

        The model predicts log mel spectrograms: log(max(mel, 1e-5)) of a slaney-scale mel
        magnitude (power 1) with n_fft {model['n_fft']}, hop {model['hop_length']}, \
win {model['win_length']}, fmin {model['fmin']:g}, fmax {model['fmax']:g}.
        Turn them into audio with a vocoder trained on the same features, or with Griffin-Lim
        as below (rough, but enough to hear the voice). To fine-tune from this model, set
        train.pretrained = "/path/to/{folder}/model.pt" in a voxtop config.

        Synthesis with torchaudio (run next to the {folder} folder; needs torch, torchaudio, soundfile):

        import soundfile, torch, torchaudio
        export = torch.load("{folder}/model.pt", weights_only=True)
        model = torchaudio.models.Tacotron2(**export["tacotron2"])
        model.load_state_dict(export["model"])
        model.eval()
        symbols = export["symbols"]
        text = "hello world."  # lower case; spell out numbers; other characters are dropped
        ids = torch.tensor([[symbols.index(ch) for ch in text if ch in symbols]])
        with torch.no_grad():
            mel, mel_lengths, alignments = model.infer(ids)
            # end on silence (log of the 1e-5 floor): Griffin-Lim needs a few frames, and a barely
            # trained model may stop after one or two
            mel = torch.nn.functional.pad(mel, (0, 8), value=-11.5129)
            to_linear = torchaudio.transforms.InverseMelScale(
                n_stft=export["n_fft"] // 2 + 1, n_mels=export["n_mels"], sample_rate=export["sample_rate"],
                f_min=export["fmin"], f_max=export["fmax"], norm="slaney", mel_scale="slaney")
            griffin_lim = torchaudio.transforms.GriffinLim(
                n_fft=export["n_fft"], win_length=export["win_length"], hop_length=export["hop_length"], power=1.0)
            audio = griffin_lim(to_linear(mel[0].exp()))
        soundfile.write("speech.wav", (0.9 * audio / audio.abs().max()).numpy(), export["sample_rate"])
        """)
