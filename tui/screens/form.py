"""Widgets generated from the `trainer.config` schema, and reading typed values back from them."""

from __future__ import annotations

import shlex
import sys
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from textual import events
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select, Static

from trainer.config import FieldInfo

#: The parameters a user must look at, in the order the issue names them; the rest are "Advanced".
MAIN_KEYS = ("data.dataset", "data.language", "train.epochs", "train.pretrained", "train.batch_size",
             "model.preset")


def widget_id(key: str) -> str:
    return "f-" + key.replace(".", "-")


def format_value(info: FieldInfo, value: Any) -> str:
    """A value as typed into an Input."""
    if info.type is list:
        return ", ".join(str(v) for v in value)
    if info.type is float:
        return f"{value:g}"
    return str(value)


def parse_text(info: FieldInfo, text: str) -> Any:
    """Input text → the value `check_value` judges (which explains anything it refuses)."""
    text = text.strip()
    if info.type is str:
        return text
    if info.type is list:
        inner = text.strip("[]").strip()
        if not inner:
            return []
        try:
            return [int(part) for part in inner.split(",")]
        except ValueError:
            return text
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def toml_value(value: Any) -> str:
    """A value as written after `--set key=`, read back by `trainer.config.parse_override` as the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if value == value.strip() and value and not _parses_as_toml(value):
            return value  # `--set` reads text that is not TOML as text: no quotes needed
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ",".join(toml_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)  # every digit: `:g` would round 0.0012345678 to 0.00123457
    return str(value)


def _parses_as_toml(text: str) -> bool:
    try:
        tomllib.loads(f"v = {text}")
    except tomllib.TOMLDecodeError:
        return False
    return True


def command_line(words: list[str], overrides: dict[str, Any]) -> str:
    """`words` (e.g. voxtop train CONFIG --name N) plus one `--set key=value` per override, shell-quoted."""
    parts = list(words)
    for key, value in overrides.items():
        parts += ["--set", f"{key}={toml_value(value)}"]
    return " ".join(shlex.quote(p) for p in parts)


class FieldInput(Input):
    """An Input whose own editing keys (ctrl+a, ctrl+k, ...) act in the order they were typed.

    Textual runs a focused widget's key bindings only when the key has bubbled back up to the
    app, while printable keys are inserted at once; so `ctrl+a ctrl+k 12` arriving in one read
    (fast typing, tmux) inserted "12" first and then cleared the field. Running the Input's
    own bindings here, in its queue, keeps every key in order.
    """

    async def _on_key(self, event: events.Key) -> None:
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if not binding.priority and await self.app.run_action(binding.action, self):
                event.stop()
                event.prevent_default()
                return
        await super()._on_key(event)


class OnOffCheckbox(Checkbox):
    """A checkbox that reads without colour: `[x] on` or `[ ] off` (space or enter toggles it)."""

    @property
    def _button(self) -> Content:
        return Content.styled("[x] on " if self.value else "[ ] off", self.get_visual_style("toggle--button"))


def make_editor(info: FieldInfo, value: Any) -> Widget:
    """The input widget for one field: Checkbox for booleans, Select for choices, Input otherwise."""
    wid = widget_id(info.key)
    if info.type is bool:
        return OnOffCheckbox("", value=bool(value), id=wid)
    if info.choices is not None:
        return Select([(str(c), c) for c in info.choices], value=value, allow_blank=False, id=wid,
                      compact=True)
    placeholder = "none" if info.path and info.name == "pretrained" else format_value(info, info.default)
    return FieldInput(value=format_value(info, value), placeholder=placeholder, id=wid, compact=True)


def read_editor(info: FieldInfo, editor: Widget) -> Any:
    """The (not yet checked) value of an editor made by `make_editor`."""
    if isinstance(editor, Checkbox):
        return editor.value
    if isinstance(editor, Select):
        return editor.value
    assert isinstance(editor, Input)
    return parse_text(info, editor.value)


UNIT_WORDS = {"min": "minutes", "s": "seconds"}


def field_label(info: FieldInfo) -> str:
    """The label with its unit, said once: `Max steps`, not `Max steps (steps)`; `Checkpoint every (minutes)`,
    not `Checkpoint every (time) (min)`."""
    label, unit = info.label, info.unit
    if not unit:
        return label
    words = UNIT_WORDS.get(unit, unit)
    if label.endswith("(time)"):
        return f"{label[:-len('(time)')].rstrip()} ({words})"
    if label.split()[-1].lower() in (unit.lower(), words.lower()):
        return label
    return f"{label} ({unit})"


class FieldRow(Vertical):
    """Label (with unit), editor, and a line for its error message."""

    DEFAULT_CSS = """
    FieldRow { height: auto; }
    FieldRow > Horizontal { height: auto; }
    FieldRow Label { width: 24; padding: 0 1 0 0; }
    FieldRow Input, FieldRow Select { width: 1fr; }
    FieldRow Checkbox { border: none; padding: 0; height: 1; width: auto; }
    FieldRow .error { height: auto; padding-left: 24; }
    FieldRow .error.-empty { display: none; }
    """

    def __init__(self, info: FieldInfo, value: Any):
        super().__init__(id="row-" + widget_id(info.key))
        self.info = info
        self.value = value
        self.error_message: str | None = None

    def compose(self) -> Any:
        with Horizontal():
            yield Label(field_label(self.info))
            yield make_editor(self.info, self.value)
        yield Static("", classes="error -empty", markup=False)

    def show_error(self, message: str | None) -> None:
        if message == self.error_message:
            return  # restyling 60 rows on every keystroke is what makes forms slow
        self.error_message = message
        error = self.query_one(".error", Static)
        error.update(f"✗ {message}" if message else "")
        error.set_class(not message, "-empty")

    @property
    def editor(self) -> Widget:
        return self.query_one("#" + widget_id(self.info.key))
