"""Parameters: a form generated from the config schema, inline validation, estimates, launch.

Opened for a new run (from Datasets; starting from a saved config of that dataset when
`configs/` has one) or for resuming one (the run's config, where only what a checkpoint does not
fix can change, e.g. more epochs, plus a choice of its checkpoints, newest first). The command line under the form is exactly what ctrl+l does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import DescendantFocus
from textual.screen import Screen
from textual.widgets import Checkbox, Collapsible, Footer, Input, Label, Select, Static

from trainer import config as config_mod
from trainer.rundir import CheckpointFile, RunDir, RunError, check_run_prefix
from tui.messages import (ActionDone, ActionFailed, ConfigSaved, DatasetScanned, GpuChecked, ReferenceReady,
                          RunLaunched)
from trainer.resume_settings import apply_resume_settings, resume_settable
from tui.screens.form import MAIN_KEYS, FieldInput, FieldRow, command_line, read_editor, toml_value, widget_id
from tui.summary import PresetReference, estimate, preset_reference
from tui.workers import ReportsWorkerFailures


def _display_path(path: Path | str) -> str:
    """`path` relative to the working folder when it is below it (shorter, and what users type)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def find_base_config(configs_root: Path, dataset: Path) -> Path | None:
    """The saved config in `configs_root` that trains `dataset` (`<dataset name>.toml` first), or None.

    The form starts from it, so the settings someone wrote for a dataset (the shipped
    `configs/demo.toml`, or their own saved config) are what a new run of it gets.
    """
    try:
        candidates = sorted(Path(configs_root).glob("*.toml"), key=lambda p: (p.stem != dataset.name, p.name))
        wanted = dataset.resolve()
    except OSError:
        return None
    for path in candidates:
        try:
            config = config_mod.load(path)
        except config_mod.ConfigError:
            continue
        if config.data.dataset and Path(config.data.dataset) == wanted:
            return path
    return None


@dataclass(frozen=True)
class FormInputs:
    """What the form opens with, read from disk by `load_form_inputs` off the UI thread."""

    dataset: Path | None = None
    resume_run: RunDir | None = None
    base_config: Path | None = None
    """The saved config the form starts from (new runs only), or None."""
    loaded: config_mod.Config | None = None
    """The resumed run's config, or the base config, as loaded; None when there is none or it is invalid."""
    load_error: str | None = None
    checkpoints: tuple[CheckpointFile, ...] = ()
    """The resumed run's checkpoints, oldest first."""
    fixes: dict[str, Any] = field(default_factory=dict)


def load_form_inputs(configs_root: Path, dataset: Path | None = None, resume_run: RunDir | None = None,
                     fixes: dict[str, Any] | None = None) -> FormInputs:
    """Read what the form needs (configs, checkpoints): in a worker, never on the UI thread."""
    if resume_run is not None:
        try:
            loaded, error = config_mod.load(resume_run.config_path), None
        except config_mod.ConfigError as exc:
            loaded, error = None, str(exc)
        return FormInputs(dataset=dataset, resume_run=resume_run, loaded=loaded, load_error=error,
                          checkpoints=tuple(resume_run.checkpoints()))
    base = find_base_config(configs_root, dataset) if dataset is not None else None
    loaded, error = None, None
    if base is not None:
        try:
            loaded = config_mod.load(base)
        except config_mod.ConfigError as exc:
            base, error = None, str(exc)
    return FormInputs(dataset=dataset, base_config=base, loaded=loaded, load_error=error, fixes=dict(fixes or {}))


def next_free_path(path: Path) -> Path:
    """`path` with the first free `-N` suffix (demo.toml -> demo-1.toml), never an existing file."""
    number = 1
    while True:
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
        if not candidate.exists():
            return candidate
        number += 1


