"""Parameters: a form generated from the config schema, inline validation, estimates, launch.

Opened for a new run (from Datasets) or for resuming one (the run's config, read-only,
plus a choice of its checkpoints, newest first).
"""

from __future__ import annotations

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
from trainer.rundir import RunDir, RunError, check_run_prefix
from tui.messages import ActionDone, ActionFailed, DatasetScanned, GpuChecked, ReferenceReady, RunLaunched
from tui.screens.form import MAIN_KEYS, FieldInput, FieldRow, command_line, read_editor, widget_id
from tui.summary import PresetReference, estimate, preset_reference


def _display_path(path: Path) -> str:
    """`path` relative to the working folder when it is below it (shorter, and what users type)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class ParamsScreen(Screen[None]):
    """The launch form; ctrl+l launches (or resumes), ctrl+s saves the TOML."""

    BINDINGS = [
        Binding("ctrl+l", "launch", "Launch"),
        Binding("ctrl+s", "save", "Save TOML"),
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(self, dataset: Path | None = None, resume_run: RunDir | None = None):
        super().__init__()
        self.resume_run = resume_run
        self.load_error: str | None = None
        self.name_error: str | None = None
        self.infos = config_mod.schema()
        self.by_key = {info.key: info for info in self.infos}
        self.initial = self._initial_values(dataset)
        self.errors: dict[str, str] = {}
        self.config: config_mod.Config | None = None
        self.clips: int | None = None
        self._scanned: str | None = None
        self.reference: PresetReference | None = None
        self._reference_preset: str | None = None
        self.command = ""
        self._validation_pending = False
        self._advanced_mounted = False
        self.gpu_note: str | None = None
        """Why the preset was switched to `tiny` (no GPU found), shown above the estimates."""

    def _initial_values(self, dataset: Path | None) -> dict[str, Any]:
        values = {info.key: info.default for info in self.infos}
        if self.resume_run is not None:
            try:
                loaded = config_mod.load(self.resume_run.config_path)
            except config_mod.ConfigError as exc:
                self.load_error = str(exc)
            else:
                for section, fields in loaded.to_dict().items():
                    for name, value in fields.items():
                        values[f"{section}.{name}"] = value
        elif dataset is not None:
            values["data.dataset"] = _display_path(dataset)
        return values

    # --- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        resuming = self.resume_run is not None
        title = f"resume {self.resume_run.name}" if resuming else "new run"
        yield Static(f"voxtop · parameters · {title}", id="title", classes="title")
        with Horizontal(id="params-body"):
            with VerticalScroll(id="form"):
                if resuming:
                    yield Label("Resume from checkpoint (newest first):")
                    yield Select(self._checkpoint_options(), id="checkpoint", allow_blank=False,
                                 compact=True) if self._checkpoint_options() else Static(
                        "This run has no checkpoint to resume from.", id="checkpoint")
                    yield Static("A resumed run keeps its saved config (below, read-only).",
                                 classes="note")
                else:
                    with Horizontal(id="row-name", classes="name-row"):
                        yield Label("Run name")
                        yield FieldInput(self._default_name(), id="run-name", compact=True)
                    yield Static("", id="name-error", classes="error -empty", markup=False)
                for key in MAIN_KEYS:
                    yield FieldRow(self.by_key[key], self.initial[key])
                yield Collapsible(title=f"Advanced ({len(self.infos) - len(MAIN_KEYS)} more)",
                                  collapsed=True, id="advanced")
            with Vertical(id="side"):
                yield Static("", id="estimates", markup=False)
                yield Static("", id="problems", markup=False)
        yield Static("", id="command", markup=False)
        yield Static("", id="help-line", markup=False)
        yield Footer()

    def _checkpoint_options(self) -> list[tuple[str, str]]:
        assert self.resume_run is not None
        return [(f"step {c.step} ({c.path.name})", str(c.path))
                for c in reversed(self.resume_run.checkpoints())]

    def _default_name(self) -> str:
        name = Path(str(self.initial["data.dataset"])).name or "run"
        try:
            return check_run_prefix(name)
        except RunError:
            return "run"

    def on_mount(self) -> None:
        if self.resume_run is not None:
            for row in self.query(FieldRow):
                row.editor.disabled = True
            self.query_one("#checkpoint").focus()
        else:
            self.query_one("#" + widget_id("data.dataset")).focus()
            self._check_gpu()
        self.validate()

    @work(thread=True, exclusive=True, group="params-gpu")
    def _check_gpu(self) -> None:
        reading = self.app.gpu_feed.sample(None).reading
        self.post_message(GpuChecked(len(reading.gpus), reading.reason))

    @on(GpuChecked)
    def _gpu_checked(self, message: GpuChecked) -> None:
        """No GPU here: `full` would take about a minute a step on the CPU, so suggest `tiny`
        (unless the preset was changed already)."""
        key = "model.preset"
        if message.gpus or self.initial[key] != self.by_key[key].default:
            return
        editor = self.query_one("#" + widget_id(key), Select)
        if editor.value != self.by_key[key].default:
            return
        editor.value = "tiny"
        self.gpu_note = (f"No GPU found ({message.reason or 'NVML lists none'}): preset set to tiny; "
                         "full needs a GPU (about a minute a step on a CPU).")
        self.validate()

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
            row.editor.disabled = self.resume_run is not None
        self._show_errors(self.errors)

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

    def _after_validation(self, values: dict[str, Any]) -> None:
        changed = {k: v for k, v in values.items() if v != self.by_key[k].default}
        name = self.run_name()
        self.command = command_line(_display_path(self.config_file()), name, changed)
        self.query_one("#command", Static).update(self.command)
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

    def config_file(self) -> Path:
        return self.app.configs_root / f"{self.run_name()}.toml"

    @on(Input.Changed)
    @on(Checkbox.Changed)
    @on(Select.Changed)
    def _edited(self, event: Any) -> None:
        """Validate once per burst of edits (mounting 60 fields posts 60 Changed events)."""
        if getattr(event.control, "id", None) != "checkpoint" and not self._validation_pending:
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

    @work(thread=True, exclusive=True, group="params-scan")
    def _scan(self, path: Path, language: str, sample_rate: int, resample: bool) -> None:
        from trainer.dataset import scan

        try:
            report = scan(path, language, sample_rate, resample)
        except Exception as exc:
            self.post_message(ActionFailed(f"cannot scan {path}: {exc}"))
            return
        self.post_message(DatasetScanned(path, report))

    @work(thread=True, exclusive=True, group="params-reference")
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
        note = f"{self.gpu_note}\n\n" if self.gpu_note else ""
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
        config = self._ready()
        if config is not None:
            self._save(config, self.config_file())

    @work(thread=True, exclusive=True, group="params-save")
    def _save(self, config: config_mod.Config, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            config_mod.save(config, path)
        except OSError as exc:
            self.post_message(ActionFailed(f"cannot save {path}: {exc.strerror or exc}"))
            return
        self.post_message(ActionDone(f"saved {_display_path(path)}; run it with: {self.command}"))

    def action_launch(self) -> None:
        if self.resume_run is not None:
            selector = self.query_one("#checkpoint")
            if not isinstance(selector, Select):
                self.notify("this run has no checkpoint to resume from", severity="error")
                return
            self._start(self.resume_run, None, Path(str(selector.value)))
            return
        config = self._ready()
        if config is not None:
            self._start(None, config, None)

    @work(thread=True, exclusive=True, group="params-launch")
    def _start(self, run: RunDir | None, config: config_mod.Config | None, checkpoint: Path | None) -> None:
        launcher = self.app.launcher
        try:
            if run is None:
                run = launcher.prepare(self.app.runs_root, config, self.run_name())
            launcher.start(run, checkpoint)
        except Exception as exc:  # RunError, OSError: a message, never a traceback
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
