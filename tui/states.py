"""A run's state in plain words: the run contract's `stale` is a trainer that stopped answering."""

from __future__ import annotations

STATE_WORDS = {"stale": "not responding"}
"""States shown in other words on screen; the files and `--json` keep the contract's names."""


def state_word(state: str) -> str:
    """The word for a run's state on screen (`stale` reads `not responding`)."""
    return STATE_WORDS.get(state, state)
