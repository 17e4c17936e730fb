"""Generate the small demo TTS dataset shipped with voxtop.

Usage:
    python datasets/make_demo.py [--out datasets/demo] [--force]

Speaks a fixed list of 150 English sentences with the espeak-ng binary
(voice en-us) and writes them in LJSpeech layout:

    <out>/metadata.csv      lines "id|text", UTF-8, no header
    <out>/wavs/<id>.wav     22050 Hz, mono, 16-bit PCM

Speed (-s) and pitch (-p) vary per clip, drawn from random.Random(0), so
rerunning the script produces the same dataset. The script refuses to write
into an existing non-empty output folder unless --force is given; with
--force it only overwrites metadata.csv and the demo_*.wav files it creates.

Requires only the Python 3.11 standard library and espeak-ng on PATH.
"""

from __future__ import annotations

import argparse
import array
import os
import random
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

SAMPLE_RATE = 22050
VOICE = "en-us"
SPEED_RANGE = (150, 175)  # words per minute
PITCH_RANGE = (40, 60)  # espeak-ng pitch, 0-99
DEFAULT_OUT = Path(__file__).resolve().parent / "demo"

SENTENCES = [
    "The kettle is boiling.",
    "Please close the door behind you.",
    "Where did you leave the keys?",
    "What a beautiful morning!",
    "Mr. Brown walks his dog every evening.",
    "It rained for 3 days straight.",
    "The train leaves at noon.",
    "Could you pass the salt, please?",
    "She painted the fence green.",
    "Dr. Patel will see you now.",
    "I love the smell of fresh bread.",
    "Stop right there, please!",
    "The river runs past the mill.",
    "He was born in 1984.",
    "Do you take milk in your coffee?",
    "Birds sang softly in the hedge.",
    "We need 12 eggs for the cake.",
    "Turn left at the next corner.",
    "Is anyone sitting here?",
    "The library opens at 9.",
    "Mrs. Lee grows tomatoes.",
    "What a great concert!",
    "Our team scored 2 goals.",
    "The wind howled all night long.",
    "Keep your voice down; the baby is sleeping.",
    "Why is the sky blue?",
    "He fixed the old bicycle.",
    "Snow covered the mountains by morning.",
    "Watch out for that puddle!",
    "The meeting moved to Thursday.",
    "My grandmother tells wonderful stories.",
    "How long does the journey take?",
    "St. Mary's has a tall tower.",
    "The cat sat on the windowsill, staring at birds.",
    "Lunch is ready now.",
    "There are 7 days in a week.",
    "Have you finished your homework yet?",
    "The lamp flickered, then went dark.",
    "I will call you tomorrow afternoon.",
    "What a surprise to see you here!",
    "The bakery opens at dawn.",
    "Capt. Hughes steered the ship home.",
    "Bring a coat, it might get cold.",
    "The museum was built in 1902.",
    "Who wrote this letter?",
    "A gentle breeze moved the curtains.",
    "Please speak more slowly.",
    "The children built a sandcastle by the sea.",
    "Our flight was 45 minutes late.",
    "Can you hear the thunder?",
    "The garden looks lovely in spring.",
    "He laughed until he cried.",
    "Don't forget to water the plants.",
    "The old clock still keeps perfect time.",
    "Where are we going for dinner tonight?",
    "I can't believe it's already December!",
    "Prof. Adams teaches history.",
    "The soup needs a pinch more salt.",
    "She read 20 books last summer.",
    "The bridge was closed for repairs.",
    "Are you sure about that?",
    "Quiet streets, empty shops, one streetlight.",
    "The dog barked at the mail carrier.",
    "We planted an apple tree.",
    "Happy birthday to you!",
    "The printer is out of paper again.",
    "Could we meet at half past 4?",
    "The ice on the lake is thin.",
    "Mr. Hall gave me a map.",
    "Every morning, the old fisherman checks his nets before the sun comes up.",
    "Thank you for your help.",
    "The box was heavier than it looked.",
    "Why did the lights go out?",
    "The recipe calls for 2 cups of flour.",
    "Listen carefully to the instructions.",
    "A red kite circled overhead.",
    "What time does the store close?",
    "The paint is still wet!",
    "He speaks three languages fluently.",
    "The road winds through the hills.",
    "Dr. Garcia studies rare plants.",
    "It's a long way to the coast.",
    "Would you like some more tea?",
    "The stars were bright over the desert.",
    "I left my umbrella on the bus.",
    "In 1969, people watched the moon landing.",
    "The baby giggled at the puppet.",
    "Look at all those balloons!",
    "Our neighbours are moving next week.",
    "The pen is on the desk.",
    "When does the next bus arrive?",
    "The orchestra tuned up before the conductor walked on stage.",
    "Mr. and Mrs. Clark own a shop.",
    "Fresh snow crunched under our boots.",
    "The test has 50 questions.",
    "Is this the way to the station?",
    "The candle burned down slowly.",
    "Well done, that was excellent work!",
    "Please sign your name at the bottom.",
    "The waves crashed against the rocks.",
    "He missed the bus by 1 minute.",
    "Have you ever seen a whale?",
    "The soup smells delicious.",
    "Sit down and make yourself comfortable.",
    "The farmer fed the hens, milked the cow, and mended the gate.",
    "It's too hot to go running today.",
    "What is your favourite colour?",
    "The office is on the 5th floor.",
    "Lt. Warren reported for duty at dawn.",
    "A small boat drifted toward the shore.",
    "Never, ever give up!",
    "The phone rang twice, then stopped.",
    "Who left the window open?",
    "The queen visited the town in 1953.",
    "We walked along the beach at sunset.",
    "This bread is still warm.",
    "How many apples are in the basket?",
    "The hallway was long and dark.",
    "I think it's going to rain.",
    "The students cheered loudly!",
    "My brother is 9 years old.",
    "Turn off the lights, please.",
    "The fox slipped quietly into the woods.",
    "Did you remember to lock the door?",
    "The market is busy on Saturdays.",
    "Gen. Miller inspected the troops.",
    "Cocoa sounds perfect right now.",
    "The leaves turn golden in autumn.",
    "Where did you learn to cook?",
    "Hurry, the film is about to start!",
    "The old house creaked in the wind.",
    "She sent me a postcard from Rome.",
    "The parcel arrives in 3 days.",
    "What a lovely surprise!",
    "The engine coughed, then roared.",
    "Can I borrow your pencil?",
    "The owl hooted from the barn roof.",
    "He always arrives early.",
    "The lake was calm and silver.",
    "Why are you smiling?",
    "Our house has 4 bedrooms.",
    "The sailors sang as they rowed.",
    "Please mind the gap.",
    "Supper is ready in an hour.",
    "Is it raining outside?",
    "The pianist played a slow, gentle tune.",
    "We stayed up late talking.",
    "The path is steep; take your time.",
    "Goodnight, and sleep well!",
    "The blue door at the end of the lane leads to a quiet courtyard full of flowers.",
]


