"""Read-through health of a checkpoint: does it speak held-out sentences, to the end, and stop?

Loss and attention score do not answer whether a checkpoint speaks. At every checkpoint the
trainer starts this module as a worker process (`python -m trainer.health RUN_DIR`, on the CPU,
niced, one thread) once the checkpoint file is safe. For each checkpoint that has no result yet,
newest first, it renders a few held-out sentences free-running (no teacher forcing, the same
inference as the alignment sentence), and measures per sentence:

- did the attention reach the last character, did the rendering stop (stop token, or the
  fallback once the attention rested on the end) and at what length relative to the expected
  one (the dataset's speaking rate in frames per character times the sentence length);
- monotonicity of the attention peak, characters skipped and re-read, diagonality;
- for English, what an offline recogniser (pocketsphinx) heard: free recognition with its word
  error rate, and a forced choice among the sentences and as many distractors.

Renderings (`.wav`) and alignments (`.npy`) go to `health/step-<step>/`; the result to
`health/step-<step>.json`, which the trainer appends to metrics.jsonl as a `health` record (it
stays the only writer of that file). The worker never touches training state; any failure is
logged and skipped, never the run's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainer.rundir import RunDir, atomic_write, atomic_write_json

#: Held-out sentences per language: short, phonetically varied, and not in typical datasets
#: (the first twelve Harvard sentences of lists 1 and 2 for English).
DEFAULT_SENTENCES: dict[str, list[str]] = {
    "en": [
        "The birch canoe slid on the smooth planks.",
        "Glue the sheet to the dark blue background.",
        "It's easy to tell the depth of a well.",
        "These days a chicken leg is a rare dish.",
        "Rice is often served in round bowls.",
        "The juice of lemons makes fine punch.",
        "The box was thrown beside the parked truck.",
        "The hogs were fed chopped corn and garbage.",
        "Four hours of steady work faced us.",
        "A large size in stockings is hard to sell.",
        "The boy was there when the sun rose.",
        "A rod is used to catch pink salmon.",
    ],
    "de": [
        "Der alte Fischer flickt sein Netz am Hafen.",
        "Im Winter wird es früh dunkel im Wald.",
        "Die Katze schläft gern auf dem warmen Ofen.",
        "Morgen fahren wir mit dem Zug ans Meer.",
        "Ein kleiner Vogel singt auf dem Dach.",
        "Der Bäcker backt jeden Morgen frisches Brot.",
    ],
    "es": [
        "El viejo pescador arregla su red en el puerto.",
        "En invierno oscurece temprano en el bosque.",
        "El gato duerme junto a la estufa caliente.",
        "Mañana viajamos en tren hasta la costa.",
        "Un pájaro pequeño canta sobre el tejado.",
        "El panadero hornea pan fresco cada mañana.",
    ],
    "fr": [
        "Le vieux pêcheur répare son filet au port.",
        "En hiver il fait nuit très tôt dans la forêt.",
        "Le chat dort près du poêle bien chaud.",
        "Demain nous prenons le train pour la mer.",
        "Un petit oiseau chante sur le toit.",
        "Le boulanger cuit du pain frais chaque matin.",
    ],
}

#: Distractors for the recogniser's forced choice (English): as many more Harvard sentences.
DISTRACTORS_EN = [
    "The small pup gnawed a hole in the sock.",
    "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.",
    "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.",
    "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.",
    "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.",
    "Read verse out loud for pleasure.",
    "Hoist the load to your left shoulder.",
    "Take the winding path to reach the lake.",
]

#: A rendering "stops" when it ends before this many times its expected length.
MAX_LENGTH_RATIO = 2.0
#: A rendering reads "monotonically" when at least this share of its steps never move back.
MIN_MONOTONICITY = 0.95


def sentences_for(language: str, configured: str) -> list[str]:
    """The configured sentences (separated by `|`), else the language's defaults."""
    chosen = [part.strip() for part in configured.split("|") if part.strip()]
    return chosen or list(DEFAULT_SENTENCES.get(language, DEFAULT_SENTENCES["en"]))


# --- measures of one rendering (numpy only) ------------------------------------------------


