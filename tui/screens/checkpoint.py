"""One checkpoint: where its audio is, playing it, and the way to export or resume it (enter in the Monitor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from trainer.health_records import HealthItem, HealthSummary
from trainer.rundir import CheckpointFile, RunDir
from tui.audio import Player, find_player
from tui.plain import plain, visible

AUDIO_COLUMNS = ("clip", "file", "sentence", "result")


def item_result(item: HealthItem) -> str:
    """What came of one held-out sentence, in words: read through or not, and what was heard."""
    if item.reached_end and item.stopped:
        result = "reads to the end"
    elif item.reached_end is False:
        result = "stops before the end"
    elif item.stopped is False:
        result = "does not stop"
    else:
        result = "-"
    if item.heard is not None:
        result += f" · heard: {item.heard}"
    return result


def audio_rows(run: RunDir, step: int, health: HealthSummary | None,
               sentence: str | None) -> list[tuple[str, Path, str, str]]:
    """(clip, path, sentence, result) of each audio file of checkpoint `step`: the alignment sentence's
    sample, then the held-out sentences of its read-through health."""
    rows = [("sample", run.sample_path(step), sentence or "the alignment sentence", "")]
    for number, item in enumerate(health.items if health is not None else (), start=1):
        if item.wav:
            rows.append((f"{number:02d}", run.path / item.wav, item.text, item_result(item)))
    return rows


class CheckpointScreen(ModalScreen[str | None]):
    """Lists a checkpoint's audio with its files; enter plays one, e exports, r resumes (the Monitor asks)."""

    BINDINGS = [
        Binding("escape", "close", "Back"),
        Binding("e", "choose('export')", "Export"),
        Binding("r", "choose('resume')", "Resume"),
        Binding("x", "stop_audio", "Stop audio", show=False),
    ]

    def __init__(self, run: RunDir, checkpoint: CheckpointFile, val_loss: Any, health: HealthSummary | None,
                 tags: list[str], sentence: str | None, player: Player):
        super().__init__()
        self.run = run
        self.checkpoint = checkpoint
        self.val_loss = val_loss
        self.health = health
        self.tags = tags
        self.sentence = sentence
        self.player = player
        self.rows = audio_rows(run, checkpoint.step, health, sentence)

    def compose(self) -> ComposeResult:
        with Vertical(id="checkpoint-dialog"):
            yield Static(visible(self._heading()), classes="title", markup=False)
            yield Static(visible(self._where(), keep_newlines=True), id="checkpoint-files", markup=False)
            yield DataTable(id="checkpoint-audio", cursor_type="row", zebra_stripes=True)
            yield Static(self._keys(), id="checkpoint-keys", markup=False)

    def _heading(self) -> str:
        parts = [f"checkpoint step {self.checkpoint.step}"]
        if isinstance(self.val_loss, (int, float)) and not isinstance(self.val_loss, bool):
            parts.append(f"val loss {self.val_loss:.4f}")
        if self.health is not None:
            parts.append(f"reads to the end {self.health.reads_text()} · understood {self.health.understood_text()}")
        if self.tags:
            parts.append(",".join(self.tags))
        return " · ".join(parts)

    def _where(self) -> str:
        health = self.run.health_folder(self.checkpoint.step)
        lines = [f"checkpoint {self.checkpoint.path}", f"audio in {self.run.samples_dir}/"]
        if self.health is not None:
            lines[-1] += f" and {health}/"
        else:
            lines.append("no read-through health yet: only the alignment sentence's sample")
        return "\n".join(lines)

    def _keys(self) -> str:
        player = find_player()
        play = (f"enter play ({Path(player[0]).name}) · x stop" if player
                else "no audio player here (aplay, paplay, ffplay): copy the files to listen")
        return f"{play} · e export (voxtop export) · r resume from it · esc back"

    def on_mount(self) -> None:
        table = self.query_one("#checkpoint-audio", DataTable)
        for label in AUDIO_COLUMNS:
            table.add_column(label, key=label)
        for clip, path, sentence, result in self.rows:
            try:
                shown = str(path.relative_to(self.run.path))
            except ValueError:
                shown = str(path)
            if not path.is_file():
                shown += " (missing)"
            table.add_row(plain(clip), plain(shown), plain(sentence), plain(result), key=clip)
        table.focus()

    @on(DataTable.RowSelected, "#checkpoint-audio")
    def _play(self, event: DataTable.RowSelected) -> None:
        clip, path, _, _ = self.rows[event.cursor_row]
        try:
            name = self.player.play(path)
        except OSError as exc:  # no player, a missing file, a player that cannot start
            self.notify(f"cannot play {clip}: {exc}; the file is {path}", severity="error", timeout=8)
            return
        self.notify(f"playing {clip} with {name} (x stops): {path}")

    def action_stop_audio(self) -> None:
        self.player.stop()

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)

    def action_close(self) -> None:
        self.dismiss(None)
