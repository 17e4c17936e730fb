"""Play a checkpoint's audio with the machine's own player (aplay, paplay or ffplay), detached.

The player runs in its own session with no terminal, so it never draws over the TUI nor waits
for it; a thread reaps it. One clip at a time: a new one ends the clip still playing.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

PLAYERS = (("aplay", ("-q",)), ("paplay", ()), ("ffplay", ("-nodisp", "-autoexit", "-loglevel", "quiet")))
"""Players tried in this order: ALSA, PulseAudio/PipeWire, then FFmpeg's."""


def find_player() -> list[str] | None:
    """The command (program and options, without the file) of the first player on PATH, or None."""
    for name, options in PLAYERS:
        program = shutil.which(name)
        if program is not None:
            return [program, *options]
    return None


class Player:
    """Starts one player process at a time and reaps it."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def play(self, path: Path) -> str:
        """Start playing `path`; returns the player's name. OSError without a player or if it cannot start."""
        command = find_player()
        if command is None:
            raise OSError("no audio player on this machine (aplay, paplay or ffplay)")
        if not Path(path).is_file():
            raise OSError(f"{path} does not exist")
        with self._lock:
            self._stop()
            process = subprocess.Popen([*command, str(path)], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       start_new_session=True)
            self._process = process
        threading.Thread(target=process.wait, name=f"reap-player-{process.pid}", daemon=True).start()
        return Path(command[0]).name

    def stop(self) -> None:
        """End the clip still playing, if any (only our own player process)."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