def config_text_for(config: config_mod.Config, path: Path) -> str:
    """The TOML of `config` as saved at `path`: paths inside the folder above the file's (the project:
    configs/ beside datasets/) relative to the file, as a hand-written config names them."""
    import copy

    portable = copy.deepcopy(config)
    folder = path.resolve().parent
    project = folder.parent
    for info in config_mod.schema():
        section = getattr(portable, info.section)
        value = getattr(section, info.name)
        if info.path and value and project != Path(project.anchor) and project in Path(value).resolve().parents:
            setattr(section, info.name, os.path.relpath(Path(value).resolve(), folder))
    return config_mod.dumps(portable)


class ParamsScreen(ReportsWorkerFailures, Screen[None]):
    """The launch form; ctrl+l launches (or resumes), ctrl+s saves the TOML."""

    BINDINGS = [
        Binding("ctrl+l", "launch", "Launch"),
        Binding("ctrl+s", "save", "Save TOML"),
        Binding("ctrl+o", "show_command", "Command"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, inputs: FormInputs):
        super().__init__()
        self.fixes = dict(inputs.fixes) if inputs.resume_run is None else {}
        """Settings the dataset needs to be valid (e.g. data.resample = true), set and said in the side panel."""
        self.resume_run = inputs.resume_run
        self.base_config = inputs.base_config if inputs.resume_run is None else None
        """The config file the form started from (or last saved to); the command line builds on it."""
        self._checkpoints = inputs.checkpoints
        self._base_values: dict[str, Any] | None = None  # its resolved values, by key
        self._saved: tuple[Path, int, str] | None = None  # (file this form wrote, its mtime_ns, run name then)
        self.load_error: str | None = inputs.load_error
        self.name_error: str | None = None
        self.infos = config_mod.schema()
        self.by_key = {info.key: info for info in self.infos}
        self.initial = self._initial_values(inputs.dataset, inputs.loaded)
        self.errors: dict[str, str] = {}
        self.config: config_mod.Config | None = None
        self.clips: int | None = None
        self._scanned: str | None = None
        self.reference: PresetReference | None = None
        self._reference_preset: str | None = None
        self.command = ""
        self._validation_pending = False
        self._advanced_mounted = False
        self.no_gpu_reason: str | None = None
        """Why no GPU was found (None: there is one, or not looked yet); said above the estimates."""
        self._switched_to_tiny = False
        self._shown_model: str | None = None  # the model whose own parameters the form shows
        self._clean: dict[str, Any] = {}
        """The form's values when it was opened or last saved: escape asks before losing edits."""

    def _initial_values(self, dataset: Path | None, loaded: config_mod.Config | None) -> dict[str, Any]:
        values = {info.key: info.default for info in self.infos}
        if loaded is not None and self.resume_run is not None:
            values.update(self._values_of(loaded))
        elif loaded is not None:
            for key, value in self._values_of(loaded).items():
                info = self.by_key[key]
                values[key] = _display_path(value) if info.path and value else value
        if self.resume_run is None and dataset is not None:
            values["data.dataset"] = _display_path(dataset)
        values.update(self.fixes)
        return values

    def _values_of(self, config: config_mod.Config) -> dict[str, Any]:
        """Every value of `config` by `section.name` key; also remembered as the command line's base."""
        values = {f"{section}.{name}": value
                  for section, fields in config.to_dict().items() for name, value in fields.items()}
        self._base_values = values
        return values

    # --- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        resuming = self.resume_run is not None
        yield Static(self._title(), id="title", classes="title", markup=False)
        with Horizontal(id="params-body"):
            with VerticalScroll(id="form"):
                if resuming:
                    yield Label("Resume from checkpoint (newest first):")
                    yield Select(self._checkpoint_options(), id="checkpoint", allow_blank=False,
                                 compact=True) if self._checkpoint_options() else Static(
                        "This run has no checkpoint to resume from.", id="checkpoint")
                    yield Static("A resumed run keeps its model and data settings (greyed); how long "
                                 "and how it trains can change, e.g. more epochs.", classes="note")
                else:
                    with Horizontal(id="row-name", classes="name-row"):
                        yield Label("Run name")
                        yield FieldInput(self._default_name(), id="run-name", compact=True)
                    yield Static("", id="name-error", classes="error -empty", markup=False)
                for key in MAIN_KEYS:
                    yield FieldRow(self.by_key[key], self.initial[key])
                yield Collapsible(title=self._advanced_title(str(self.initial.get("model.name", ""))),
                                  collapsed=True, id="advanced")
            with Vertical(id="side"):
                yield Static("", id="estimates", markup=False)
                yield Static("", id="problems", markup=False)
        yield Static("", id="command", markup=False)
        yield Static("", id="help-line", markup=False)
        yield Footer()

    def _title(self) -> str:
        if self.resume_run is not None:
            return f"voxtop · parameters · resume {self.resume_run.name}"
        origin = f" · from {_display_path(self.base_config)}" if self.base_config else ""
        return f"voxtop · parameters · new run{origin}"

    def _checkpoint_options(self) -> list[tuple[str, str]]:
        assert self.resume_run is not None
        return [(f"step {c.step} ({c.path.name})", str(c.path)) for c in reversed(self._checkpoints)]

    def _default_name(self) -> str:
        name = Path(str(self.initial["data.dataset"])).name or "run"
        try:
            return check_run_prefix(name)
        except RunError:
            return "run"

    def on_mount(self) -> None:
        if self.resume_run is not None:
            for row in self.query(FieldRow):
                row.editor.disabled = not resume_settable(row.info.key)
            self.query_one("#checkpoint").focus()
        else:
            self.query_one("#" + widget_id("data.dataset")).focus()
            self._check_gpu()
        self.validate()
        self._clean = self._form_state()

    def _form_state(self) -> dict[str, Any]:
        """What escape would lose: every value and the run name."""
        state = self.raw_values()
        if self.resume_run is None:
            state["run name"] = self.query_one("#run-name", Input).value
        return state

    def action_back(self) -> None:
        """Back to the previous screen; asks first when the form has unsaved edits."""
        if self._form_state() == self._clean:
            self.app.pop_screen()
            return
        from tui.screens.confirm import ConfirmScreen

        question = "Leave the form?\nYour edits are neither saved (ctrl+s) nor launched (ctrl+l)."
        self.app.push_screen(ConfirmScreen(question), lambda yes: self.app.pop_screen() if yes else None)

    @work(thread=True, exclusive=True, group="params-gpu", exit_on_error=False, description="checking the GPU")
    def _check_gpu(self) -> None:
        reading = self.app.gpu_feed.sample(None).reading
        self.post_message(GpuChecked(len(reading.gpus), reading.reason))

    @on(GpuChecked)
    def _gpu_checked(self, message: GpuChecked) -> None:
        """No GPU here: `full` would take about a minute a step on the CPU, so suggest `tiny`
        (unless the preset was changed already)."""
        key = "model.preset"
        if message.gpus:
            return
        self.no_gpu_reason = message.reason or "NVML lists none"
        editor = self.query_one("#" + widget_id(key), Select)
        if self.initial[key] == self.by_key[key].default and editor.value == self.by_key[key].default:
            editor.value = "tiny"
            self._clean[key] = "tiny"  # the form's own choice: leaving it loses no edit
            self._switched_to_tiny = True
        self.validate()

    @property
    def gpu_note(self) -> str | None:
        """What the missing GPU means for the preset now chosen (None with a GPU)."""
        if self.no_gpu_reason is None:
            return None
        preset = self.raw_values().get("model.preset")
        if preset == "tiny":
            done = "preset set to tiny; " if self._switched_to_tiny else ""
            return f"No GPU found ({self.no_gpu_reason}): {done}full needs a GPU (about a minute a step on a CPU)."
        return (f"No GPU found ({self.no_gpu_reason}): the {preset} preset takes about a minute a step "
                "on a CPU; tiny trains in minutes.")

    # --- validation -------------------------------------------------------------------

    def raw_values(self) -> dict[str, Any]:
        """Every field's value: from its editor, or its initial value while "Advanced" is unopened."""
        values = dict(self.initial)
        values.update({row.info.key: read_editor(row.info, row.editor) for row in self.query(FieldRow)})
        return values

    @on(Collapsible.Expanded, "#advanced")
    async def _expand_advanced(self) -> None:
        """Mount the advanced fields on first opening: 50 rows cost a second of styling."""
        if self._advanced_mounted:
            return
        self._advanced_mounted = True
        rows = [FieldRow(info, self.initial[info.key]) for info in self.infos if info.key not in MAIN_KEYS]
        await self.query_one("#advanced", Collapsible).query_one(Collapsible.Contents).mount_all(rows)
        for row in rows:
            row.editor.disabled = self.resume_run is not None and not resume_settable(row.info.key)
        self._show_errors(self.errors)
        self._shown_model = None
        self._show_model_fields(str(self.raw_values().get("model.name", "")))

    def validate(self) -> config_mod.Config | None:
        """Check every field (schema messages), the paths and cross-field rules; show the errors."""
        values = self.raw_values()
        errors: dict[str, str] = {}
        for key, value in values.items():
            _, error = config_mod.check_value(self.by_key[key], value)
            if error:
                errors[key] = error
        dataset = str(values.get("data.dataset", ""))
        if not dataset:
            errors["data.dataset"] = "choose a dataset folder (LJSpeech format)"
        elif "data.dataset" not in errors and not Path(dataset).expanduser().is_dir():
            errors["data.dataset"] = f"no folder {dataset}"
        pretrained = str(values.get("train.pretrained", ""))
        if pretrained and not Path(pretrained).expanduser().is_file():
            errors["train.pretrained"] = f"no file {pretrained}"
        config = None
        if not errors:
            raw: dict[str, dict[str, Any]] = {}
            for key, value in values.items():
                section, name = key.split(".")
                raw.setdefault(section, {})[name] = value
            try:
                config = config_mod.from_dict(raw, base_dir=Path.cwd())
            except config_mod.ConfigError as exc:
                errors.update({p.key: p.message for p in exc.problems})
        self._show_errors(errors)
        self.config = config
        self._after_validation(values)
        return config

    def _show_errors(self, errors: dict[str, str]) -> None:
        self.errors = errors
        for row in self.query(FieldRow):
            row.show_error(errors.get(row.info.key))
        name_error = None
        if self.resume_run is None:
            try:
                check_run_prefix(self.query_one("#run-name", Input).value)
            except RunError as exc:
                name_error = str(exc)
            widget = self.query_one("#name-error", Static)
            widget.update(f"✗ {name_error}" if name_error else "")
            widget.set_class(not name_error, "-empty")
        lines = [f"{key}: {message}" for key, message in errors.items()]
        if name_error:
            lines.append(f"run name: {name_error}")
        if self.load_error:
            lines.append(self.load_error)
        self.query_one("#problems", Static).update(
            (f"{len(lines)} problem(s):\n" + "\n".join(lines)) if lines else "no problems")
        self.name_error = name_error

    def _advanced_title(self, model: str) -> str:
        """`Advanced (N more)`, counting the parameters of the chosen model only."""
        count = sum(1 for info in self.infos if info.key not in MAIN_KEYS and config_mod.applies_to(info.key, model))
        return f"Advanced ({count} more)"

    def _show_model_fields(self, model: str) -> None:
        """Show only the parameters that mean something to the chosen model (`trainer.config.MODEL_ONLY`)."""
        if model == self._shown_model:
            return
        self._shown_model = model
        for row in self.query(FieldRow):
            row.display = config_mod.applies_to(row.info.key, model)
        self.query_one("#advanced", Collapsible).title = self._advanced_title(model)

    def _after_validation(self, values: dict[str, Any]) -> None:
        self._show_model_fields(str(values.get("model.name", "")))
        self._update_command(values)
        dataset = str(values.get("data.dataset", ""))
        if self.config is not None and dataset != self._scanned:
            self._scanned = dataset
            self.clips = None
            self._scan(Path(dataset).expanduser(), self.config.data.language, self.config.data.sample_rate,
                       self.config.data.resample)
        preset = str(values.get("model.preset"))
        if preset != self._reference_preset:
            self._reference_preset = preset
            self._reference(preset)
        self._update_estimates()

    def run_name(self) -> str:
        if self.resume_run is not None:
            return self.resume_run.name
        return self.query_one("#run-name", Input).value.strip() or "run"

    def save_target(self) -> Path:
        """Where ctrl+s writes: the file this form saved before (same run name), else configs/<run name>.toml."""
        if self._saved is not None and self._saved[2] == self.run_name():
            return self._saved[0]
        return self.app.configs_root / f"{self.run_name()}.toml"

    # --- the equivalent command line ---------------------------------------------------

    def _runs_words(self) -> list[str]:
        """`--runs R` unless the app uses the CLI's default runs folder."""
        if Path(self.app.runs_root).resolve() == (Path.cwd() / "runs").resolve():
            return []
        return ["--runs", _display_path(self.app.runs_root)]

    def _overrides(self, values: dict[str, Any]) -> dict[str, Any]:
        """`--set` values that turn the base config into the form: every key whose resolved value
        differs (paths as typed: `--set` resolves them against the shell's folder, as the form does)."""
        base = self._base_values or {info.key: info.default for info in self.infos}
        if self.config is not None:
            resolved = {f"{section}.{name}": value
                        for section, fields in self.config.to_dict().items() for name, value in fields.items()}
        else:
            resolved = values
        return {key: values[key] if self.by_key[key].path else resolved[key]
                for key in values if resolved.get(key) != base.get(key)}

    def equivalent_command(self, values: dict[str, Any] | None = None) -> str:
        """The `voxtop` command that does what ctrl+l does now."""
        if self.resume_run is not None:
            words = ["voxtop", *self._runs_words(), "resume", self.resume_run.name]
            checkpoint = self._chosen_checkpoint()
            if checkpoint is not None:
                words += ["--checkpoint", _display_path(checkpoint)]
            return command_line(words, self._overrides(values if values is not None else self.raw_values()))
        values = values if values is not None else self.raw_values()
        base = self.base_config or self.save_target()
        words = ["voxtop", *self._runs_words(), "train", _display_path(base), "--name", self.run_name()]
        return command_line(words, self._overrides(values) if self.base_config else {})

    def _chosen_checkpoint(self) -> Path | None:
        selector = self.query("#checkpoint").first()
        return Path(str(selector.value)) if isinstance(selector, Select) else None

    def _update_command(self, values: dict[str, Any] | None = None) -> None:
        self.command = self.equivalent_command(values)
        text = self.command
        if self.resume_run is None and self.base_config is None:
            text = f"ctrl+s saves {_display_path(self.save_target())}, then: {text}"
        width = max(20, (self.size.width or 80) - 2)
        if len(text) > 3 * width:  # the rest in ctrl+o: the form keeps its rows
            text = text[:3 * width - 32] + " ... (ctrl+o: whole command)"
        self.query_one("#command", Static).update(text)

    def action_show_command(self) -> None:
        from tui.screens.confirm import TextScreen

        note = ("" if self.resume_run is not None or self.base_config is not None
                else f"\n\n(ctrl+s first: it writes {_display_path(self.save_target())})")
        self.app.push_screen(TextScreen("The command that does what ctrl+l does", self.command + note))

    @on(Input.Changed)
    @on(Checkbox.Changed)
    @on(Select.Changed)
    def _edited(self, event: Any) -> None:
        """Validate once per burst of edits (mounting 60 fields posts 60 Changed events)."""
        if getattr(event.control, "id", None) == "checkpoint":
            self._update_command()
        elif not self._validation_pending:
            self._validation_pending = True
            self.call_after_refresh(self._validate_later)

    def _validate_later(self) -> None:
        self._validation_pending = False
        self.validate()

    @on(DescendantFocus)
    def _focused(self, event: DescendantFocus) -> None:
        row = next((a for a in event.widget.ancestors if isinstance(a, FieldRow)), None)
        text = ""
        if row is not None:
            info = row.info
            default = "none" if info.default in ("", []) else str(info.default)
            text = f"{info.key}: {info.help} (default {default})"
        elif event.widget.id == "run-name":
            text = "Run name: the run folder is <name>_<date>_<time>; letters, digits, . _ - only"
        self.query_one("#help-line", Static).update(text)

    # --- estimates ----------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="params-scan", exit_on_error=False, description="checking the dataset")
    def _scan(self, path: Path, language: str, sample_rate: int, resample: bool) -> None:
        from trainer.dataset import scan

        try:
            report = scan(path, language, sample_rate, resample)
        except Exception as exc:
            self.post_message(ActionFailed(f"cannot scan {path}: {exc}"))
            return
        self.post_message(DatasetScanned(path, report))

    @work(thread=True, exclusive=True, group="params-reference", exit_on_error=False,
          description="reading earlier runs for the estimates")
    def _reference(self, preset: str) -> None:
        self.post_message(ReferenceReady(preset, preset_reference(self.app.runs_root, preset)))

    @on(DatasetScanned)
    def _scanned_dataset(self, message: DatasetScanned) -> None:
        report = message.report
        self.clips = report.info.get("clips", 0)
        if not report.valid:
            errors = dict(self.errors)
            first = report.errors[0]
            where = f"{first.file}:{first.line}" if first.line else first.file
            errors["data.dataset"] = (f"not valid for these settings: {len(report.errors)} problem(s), "
                                      f"first {where}: {first.message}")
            self._show_errors(errors)
            self.config = None
        self._update_estimates()

    @on(ReferenceReady)
    def _reference_ready(self, message: ReferenceReady) -> None:
        if message.preset == self._reference_preset:
            self.reference = message.reference
            self._update_estimates()

    def _update_estimates(self) -> None:
        widget = self.query_one("#estimates", Static)
        notes = [f"{key} set to {str(value).lower()}: the dataset needs it" for key, value in self.fixes.items()]
        notes += [self.gpu_note] if self.gpu_note else []
        note = "".join(f"{line}\n\n" for line in notes)
        config = self.config
        if config is None:
            widget.update(note + "Estimates\n  fix the problems first")
            return
        if self.clips is None:
            widget.update(note + "Estimates\n  reading the dataset...")
            return
        lines = estimate(self.clips, config.data.val_fraction, config.data.fraction, config.train.batch_size,
                         config.train.epochs, config.train.max_steps, config.checkpoint.max_to_keep,
                         config.checkpoint.keep_best, config.checkpoint.every_steps, config.model.preset,
                         self.reference or PresetReference())
        widget.update(note + "Estimates\n" + "\n".join(f"  {k}: {v}" for k, v in lines.items()))

    # --- actions --------------------------------------------------------------------------

    def _ready(self) -> config_mod.Config | None:
        config = self.validate()
        if config is None or self.name_error:
            count = len(self.errors) + (1 if self.name_error else 0)
            self.notify(f"{count} problem(s) to fix first (listed on the right)", severity="error")
            return None
        return config

    def action_save(self) -> None:
        """Write the config; a file this form did not write is never replaced without asking."""
        config = self._ready()
        if config is None:
            return
        target = self.save_target()
        if self._wrote(target) or not target.exists():
            self._save(config, target, self._wrote(target))
            return
        from tui.screens.confirm import ChoiceScreen

        started_here = " (the config this form started from)" if target == self.base_config else ""
        question = (f"{_display_path(target)} exists{started_here}.\nOverwriting it replaces the whole "
                    "file: its comments and layout are lost.")
        alternative = next_free_path(target)
        answers = [("n", f"save as {_display_path(alternative)}", "new"), ("o", "overwrite it", "overwrite")]

        def answered(answer: str | None) -> None:
            if answer == "overwrite":
                self._save(config, target, True)
            elif answer == "new":
                self._save(config, next_free_path(target), False)

        self.app.push_screen(ChoiceScreen(question, answers), answered)

    def _wrote(self, path: Path) -> bool:
        """Whether `path` is the file this form saved, unchanged since."""
        if self._saved is None or self._saved[0] != path:
            return False
        try:
            return path.stat().st_mtime_ns == self._saved[1]
        except OSError:
            return False

    @work(thread=True, exclusive=True, group="params-save", exit_on_error=False, description="saving the config")
    def _save(self, config: config_mod.Config, path: Path, overwrite: bool) -> None:
        """Write `path`; without `overwrite` only as a new file (a file appearing meanwhile is kept)."""
        from trainer.rundir import atomic_write_text

        text = config_text_for(config, path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if overwrite:
                atomic_write_text(path, text)
            else:
                temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                temp.write_text(text, encoding="utf-8")
                try:
                    os.link(temp, path)  # fails if the name exists: never replaces a file
                finally:
                    temp.unlink()
            mtime_ns = path.stat().st_mtime_ns
        except FileExistsError:
            self.post_message(ActionFailed(f"{_display_path(path)} appeared meanwhile; nothing written, "
                                           "press ctrl+s again"))
            return
        except OSError as exc:
            self.post_message(ActionFailed(f"cannot save {path}: {exc.strerror or exc}"))
            return
        self.post_message(ConfigSaved(path, mtime_ns, config))

    @on(ConfigSaved)
    def _config_saved(self, message: ConfigSaved) -> None:
        """The form now stands for the saved file: the command line names it, with no `--set`."""
        self._saved = (message.path, message.mtime_ns, self.run_name())
        self.base_config = message.path
        self._values_of(message.config)
        self._clean = self.raw_values()
        self.query_one("#title", Static).update(self._title())
        self._update_command()
        self.notify(f"saved {_display_path(message.path)}; run it with: {self.command}", timeout=10)

    def action_launch(self) -> None:
        if self.resume_run is not None:
            selector = self.query_one("#checkpoint")
            if not isinstance(selector, Select):
                self.notify("this run has no checkpoint to resume from", severity="error")
                return
            self.validate()
            problems = [f"{key}: {message}" for key, message in self.errors.items() if resume_settable(key)]
            if problems:  # the greyed fields are the checkpoint's: the trainer judges those
                self.notify(f"{len(problems)} problem(s) to fix first: {problems[0]}", severity="error")
                return
            settings = [f"{key}={toml_value(value)}" for key, value in self._overrides(self.raw_values()).items()]
            self._start(self.resume_run, None, Path(str(selector.value)), settings, "")
            return
        config = self._ready()
        if config is not None:
            self._start(None, config, None, [], self.run_name())

    @work(thread=True, exclusive=True, group="params-launch", exit_on_error=False, description="starting the run")
    def _start(self, run: RunDir | None, config: config_mod.Config | None, checkpoint: Path | None,
               resume_settings: list[str], name: str) -> None:
        """Prepare (new run `name`) or change the resumed run's settings, then start the trainer."""
        from trainer.launch import PAIRED_NETWORKS, prepare_runs

        launcher = self.app.launcher
        try:
            if run is None and config is not None and config.model.name in PAIRED_NETWORKS and not config.model.network:
                runs = prepare_runs(self.app.runs_root, config, name)  # a DC-TTS voice: one run per network
                for each in runs:
                    launcher.start(each, None)
                self.post_message(ActionDone(f"started {len(runs)} linked runs: {', '.join(r.name for r in runs)} "
                                             "(w in the Monitor switches between them)"))
                self.post_message(RunLaunched(runs[0]))
                return
            if run is None:
                run = launcher.prepare(self.app.runs_root, config, name)
            elif resume_settings:
                if run.is_locked():
                    raise RunError(f"{run.name} is being trained; stop it before changing its settings")
                apply_resume_settings(run, resume_settings)
            launcher.start(run, checkpoint)
        except Exception as exc:  # RunError, Refused, OSError: a message, never a traceback
            self.post_message(ActionFailed(f"cannot start the trainer: {exc}"))
            return
        self.post_message(RunLaunched(run))

    @on(RunLaunched)
    def _launched(self, message: RunLaunched) -> None:
        self.app.open_monitor(message.run)

    @on(ActionDone)
    def _done(self, message: ActionDone) -> None:
        self.notify(message.text, timeout=10)

    @on(ActionFailed)
    def _failed(self, message: ActionFailed) -> None:
        self.notify(message.text, severity="error", timeout=10)
