"""The Parameters form in a real terminal: keys that tmux delivers in one read, seen on the screen."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from test_tmux import VOXTOP, Tmux, folders, tmux, voxtop_command  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None or not VOXTOP.exists(),
                                reason="needs tmux and the .venv voxtop script")


def _epochs_line(screen: str) -> str:
    return next(line for line in screen.splitlines() if "Epochs" in line)


def test_clearing_a_field_and_typing_fast_keeps_every_key(tmux: Tmux, folders: tuple[Path, Path]) -> None:
    datasets, runs = folders
    tmux.start(voxtop_command(datasets, runs))
    tmux.wait_for(lambda s: "Runs · folder" in s)
    tmux.keys("n")
    tmux.wait_for(lambda s: "clips        150" in s)
    tmux.keys("Enter")
    tmux.wait_for(lambda s: "parameters" in s and "Epochs" in s)
    tmux.wait_for(lambda s: "data.dataset:" in s)  # the focused field's help line
    tmux.keys("Tab", "Tab")  # dataset -> language -> epochs
    tmux.wait_for(lambda s: "train.epochs:" in s)
    for typed in ("12", "345", "7"):
        tmux.keys("C-a", "C-k", typed)  # one send-keys: the terminal hands voxtop all of it in one read
        screen = tmux.wait_for(lambda s: _epochs_line(s).split()[1:2] == [typed], timeout_s=10)
        assert "whole number" not in screen