@dataclass
class Reading:
    """How one free-running rendering of a sentence went."""

    text: str
    reached_end: bool      # the attention peak reached the last letter (trailing punctuation is silent)
    stopped: bool          # ended (stop token or fallback) before MAX_LENGTH_RATIO x the expected length
    stop: str              # "gate", "attention" or "limit"
    frames: int
    expected_frames: float
    length_ratio: float
    monotonicity: float    # share of steps whose attention peak does not move back
    skipped: int           # characters up to the furthest reached that were never the peak
    repeated: int          # characters read again after the peak had moved 2+ past them
    diagonality: float     # share of steps whose peak is near the diagonal
    wav: str = ""
    alignment: str = ""
    heard: str | None = None
    chosen: str | None = None
    understood: bool | None = None
    wer: float | None = None

    @property
    def reads_through(self) -> bool:
        return self.reached_end and self.stopped and self.monotonicity >= MIN_MONOTONICITY


def measure(alignment: np.ndarray, text: str, frames: int, expected_frames: float, stop: str,
            band: float = 0.15, end_at: int | None = None) -> Reading:
    """The measures of one rendering from its attention `[decoder_steps, text_len]`.

    `end_at` is the token that counts as the end of the text: its last letter (`Language.last_spoken`),
    since trailing punctuation has no sound of its own; by default the last token.
    """
    steps, n_text = alignment.shape
    peak = alignment.argmax(axis=1) if steps else np.zeros(0, dtype=np.int64)
    last = n_text - 1 if end_at is None else min(end_at, n_text - 1)
    moves = np.diff(peak)
    monotonicity = float((moves >= 0).mean()) if moves.size else 1.0
    furthest = int(peak.max()) if steps else 0
    visited = np.zeros(n_text, dtype=bool)
    visited[peak] = True
    skipped = int((~visited[:furthest + 1]).sum())
    repeated = int(-moves[moves <= -2].sum()) if moves.size else 0
    along_text = peak / max(1, n_text - 1)
    along_time = np.arange(steps) / max(1, steps - 1)
    diagonal = float((np.abs(along_text - along_time) <= band).mean()) if steps else 0.0
    ratio = frames / expected_frames if expected_frames > 0 else float("inf")
    return Reading(text=text, reached_end=bool(steps) and furthest >= last,
                   stopped=stop != "limit" and ratio < MAX_LENGTH_RATIO, stop=stop, frames=int(frames),
                   expected_frames=round(float(expected_frames), 1), length_ratio=round(ratio, 3),
                   monotonicity=round(monotonicity, 4), skipped=skipped, repeated=repeated,
                   diagonality=round(diagonal, 4))


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance over the reference's word count (words lower-cased, no punctuation)."""
    ref, hyp = _words(reference), _words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, other in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (word != other))
    return row[-1] / len(ref)


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z' ]+", " ", text.lower().replace("-", " ")).split()


def summarise(step: int, checkpoint: str, readings: list[Reading], recogniser: str | None,
              elapsed_s: float) -> dict[str, Any]:
    """The `health` record of a checkpoint (see DESIGN: counts of sentences, and each reading)."""
    n = len(readings)
    heard = [r for r in readings if r.understood is not None]
    wers = [r.wer for r in readings if r.wer is not None]
    return {
        "step": step, "checkpoint": checkpoint, "sentences": n,
        "reached_end": sum(r.reached_end for r in readings),
        "stopped": sum(r.stopped for r in readings),
        "monotonic": sum(r.monotonicity >= MIN_MONOTONICITY for r in readings),
        "read_through": sum(r.reads_through for r in readings),
        "understood": sum(bool(r.understood) for r in heard) if heard else None,
        "wer": round(float(np.mean(wers)), 4) if wers else None,
        "monotonicity": round(float(np.mean([r.monotonicity for r in readings])), 4) if n else None,
        "length_ratio": round(float(np.median([r.length_ratio for r in readings])), 3) if n else None,
        "diagonality": round(float(np.mean([r.diagonality for r in readings])), 4) if n else None,
        "recogniser": recogniser, "elapsed_s": round(elapsed_s, 2),
        "items": [asdict(r) for r in readings],
    }


# --- the recogniser -------------------------------------------------------------------------


