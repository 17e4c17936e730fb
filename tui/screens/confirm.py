"""A yes/no question that must be answered before a destructive action (stop, kill, delete)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.plain import visible


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True on y, False on n or escape."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "Cancel"),
    ]

    def __init__(self, question: str):
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Static(visible(self.question, keep_newlines=True), id="question", markup=False)
            yield Static("[y] yes    [n] no", id="answers", markup=False)

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class ChoiceScreen(ModalScreen[str | None]):
    """Dismisses with the value of the answer whose key was pressed; escape answers None."""

    BINDINGS = [Binding("escape", "choose(None)", "Cancel")]

    def __init__(self, question: str, answers: list[tuple[str, str, str]]):
        """`answers`: (key, label, value) for each possible answer, e.g. ("o", "overwrite", "overwrite")."""
        super().__init__()
        self.question = question
        self.answers = answers
        for key, label, value in answers:
            self._bindings.bind(key, f"choose({value!r})", label)

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Static(visible(self.question, keep_newlines=True), id="question", markup=False)
            labels = [f"[{key}] {label}" for key, label, _ in self.answers] + ["[esc] cancel"]
            yield Static("\n".join(labels), id="answers", markup=False)

    def action_choose(self, value: str | None) -> None:
        self.dismiss(value)


class TextScreen(ModalScreen[None]):
    """A text shown whole (wrapped, scrollable), e.g. a long command line to copy; escape closes it."""

    BINDINGS = [Binding("escape", "close", "Close"), Binding("q", "close", "Close", show=False)]

    def __init__(self, title: str, text: str):
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        from textual.containers import VerticalScroll

        with VerticalScroll(id="text-dialog"):
            yield Static(visible(self.title_text), classes="title", markup=False)
            yield Static(visible(self.text, keep_newlines=True), id="text-dialog-body", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
