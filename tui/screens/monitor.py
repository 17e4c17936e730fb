"""Monitor: one run live: progress and ETA, loss and attention charts, alignment picture,
checkpoints (watchdog), log tail, events, GPU; stop, kill and resume.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from rich.text import Text
from textual.containers import Grid, Horizontal, Vertical
from textual.reactive import reactive
from textual.widget import Widget
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from trainer.rundir import ACTIVE_STATES, RunDir
from tui.follow import CheckpointWatcher
from tui.audio import Player
from tui.gpu import TrainerLookup
from tui.lognote import note_in_log
from tui.messages import ActionDone, ActionFailed, CheckpointsChanged, GpuSampled, RunUpdated
from tui.screens.monitor_data import (DEFAULT_CHARTS, DEFAULT_SMOOTHING, ChartSettings, MonitorModel, MonitorView,
                                      progress_text, smoothing_step, title_text)
from tui.widgets.chart_keys import CHART_BINDINGS, ChartKeys
from tui.widgets.chart_readout import ChartReadout
from tui.widgets.chart_model import LABEL_ROOM, ChartWindow
from tui.widgets.checkpoint_table import CheckpointTable
from tui.widgets.gpu_panel import GpuPanel
from tui.widgets.health_line import HealthLine
from tui.widgets.heatmap import Heatmap
from tui.widgets.line_chart import LineChart
from tui.widgets.log_tail import LogTail
from tui.workers import ReportsWorkerFailures
from tui.plain import plain, visible

NARROW_COLUMNS = 100  # below this terminal width the Monitor's two columns share the width equally
HOST_ONLY_REFRESH_S = 5.0  # with no GPU to show, the host figures need no faster refresh


def export_folder(root: Path, name: str) -> Path:
    """`root/name`, or `root/name-2`, `-3`... when that folder already holds an export."""
    out, number = root / name, 2
    while out.exists() and (not out.is_dir() or any(out.iterdir())):
        out, number = root / f"{name}-{number}", number + 1
    return out


class ProgressLine(Widget):
    """One line of text that repaints without a layout pass (it changes every second)."""

    text: reactive[str] = reactive("", layout=False)
    """The line shown."""

    def render(self) -> Text:
        return Text(self.text, no_wrap=True, overflow="ellipsis")


class MonitorScreen(ChartKeys, ReportsWorkerFailures, Screen[None]):
    """Follows one run; redraws only when `MonitorModel.update` reports new data."""

    BINDINGS = [
        *CHART_BINDINGS,
        Binding("slash", "pick_metrics", "Metrics", show=False),
        Binding("escape", "back", "Back", show=False),  # the footer keeps its 80 columns for the run's keys
        Binding("left_square_bracket", "smoothing(-1)", "Smooth-", show=False),
        Binding("right_square_bracket", "smoothing(1)", "Smooth+", show=False),
        Binding("m", "toggle_picture", "Mel/Align"),
        Binding("z", "zoom", "Zoom"),
        Binding("s", "stop(False)", "Stop"),
        Binding("k", "stop(True)", "Kill"),
        Binding("r", "resume", "Resume"),
        Binding("e", "export", "Export"),
        Binding("g", "gpu", "GPU"),
        Binding("G", "gpu", "GPU", show=False),
        Binding("w", "pair", "Pair", show=False),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self, run: RunDir):
        super().__init__()
        self.run = run
        self.model = MonitorModel(run)
        self.smoothing = DEFAULT_SMOOTHING
        self.picture_kind = "alignment"
        self.view: MonitorView | None = None
        self.watcher: CheckpointWatcher | None = None
        self.updates = 0
        """How many views were drawn (tests use it to see that idle polls redraw nothing)."""
        self._texts: dict[str, str] = {}
        self._host_only = False  # the last GPU sample found no GPU
        self._sampled_at = -HOST_ONLY_REFRESH_S
        self._trainer_lookup = TrainerLookup()  # the GPU worker's own cache of the trainer's processes
        self.asked: str | None = None
        """"stop" or "kill" once the user asked the trainer to end, so the title says so at once."""
        self.picture_step: int | None = None
        """The checkpoint chosen in the table, whose picture is shown; None: the newest."""
        self.player = Player()
        """Plays the checkpoints' audio, one clip at a time."""
        self.chart_window = ChartWindow()
        """The x view both charts share: zoom, pan, follow latest, cursor, log y, outliers, x axis."""
        self.chart_metrics: tuple[tuple[str, ...], ...] | None = None
        """The metrics of each chart; None until the run's remembered choice (or the default) is known."""
        self._charts_shown: dict[str, Any] = {}  # the chart specs drawn, by widget id

    def compose(self) -> ComposeResult:
        yield Static(f"{visible(self.run.name)} · reading...", id="mon-title", classes="title", markup=False)
        yield ProgressLine(id="mon-progress")
        yield HealthLine(id="mon-health")
        with Grid(id="mon-grid"):
            yield LineChart("loss", id="loss", classes="panel")
            yield Heatmap(id="picture", classes="panel")
            yield LineChart("attention score", id="attention", classes="panel")
            yield CheckpointTable(id="checkpoints")
        yield ChartReadout(id="mon-cursor")
        with Horizontal(id="mon-bottom"):
            yield LogTail(id="log")
            with Vertical(id="mon-side"):
                yield GpuPanel(id="gpu")
                yield LogTail("no events", id="events")
        yield Footer()

    def on_mount(self) -> None:
        for widget_id, title in (("picture", "alignment"), ("checkpoints", "checkpoints (enter: listen, export)"),
                                 ("log", "train.log"), ("events", "events"), ("gpu", "gpu (g: full view)")):
            self.query_one(f"#{widget_id}").border_title = title
        for panel in self.query(".panel"):
            panel.can_focus = True
        folder = self.model.source.checkpoints_dir
        if folder is not None:
            self.watcher = CheckpointWatcher(folder, lambda: self.post_message(CheckpointsChanged()))
            self.watcher.start()
        self.refresh_view()
        self.set_interval(self.app.refresh_s, self.refresh_view)
        self.set_interval(self.app.gpu_refresh_s, self._gpu_tick)

    def on_unmount(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        self.player.stop()

    # --- following ------------------------------------------------------------------

    def refresh_view(self, force: bool = False) -> None:
        """Poll the run in a worker; widths are read here, on the UI thread."""
        self.model.chart_settings = ChartSettings(self.chart_metrics, self.chart_window)
        loss_width = self.query_one("#loss").content_size.width
        attention_width = self.query_one("#attention").content_size.width
        self._follow(loss_width, attention_width, self.smoothing, self.picture_kind, force, self.picture_step)

    @work(thread=True, exclusive=True, group="follow", exit_on_error=False, description="reading the run")
    def _follow(self, loss_width: int, attention_width: int, smoothing: float, picture_kind: str,
                force: bool, picture_step: int | None) -> None:
        try:
            view = self.model.update(loss_width, attention_width, smoothing, picture_kind, force, picture_step)
        except Exception as exc:  # unreadable files must show as a message, not end the app
            self.post_message(ActionFailed(f"cannot read {self.run.path}: {exc}"))
            return
        if view is not None:
            self.post_message(RunUpdated(view))

    @on(CheckpointsChanged)
    def _checkpoints_changed(self) -> None:
        self.refresh_view()

    @on(DataTable.RowHighlighted, "#checkpoints")
    def _checkpoint_highlighted(self) -> None:
        """The picture follows the checkpoint the user moves to; the newest while the table follows itself."""
        table = self.query_one("#checkpoints", CheckpointTable)
        step = table.selected_step() if table.user_chose() else None
        if step != self.picture_step:
            self.picture_step = step
            self.refresh_view()

    @on(DataTable.RowSelected, "#checkpoints")
    def _checkpoint_selected(self) -> None:
        """Enter on a checkpoint: its picture, and a dialog with its audio, export and resume."""
        table = self.query_one("#checkpoints", CheckpointTable)
        checkpoint = table.selected()
        if checkpoint is None:
            return
        if checkpoint.step != self.picture_step:
            self.picture_step = checkpoint.step
            self.refresh_view()
        from tui.screens.checkpoint import CheckpointScreen

        view = self.view
        record = view.checkpoint_records.get(checkpoint.step, {}) if view is not None else {}
        health = view.checkpoint_health.get(checkpoint.step) if view is not None else None
        tags = view.checkpoint_tags.get(checkpoint.step, []) if view is not None else []
        alignment = self.model.follower.history.alignment or {}
        sentence = alignment.get("text") if isinstance(alignment.get("text"), str) else None
        self.app.push_screen(CheckpointScreen(self.run, checkpoint, record.get("val_loss"), health, list(tags),
                                              sentence, self.player), self._checkpoint_chosen)

    def _checkpoint_chosen(self, choice: str | None) -> None:
        if choice == "export":
            self.action_export()
        elif choice == "resume":
            self.action_resume()

    def on_resize(self) -> None:
        # below 100 columns the right-hand panels (picture, checkpoint table) get half the width, so the
        # table's step, val loss, reads, heard and tags fit at 80 columns
        self.query_one("#mon-grid").styles.grid_columns = "1fr 1fr" if self.size.width < NARROW_COLUMNS else "3fr 2fr"
        self._show_health()
        self.call_after_refresh(self.refresh_view)

    @on(RunUpdated)
    def _show(self, message: RunUpdated) -> None:
        """Update the widgets whose part of the view changed; the model reuses unchanged parts."""
        view: MonitorView = message.view
        previous, self.view = self.view, view
        self.updates += 1
        if self.asked is not None and (previous is not None and previous.state not in ACTIVE_STATES
                                       and view.state in ACTIVE_STATES):
            self.asked = None  # resumed since: a new trainer
        progress = self.query_one("#mon-progress", ProgressLine)
        self._set_text("#mon-title", title_text(view, self.asked))
        progress.text = progress_text(view, progress.content_size.width or 78)
        self._show_charts(view.loss, view.attention)
        self._show_cursor(view.cursor_text, view.chart_metrics)
        if (previous is None or view.picture is not previous.picture
                or (view.picture_title, view.picture_normalise) != (previous.picture_title, previous.picture_normalise)):
            picture = self.query_one("#picture", Heatmap)
            picture.show(view.picture, view.picture_normalise, "waiting for the first checkpoint")
            picture.border_title = plain(view.picture_title)
        self._show_health()
        live = view.state in ACTIVE_STATES
        if previous is None or (view.checkpoints, view.checkpoint_tags, view.checkpoint_records,
                                view.checkpoint_health, live) != (
                previous.checkpoints, previous.checkpoint_tags, previous.checkpoint_records,
                previous.checkpoint_health, previous.state in ACTIVE_STATES):
            self.query_one("#checkpoints", CheckpointTable).show(
                view.checkpoints, view.checkpoint_records, view.checkpoint_tags, view.recommended,
                view.checkpoint_health, pending=live)
        if previous is None or view.log_lines is not previous.log_lines:
            self.query_one("#log", LogTail).show(view.log_lines)
        events = list(view.events[-6:]) or ["no events"]
        if view.malformed:
            events.append(f"{view.malformed} malformed metrics line(s) skipped")
        self.query_one("#events", LogTail).show(events)

    def _show_charts(self, *specs: Any) -> None:
        """Draw the chart specs not drawn yet (a key's synchronous redraw and the worker's view share them)."""
        for widget_id, spec in zip(("loss", "attention"), specs):
            if spec is not self._charts_shown.get(widget_id):
                self._charts_shown[widget_id] = spec
                self.query_one(f"#{widget_id}", LineChart).show(
                    spec.lines, spec.y_limits, spec.title, spec.vlines, x_limits=spec.x_limits, x_ticks=spec.x_ticks,
                    y_ticks=spec.y_ticks, cursor=spec.cursor)

    def _show_cursor(self, cursor_text: str, chart_metrics: Any = None) -> None:
        """The cursor readout under the charts (hidden without a cursor), and the metrics now shown."""
        if self.chart_metrics is None and chart_metrics is not None:
            self.chart_metrics = chart_metrics
        text = cursor_text
        if text and self.chart_window.describe() != "x: step · following":
            text += f" · {self.chart_window.describe()}"
        self.query_one("#mon-cursor", ChartReadout).text = text

    # --- charts ------------------------------------------------------------------------

    def chart_extent(self) -> tuple[float, float] | None:
        return self.view.chart_extent if self.view is not None else None

    def plot_columns(self) -> int:
        return max(1, self.query_one("#loss", LineChart).content_size.width - LABEL_ROOM)

    def chart_window_changed(self) -> None:
        """Redraw the charts at once from what was read (numpy on the UI thread, no file read); the worker
        when that cannot be done now."""
        self.model.chart_settings = ChartSettings(self.chart_metrics, self.chart_window)
        redrawn = self.model.rechart(self.query_one("#loss").content_size.width,
                                     self.query_one("#attention").content_size.width, self.smoothing)
        if redrawn is None:
            self.refresh_view()
            return
        loss, attention, cursor_text = redrawn
        self._show_charts(loss, attention)
        self._show_cursor(cursor_text)

    def _chart_index(self) -> int:
        """The chart the metric picker changes: the focused one, else the first."""
        return 1 if self.focused is not None and self.focused.id == "attention" else 0

    def action_pick_metrics(self) -> None:
        """Choose the focused chart's metrics from every numeric field of the run's records."""
        from tui.screens.metric_picker import MetricPicker

        index = self._chart_index()
        current = (self.chart_metrics or DEFAULT_CHARTS)[index]
        names = self.view.metric_names if self.view is not None else []
        title = f"{'first' if index == 0 else 'second'} chart of {self.run.name}: metrics"
        self.app.push_screen(MetricPicker(title, names, current, DEFAULT_CHARTS[index]),
                             lambda chosen: self._metrics_chosen(index, chosen))

    def _metrics_chosen(self, index: int, chosen: tuple[str, ...] | None) -> None:
        if not chosen:
            return
        charts = list(self.chart_metrics or DEFAULT_CHARTS)
        charts[index] = tuple(chosen)
        self.chart_metrics = tuple(charts)
        self._remember_charts(self.chart_metrics)
        self.refresh_view()

    @work(thread=True, exclusive=True, group="remember", exit_on_error=False,
          description="remembering the chart choice")
    def _remember_charts(self, charts: tuple[tuple[str, ...], ...]) -> None:
        from tui.widgets.chart_state import save_choice

        save_choice(self.run.path, charts=[list(chart) for chart in charts])

    def _show_health(self) -> None:
        """The newest health record, with one recognised sentence below it (two on a tall screen)."""
        line = self.query_one("#mon-health", HealthLine)
        line.health = self.view.health if self.view is not None else None
        line.heard_count = 1 if self.size.height < 40 else 2

    def _set_text(self, selector: str, text: str) -> None:
        """Update a Static only when its text differs (an update costs a layout pass)."""
        widget = self.query_one(selector, Static)
        if self._texts.get(selector) != text:
            self._texts[selector] = text
            widget.update(visible(text, keep_newlines=True))

    def _gpu_tick(self) -> None:
        if not self.is_current:  # under the GPU view, that view samples; one sampler, one history
            return
        if self._host_only and time.monotonic() - self._sampled_at < HOST_ONLY_REFRESH_S:
            return
        self._sampled_at = time.monotonic()
        self._sample_gpu(self.run, self._trainer_key())

    def on_screen_resume(self) -> None:  # also on the first push: the first sample without a wait
        self._sample_gpu(self.run, self._trainer_key())

    @work(thread=True, exclusive=True, group="gpu", exit_on_error=False, description="sampling the GPU")
    def _sample_gpu(self, run: RunDir, trainer_key: tuple[Any, ...]) -> None:
        self.post_message(GpuSampled(self.app.gpu_feed.sample(self._trainer_lookup.processes(run, trainer_key))))

    def _trainer_key(self) -> tuple[Any, ...]:
        """What names the run's trainer: when it changes, its processes are looked up again (UI thread)."""
        status = self.model.follower.status or {}
        return (status.get("pid"), status.get("pgid"), status.get("host"), self._state())

    @on(GpuSampled)
    def _show_gpu(self, message: GpuSampled) -> None:
        reading = getattr(message.snapshot, "reading", message.snapshot)
        self._host_only = not getattr(reading, "gpus", None)
        self.query_one("#gpu", GpuPanel).show(message.snapshot)

    # --- keys -------------------------------------------------------------------------

    def action_back(self) -> None:
        if self.maximized is not None:
            self.minimize()
        else:
            self.app.pop_screen()

    def action_gpu(self) -> None:
        self.app.open_gpu(self.run)

    def action_smoothing(self, direction: int) -> None:
        self.smoothing = smoothing_step(self.smoothing, direction)
        self.refresh_view()

    def action_toggle_picture(self) -> None:
        self.picture_kind = "mel" if self.picture_kind == "alignment" else "alignment"
        self.refresh_view()

    def action_zoom(self) -> None:
        if self.maximized is not None:
            self.minimize()
        elif self.focused is not None:
            self.maximize(self.focused)
            self.call_after_refresh(self.refresh_view)

    def _state(self) -> str:
        return self.model.follower.state

    def action_stop(self, kill: bool) -> None:
        from tui.screens.confirm import ConfirmScreen

        if self._state() not in ACTIVE_STATES:
            self.notify(f"{self.run.name} is {self._state()}: no trainer to stop", severity="warning")
            return
        question = (f"Kill the trainer of {self.run.name} now?\nProgress since the last checkpoint "
                    "is lost." if kill else
                    f"Stop {self.run.name}?\nThe trainer saves a checkpoint, then exits.")
        self.app.push_screen(ConfirmScreen(question), lambda yes: self._ask_stop(kill) if yes else None)

    def _ask_stop(self, kill: bool) -> None:
        """Say at once what happens next, then signal the trainer in a worker."""
        self.asked = "kill" if kill else "stop"
        if self.view is not None:
            self._set_text("#mon-title", title_text(self.view, self.asked))
        self._stop(kill)

    @work(thread=True, exclusive=True, group="control", exit_on_error=False, description="stopping the run")
    def _stop(self, kill: bool) -> None:
        try:
            signalled = self.app.launcher.stop(self.run, kill)
        except Exception as exc:
            self.post_message(ActionFailed(f"cannot signal the trainer: {exc}"))
            return
        if not signalled:
            self.post_message(ActionFailed("no live trainer to signal (it may have just ended)"))
            return
        if kill:
            pid = (self.model.follower.status or {}).get("pid")
            note_in_log(self.run, f"voxtop: killed the trainer (pid {pid}) from the Monitor; progress since "
                                  "the last checkpoint is lost", pid if isinstance(pid, int) else None)
        self.post_message(ActionDone("killed the trainer" if kill else
                                     "asked the trainer to save a checkpoint and stop: it finishes its step, "
                                     "then saves"))

    def action_resume(self) -> None:
        if self._state() in ACTIVE_STATES:
            self.notify(f"{self.run.name} is {self._state()}; stop it before resuming", severity="warning")
            return
        table = self.query_one("#checkpoints", CheckpointTable)
        checkpoint = self._chosen_checkpoint()
        if checkpoint is None:
            self.notify("no checkpoint to resume from yet", severity="error")
            return
        reason = (self.view.analysis.get("recommended_reason") if self.view is not None else None) or "lowest val loss"
        recommended = reason if checkpoint.step == table.recommended else None
        from tui.screens.confirm import ConfirmScreen

        why = f" (recommended: {recommended})" if recommended else ""
        question = (f"Resume {self.run.name} from step {checkpoint.step}{why}?\n"
                    "A trainer starts again from that checkpoint and keeps training.")
        self.app.push_screen(ConfirmScreen(question), lambda yes: self._resume(
            checkpoint.path, checkpoint.step, recommended) if yes else None)

    @work(thread=True, exclusive=True, group="control", exit_on_error=False, description="resuming the run")
    def _resume(self, path: Any, step: int, recommended: str | None) -> None:
        try:
            self.app.launcher.start(self.run, path)
        except Exception as exc:
            self.post_message(ActionFailed(f"cannot resume: {exc}"))
            return
        why = f" (recommended: {recommended})" if recommended else ""
        self.post_message(ActionDone(f"resuming {self.run.name} from step {step}{why}"))

    def _chosen_checkpoint(self) -> Any:
        """The checkpoint selected in the table, else the recommended one, else the newest."""
        table = self.query_one("#checkpoints", CheckpointTable)
        recommended = next((c for c in table.checkpoints if c.step == table.recommended), None)
        return table.selected() or recommended or (table.checkpoints[0] if table.checkpoints else None)

    def action_export(self) -> None:
        """`voxtop export` of the selected checkpoint into exports/ beside the runs folder (asks first)."""
        checkpoint = self._chosen_checkpoint()
        if checkpoint is None:
            self.notify("no checkpoint to export yet", severity="error")
            return
        out = export_folder(self.app.runs_root.parent / "exports", f"{self.run.name}-step{checkpoint.step}")
        from tui.screens.confirm import ConfirmScreen

        question = (f"Export step {checkpoint.step} of {self.run.name} to {out}?\n"
                    "Weights, config and alphabet, for synthesis (voxtop export).")
        self.app.push_screen(ConfirmScreen(question),
                             lambda yes: self._export(checkpoint.path, checkpoint.step, out) if yes else None)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False, description="exporting the checkpoint")
    def _export(self, checkpoint: Path, step: int, out: Path) -> None:
        """Run `voxtop export` as its own process: it loads torch, which the TUI never imports."""
        self.post_message(ActionDone(f"exporting to {out}…"))
        command = [sys.executable, "-m", "tui.cli", "export", str(self.run.path), str(out),
                   "--checkpoint", str(checkpoint)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.post_message(ActionFailed(f"cannot export: {exc}"))
            return
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            self.post_message(ActionFailed(f"export failed: {lines[-1] if lines else done.returncode}"))
            return
        self.post_message(ActionDone(f"exported step {step} to {out}"))

    @on(ActionDone)
    def _done(self, message: ActionDone) -> None:
        self.notify(message.text)
        self.refresh_view(force=True)

    @on(ActionFailed)
    def _failed(self, message: ActionFailed) -> None:
        self.notify(message.text, severity="error", timeout=8)

    def action_pair(self) -> None:
        """The Monitor of the other run of a linked pair (a DC-TTS voice: Text2Mel and SSRN), in place of this one."""
        import tomllib

        try:
            model = tomllib.loads(self.run.config_path.read_text(encoding="utf-8")).get("model", {})
        except (OSError, ValueError) as exc:
            self.notify(f"cannot read {self.run.config_path}: {exc}", severity="error")
            return
        pair = model.get("pair", "") if isinstance(model, dict) else ""
        other = self.run.path.parent / pair if isinstance(pair, str) and pair else None
        if other is None or not (other / "config.toml").is_file():
            self.notify("this run has no paired run (a DC-TTS voice trains Text2Mel and SSRN as a pair)"
                        if other is None else f"its paired run {pair} is not in {self.run.path.parent}",
                        severity="warning")
            return
        self.app.switch_screen(MonitorScreen(RunDir(other)))
