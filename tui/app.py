"""The voxtop Textual app: screens, global keys, and the door to the trainer (never torch).

Screens import only what the first screen needs; the Monitor (plotext, numpy charts)
is imported when a run is first opened, so the app starts fast.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from tui.messages import FormLoaded
from tui.plain import StripControls, visible
from tui.screens.runs import RunsScreen


class Launcher:
    """How the app starts, stops and resumes trainers; tests substitute a fake."""

    def prepare(self, runs_root: Path, config: Any, name: str | None) -> Any:
        from trainer.launch import prepare_run

        return prepare_run(runs_root, config, name)

    def start(self, run: Any, checkpoint: Path | None = None) -> None:
        """Start the trainer detached; a thread reaps it when it ends, so a killed trainer leaves no zombie
        and its end by a signal is written in train.log."""
        from trainer.launch import start_detached
        from tui.lognote import note_exit

        process = start_detached(run, checkpoint)

        def reap() -> None:
            note_exit(run, process.pid, process.wait())  # a killed trainer cannot say so in train.log itself

        threading.Thread(target=reap, name=f"reap-{process.pid}", daemon=True).start()

    def stop(self, run: Any, kill: bool = False) -> bool:
        from trainer.launch import stop
        from trainer.rundir import RunDir

        folder = run if isinstance(run, RunDir) else getattr(run, "run", None)  # a source: its run folder, if any
        if not isinstance(folder, RunDir):
            raise RuntimeError(f"voxtop did not start {run.name}: stop it where it runs")
        return stop(folder, kill)


class VoxtopApp(App[None]):
    """Launch, watch and resume training runs from the terminal."""

    CSS_PATH = "app.tcss"
    TITLE = "voxtop"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("G", "gpu", "GPU", show=False),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, datasets_root: Path = Path("datasets"), runs_root: Path = Path("runs"), *,
                 refresh_s: float = 1.0, launcher: Launcher | None = None,
                 gpu_sampler: Callable[[], Any] | None = None, gpu_refresh_s: float = 1.0):
        super().__init__()
        self.datasets_root = Path(datasets_root)
        self.runs_root = Path(runs_root)
        self.refresh_s = refresh_s
        """Seconds between refreshes of the Runs table and the Monitor."""
        self.launcher = launcher or Launcher()
        self.gpu_sampler = gpu_sampler
        """Factory of an object with `sample() -> tui.gpu.Reading`; None = tui.gpu.Sampler."""
        self.gpu_refresh_s = gpu_refresh_s
        """Seconds between GPU samples (the GPU panel and view)."""
        self._gpu_feed: Any = None
        self._gpu_feed_lock = threading.Lock()
        self._filters.append(StripControls())  # type: ignore[arg-type]  # no control character reaches the terminal

    def notify(self, message: str, *, title: str = "", severity: Any = "information", timeout: float | None = None,
               markup: bool = False) -> None:
        """A notification, always plain text: messages carry paths, names and errors read from disk,
        which are data, never markup (`markup` is accepted and ignored)."""
        super().notify(visible(message, keep_newlines=True), title=visible(title), severity=severity,
                       timeout=timeout, markup=False)

    @property
    def gpu_feed(self) -> Any:
        """The one GPU sampler and its history (a tui.gpu.GpuFeed), shared by every GPU view and
        sampled only in workers; made on first use, so a start without GPU views never imports it."""
        with self._gpu_feed_lock:
            if self._gpu_feed is None:
                from tui.gpu import GpuFeed

                self._gpu_feed = GpuFeed(self.gpu_sampler)
            return self._gpu_feed

    @property
    def configs_root(self) -> Path:
        """Where the Parameters screen saves config files: beside the runs folder."""
        return self.runs_root.parent / "configs"

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a failed worker becomes something the user sees: a notification of what failed.

        Every worker runs with `exit_on_error=False` and a description, so none can close the app.
        """
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            if isinstance(error, OSError):  # which path, why, and what to do
                from trainer.rundir.faults import describe_os_error

                reason: Any = describe_os_error(error, "reading")
            else:
                reason = error
            self.notify(f"{event.worker.description or event.worker.name} failed: {reason}", severity="error",
                        timeout=10)

    def get_default_screen(self) -> RunsScreen:
        """The Runs screen is the bottom of the stack: no blank default screen to build first."""
        return RunsScreen()

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def home(self) -> None:
        """Back to the Runs screen, closing whatever is above it."""
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def open_datasets(self) -> None:
        from tui.screens.datasets import DatasetsScreen

        self.push_screen(DatasetsScreen())

    def open_params(self, dataset: Path | None = None, resume_run: Any = None,
                    fixes: dict[str, Any] | None = None) -> None:
        """The Parameters form: for a new run of `dataset` (from its saved config, if any, with `fixes`
        set: the settings that make it valid), or to resume. Its configs are read in a worker first."""
        self._load_form(dataset, resume_run, fixes)

    @work(thread=True, exclusive=True, group="open-form", exit_on_error=False,
          description="reading the config for the Parameters form")
    def _load_form(self, dataset: Path | None, resume_run: Any, fixes: dict[str, Any] | None) -> None:
        from tui.screens.params import load_form_inputs

        self.post_message(FormLoaded(load_form_inputs(self.configs_root, dataset, resume_run, fixes)))

    @on(FormLoaded)
    def _form_loaded(self, message: FormLoaded) -> None:
        from tui.screens.params import ParamsScreen

        self.push_screen(ParamsScreen(message.inputs))

    def action_gpu(self) -> None:
        self.open_gpu(None)

    def open_gpu(self, run: Any = None) -> None:
        """Show the full-screen GPU view; `run`'s trainer processes are marked (None: none)."""
        from tui.screens.gpu import GpuScreen

        if not isinstance(self.screen, GpuScreen):
            self.push_screen(GpuScreen(run))

    def open_monitor(self, run: Any) -> None:
        """Show the Monitor of `run` right above the Runs screen."""
        from tui.screens.monitor import MonitorScreen

        self.home()
        self.push_screen(MonitorScreen(run))


def create_app(datasets_root: Path = Path("datasets"), runs_root: Path = Path("runs"),
               **options: Any) -> VoxtopApp:
    """The app factory tests and `voxtop` call."""
    return VoxtopApp(datasets_root=Path(datasets_root), runs_root=Path(runs_root), **options)