class Recogniser:
    """pocketsphinx's English model: free recognition, and a forced choice among sentences."""

    RATE = 16000

    def __init__(self, candidates: list[str]):
        import pocketsphinx

        self.decoder = pocketsphinx.Decoder(samprate=self.RATE, loglevel="FATAL")
        self.name = f"pocketsphinx {_version('pocketsphinx')} (en-us)"
        self.candidates = candidates
        self._choices = {" ".join(_words(c)): c for c in candidates}
        alternatives = " | ".join(f"( {spoken} )" for spoken in self._choices if spoken)
        self.decoder.add_jsgf_string("choice", f"#JSGF V1.0;\ngrammar choice;\npublic <s> = {alternatives};\n")

    def _decode(self, pcm: bytes, search: str) -> str:
        self.decoder.activate_search(search)
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        hypothesis = self.decoder.hyp()
        return hypothesis.hypstr if hypothesis is not None else ""

    def listen(self, audio: np.ndarray, sample_rate: int) -> tuple[str, str | None]:
        """(what it heard freely, the candidate it picked or None) for float audio."""
        import torch
        import torchaudio

        waveform = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
        resampled = torchaudio.functional.resample(waveform, sample_rate, self.RATE).numpy()
        pcm = (np.clip(resampled, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        heard = self._decode(pcm, "_default")
        chosen = self._choices.get(self._decode(pcm, "choice").strip())
        return heard, chosen


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def make_recogniser(language: str, sentences: list[str], enabled: bool, log: Any) -> Recogniser | None:
    """An English recogniser over the sentences and the distractors, or None (and why, logged)."""
    if not enabled or language != "en":
        return None
    try:
        distractors = [d for d in DISTRACTORS_EN if d not in sentences]
        return Recogniser(sentences + distractors[:max(len(sentences), 1)])
    except Exception as exc:  # noqa: BLE001 — no recogniser is a missing figure, never a failed run
        log(f"health: no speech recogniser ({type(exc).__name__}: {exc}); 'understood' stays empty")
        return None


# --- one checkpoint -----------------------------------------------------------------------


def evaluate(run: RunDir, checkpoint: Path, frames_per_char: float, log: Any = print,
             listen: bool | None = None) -> dict[str, Any]:
    """Render and measure the held-out sentences with one checkpoint; writes files and the result.

    `listen` overrides the run's `[health] recogniser` (a benchmark that needs the read-through
    figures of many checkpoints sooner than pocketsphinx can listen to them all).
    """
    import torch

    from trainer import checkpoints as ckpt
    from trainer.config import from_dict, upgrade_run_config
    from trainer.models import load_network
    from trainer.text import get_language

    started = time.monotonic()
    payload = ckpt.load(checkpoint)
    step = int(payload["progress"]["step"])
    config = from_dict(upgrade_run_config(payload["config"]))
    language = get_language(config.data.language)
    network = load_network(config)
    model = network.build(len(payload["symbols"]))
    model.load_state_dict({k.removeprefix("module."): v for k, v in payload["model"].items()})
    model.eval()
    device = torch.device("cpu")
    companion = network.companion(run.path, device, log)  # DC-TTS Text2Mel: the newest SSRN of its pair
    sentences = sentences_for(language.code, config.health.sentences)
    recogniser = make_recogniser(language.code, sentences,
                                 config.health.recogniser if listen is None else listen, log)
    folder = run.health_folder(step)
    folder.mkdir(parents=True, exist_ok=True)
    readings = []
    for number, text in enumerate(sentences):
        tokens = language.to_ids(text) or [1]
        expected = frames_per_char * len(tokens)
        end_at = language.last_spoken(tokens)
        result = network.render(model, tokens, device, seed=number, end_at=end_at, companion=companion)
        reading = measure(result.alignment, text, result.frames, expected, result.stop, end_at=end_at)
        audio = result.audio
        wav, alignment = folder / f"{number:02d}.wav", folder / f"{number:02d}.npy"
        atomic_write(alignment, lambda h, a=result.alignment: np.save(h, a))
        atomic_write(wav, lambda h, a=audio: _write_wav(h, a, result.sample_rate))
        reading.wav, reading.alignment = str(wav.relative_to(run.path)), str(alignment.relative_to(run.path))
        if recogniser is not None:
            heard, chosen = recogniser.listen(audio, result.sample_rate)
            reading.heard, reading.chosen = heard, chosen
            reading.understood = chosen == text
            reading.wer = round(word_error_rate(text, heard), 4)
        readings.append(reading)
    record = summarise(step, str(checkpoint.relative_to(run.path)) if checkpoint.is_relative_to(run.path)
                       else str(checkpoint), readings, recogniser.name if recogniser else None,
                       time.monotonic() - started)
    if companion is not None or network.name == "text2mel":
        record["vocoder"] = (f"SSRN of run {config.model.pair} at step {network.companion_step}" if companion is not None
                             else "Griffin-Lim on the coarse mel (no SSRN checkpoint of the pair yet)")
    atomic_write_json(run.health_result_path(step), record)
    return record


def _write_wav(handle: Any, audio: np.ndarray, sample_rate: int) -> None:
    import soundfile

    soundfile.write(handle, audio, sample_rate, format="WAV", subtype="PCM_16")


def pending(run: RunDir) -> list[Path]:
    """Checkpoints without a health result, newest first."""
    return [c.path for c in reversed(run.checkpoints()) if not run.health_result_path(c.step).exists()]


def _step_of(path: Path) -> int | None:
    match = re.fullmatch(r"step-(\d+)\.pt", path.name)
    return int(match.group(1)) if match else None


def line(record: dict[str, Any]) -> str:
    """One line for train.log."""
    n = record["sentences"]
    understood = "-" if record["understood"] is None else f"{record['understood']}/{n}"
    return (f"health of step {record['step']}: reads to the end {record['read_through']}/{n} "
            f"(end {record['reached_end']}, stops {record['stopped']}, monotonic {record['monotonic']}), "
            f"understood {understood}, length x{record['length_ratio']}, {record['elapsed_s']:.0f} s")


def main(argv: list[str] | None = None) -> int:
    """The worker: evaluate every checkpoint without a result, newest first, then exit."""
    parser = argparse.ArgumentParser(prog="python -m trainer.health", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--frames-per-char", type=float, required=True,
                        help="the dataset's speaking rate: mel frames per text token")
    parser.add_argument("--once", action="store_true", help="only the newest checkpoint without a result")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # beside the trainer: never take its cores
    run = RunDir(args.run_dir)
    done: set[Path] = set()
    while True:
        todo = [path for path in pending(run) if path not in done]
        if not todo:
            return 0
        path = todo[0]
        done.add(path)
        try:
            evaluate(run, path, args.frames_per_char, log=_log)  # the trainer logs and records the result
        except FileNotFoundError:
            continue  # rotated away while waiting: nothing to say about it
        except Exception as exc:  # noqa: BLE001 — a health failure must never touch the run
            _log(f"health of {path.name} failed: {type(exc).__name__}: {exc}")
            step = _step_of(path)
            if step is not None:  # the trainer records it as an event; no worker retries it
                try:
                    run.health_dir.mkdir(parents=True, exist_ok=True)
                    atomic_write_json(run.health_result_path(step),
                                      {"step": step, "error": f"{type(exc).__name__}: {exc}"})
                except OSError as write_error:
                    _log(f"health: cannot write {run.health_result_path(step)}: {write_error}")
        if args.once:
            return 0


def _log(message: str) -> None:
    print(message, file=sys.stdout, flush=True)


class Launcher:
    """The trainer's side: one worker at a time, started after a checkpoint is safe, results collected."""

    def __init__(self, run: RunDir, frames_per_char: float, log: Any):
        self.run, self.frames_per_char, self.log = run, frames_per_char, log
        self.process: Any = None
        self.recorded: set[int] = set()
        self.summaries: dict[int, Any] = {}  # step -> HealthSummary, for rotation and the recommendation

    def start(self) -> None:
        """Start a worker unless one is running (it picks up every checkpoint without a result)."""
        import subprocess

        if self.process is not None and self.process.poll() is None:
            return
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "trainer.health", str(self.run.path),
                 "--frames-per-char", f"{self.frames_per_char:.4f}"],
                stdin=subprocess.DEVNULL, env=env, preexec_fn=lambda: os.nice(10))
        except OSError as exc:
            self.log(f"health: could not start the worker: {exc}")
            self.process = None

    def waiting(self) -> bool:
        """Whether a checkpoint on disk has no result yet."""
        return bool(pending(self.run))

    def busy(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def results(self) -> list[dict[str, Any]]:
        """Results written since the last call, oldest step first (each returned once)."""
        folder = self.run.health_dir
        if not folder.is_dir():
            return []
        found = []
        for path in sorted(folder.glob("step-*.json")):
            match = re.fullmatch(r"step-(\d{8})\.json", path.name)
            if not match or int(match.group(1)) in self.recorded:
                continue
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            self.recorded.add(int(match.group(1)))
            if isinstance(record, dict) and isinstance(record.get("step"), int):
                found.append(record)
        return found

    def wait(self, timeout_s: float) -> bool:
        """Wait for the worker to finish; False if it is still running after `timeout_s`."""
        import subprocess

        if self.process is None:
            return True
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True


if __name__ == "__main__":
    sys.exit(main())