def resample_linear(samples: array.array, src_rate: int, dst_rate: int) -> array.array:
    """Resample 16-bit mono samples by linear interpolation (stdlib only)."""
    n_out = max(1, round(len(samples) * dst_rate / src_rate))
    out = array.array("h", bytes(2 * n_out))
    last = len(samples) - 1
    step = src_rate / dst_rate
    for i in range(n_out):
        pos = i * step
        j = int(pos)
        if j >= last:
            out[i] = samples[last]
            continue
        frac = pos - j
        v = samples[j] + (samples[j + 1] - samples[j]) * frac
        out[i] = max(-32768, min(32767, int(round(v))))
    return out


def to_mono16(raw: bytes, channels: int, width: int) -> array.array:
    """Convert raw little-endian PCM frames to 16-bit mono samples."""
    if width == 2:
        data = array.array("h", raw)
    elif width == 1:  # unsigned 8-bit
        data = array.array("h", ((b - 128) << 8 for b in raw))
    elif width in (3, 4):
        data = array.array(
            "h",
            (
                int.from_bytes(raw[k + width - 2 : k + width], "little", signed=True)
                for k in range(0, len(raw), width)
            ),
        )
    else:
        raise ValueError(f"unsupported sample width {width}")
    if sys.byteorder == "big":
        data.byteswap()
    if channels > 1:
        data = array.array(
            "h",
            (
                int(sum(data[k : k + channels]) / channels)
                for k in range(0, len(data), channels)
            ),
        )
    return data


def synthesize(espeak: str, text: str, speed: int, pitch: int, dest: Path) -> None:
    """Speak ``text`` with espeak-ng and store it at ``dest`` as 22050 Hz mono 16-bit."""
    with tempfile.TemporaryDirectory() as tmp:
        raw_path = Path(tmp) / "raw.wav"
        # Argument list, no shell; text goes through stdin so it can never be
        # mistaken for an option.
        subprocess.run(
            [
                espeak,
                "-v", VOICE,
                "-s", str(speed),
                "-p", str(pitch),
                "-w", str(raw_path),
                "--stdin",
            ],
            input=text.encode("utf-8"),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with wave.open(str(raw_path), "rb") as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            raw = w.readframes(w.getnframes())

    if rate == SAMPLE_RATE and channels == 1 and width == 2:
        frames = raw
    else:
        samples = to_mono16(raw, channels, width)
        if rate != SAMPLE_RATE:
            samples = resample_linear(samples, rate, SAMPLE_RATE)
        if sys.byteorder == "big":
            samples.byteswap()
        frames = samples.tobytes()
    if not frames:
        raise RuntimeError(f"espeak-ng produced no audio for: {text!r}")

    # Always rewrite through the wave module so the header is exact.
    with wave.open(str(dest), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(frames)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT,
        help="output folder (default: datasets/demo next to this script)",
    )
    parser.add_argument(
        "--force", action="store_true",
        help="write into an existing non-empty output folder",
    )
    args = parser.parse_args(argv)

    espeak = shutil.which("espeak-ng")
    if espeak is None:
        print("error: espeak-ng not found on PATH (apt install espeak-ng)", file=sys.stderr)
        return 1

    out: Path = args.out
    if out.exists() and not out.is_dir():
        print(f"error: {out} exists and is not a folder", file=sys.stderr)
        return 1
    if out.is_dir() and any(out.iterdir()) and not args.force:
        print(
            f"error: {out} is not empty; refusing to overwrite (use --force)",
            file=sys.stderr,
        )
        return 1

    wav_dir = out / "wavs"
    wav_dir.mkdir(parents=True, exist_ok=True)

    rng = random.Random(0)
    lines = []
    total_frames = 0
    for i, text in enumerate(SENTENCES, start=1):
        clip_id = f"demo_{i:04d}"
        speed = rng.randint(*SPEED_RANGE)
        pitch = rng.randint(*PITCH_RANGE)
        dest = wav_dir / f"{clip_id}.wav"
        synthesize(espeak, text, speed, pitch, dest)
        with wave.open(str(dest), "rb") as w:
            total_frames += w.getnframes()
        lines.append(f"{clip_id}|{text}\n")
        print(f"{clip_id}  s={speed} p={pitch}  {text}")

    with open(out / "metadata.csv", "w", encoding="utf-8", newline="\n") as f:
        f.writelines(lines)

    print(
        f"wrote {len(lines)} clips, {total_frames / SAMPLE_RATE:.1f} s of audio, to {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
