"""`voxtop export`: one checkpoint as a weights-only model folder for synthesis elsewhere.

The folder holds `model.pt` (only tensors, lists, strings and numbers, so
`torch.load(..., weights_only=True)` reads it and it can run no code), the training
`config.toml`, the `alphabet.txt` of symbol ids and a `README.txt` on loading it with
torchaudio's Tacotron2. The same `model.pt` works as `train.pretrained` for a warm start.
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

FORMAT = "voxtop-tacotron2"
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

    from trainer import checkpoints
    from trainer import config as config_mod
    from trainer.models.tacotron2 import model_kwargs

    try:
        payload = checkpoints.load(path)
        state = {key.removeprefix("module."): tensor.detach().cpu().contiguous()
                 for key, tensor in payload["model"].items()}
        config, symbols, step = payload["config"], list(payload["symbols"]), int(payload["progress"]["step"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise ExportError(f"{path} is not a voxtop checkpoint (missing {exc})") from None
    except Exception as exc:  # unpickling errors of a damaged file
        raise ExportError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    data = config["data"]
    model = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "model": state, "symbols": symbols, "language": str(payload.get("language", data["language"])),
        "tacotron2": model_kwargs(config_mod.from_dict(config_mod.upgrade_run_config(config)), len(symbols)),
        "n_mels": int(data["n_mels"]), "sample_rate": int(data["sample_rate"]),
        "n_fft": int(data["n_fft"]), "hop_length": int(data["hop"]), "win_length": int(data["win"]),
        "fmin": float(data["fmin"]), "fmax": float(data["fmax"]),
        "step": step, "run": run.name, "checkpoint": path.name,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        torch.save(model, staging / "model.pt")
        (staging / "config.toml").write_text(tomli_w.dumps(config), encoding="utf-8")
        (staging / "alphabet.txt").write_text(alphabet_text(symbols, model["language"]), encoding="utf-8")
        (staging / "README.txt").write_text(readme_text(model, out.name), encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(out, path, step, reason)


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
