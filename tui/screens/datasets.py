"""Datasets: the datasets folder as a list; the highlighted one's size, or why it is invalid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from tui.messages import ActionFailed, DatasetScanned, DatasetsListed, ScanProgress

MAX_PROBLEMS_SHOWN = 200


def describe_report(path: Path, report: Any) -> str:
    """The text of the detail panel: size figures, warnings, or problems with file:line."""
    from trainer.dataset import format_duration

    lines = [path.name]
    info = report.info or {}
    if report.valid:
        rates = ", ".join(f"{rate} Hz x{n}" for rate, n in (info.get("sample_rates") or {}).items())
        lines += [
            f"  clips        {info.get('clips', 0)}",
            f"  total        {format_duration(info.get('total_s', 0.0))}",
            f"  mean clip    {info.get('mean_s', 0.0):.2f} s "
            f"(min {info.get('min_s', 0.0):.2f} s, max {info.get('max_s', 0.0):.2f} s)",
            f"  rates        {rates or '-'}",
            f"  words        {info.get('words', 0)}",
            f"  language     {info.get('language', '?')}",
        ]
        lines += [f"WARNING: {p.message}" for p in report.problems if p.severity == "warning"]
        lines += ["", "enter: set parameters for this dataset"]
        return "\n".join(lines)
    errors = report.errors
    lines.append(f"INVALID: {len(errors)} problem(s); {info.get('clips', 0)} usable clip(s)")
    for problem in errors[:MAX_PROBLEMS_SHOWN]:
        where = f"{problem.file}:{problem.line}" if problem.line else problem.file
        lines.append(f"  {where}: {problem.message}")
    if len(errors) > MAX_PROBLEMS_SHOWN:
        lines.append(f"  ... and {len(errors) - MAX_PROBLEMS_SHOWN} more "
                     f"(voxtop dataset check {path})")
    return "\n".join(lines)


class DatasetsScreen(Screen[None]):
    """Pick a dataset; its report is computed in a worker (cached on disk by trainer.dataset)."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("g", "rescan", "Rescan", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[Path] = []
        self.reports: dict[Path, Any] = {}

    def compose(self) -> ComposeResult:
        yield Static(f"voxtop · datasets in {self.app.datasets_root}", id="title", classes="title")
        with Horizontal(id="datasets-body"):
            yield OptionList(id="datasets")
            with VerticalScroll(id="dataset-detail-scroll"):
                yield Static("Looking for datasets...", id="dataset-detail", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#datasets", OptionList).focus()
        self._list()

    @work(thread=True, exclusive=True, group="datasets")
    def _list(self) -> None:
        from trainer.dataset import list_datasets

        self.post_message(DatasetsListed(list_datasets(self.app.datasets_root)))

    @on(DatasetsListed)
    def _show_list(self, message: DatasetsListed) -> None:
        self.paths = message.paths
        options = self.query_one("#datasets", OptionList)
        options.clear_options()
        options.add_options([Option(p.name, id=str(p)) for p in self.paths])
        if not self.paths:
            self._detail(f"No datasets in {self.app.datasets_root}.\nA dataset is a folder with "
                         "metadata.csv (id|text lines) and wavs/<id>.wav (LJSpeech format).")
            return
        options.highlighted = 0

    def highlighted_path(self) -> Path | None:
        options = self.query_one("#datasets", OptionList)
        index = options.highlighted
        return self.paths[index] if index is not None and 0 <= index < len(self.paths) else None

    @on(OptionList.OptionHighlighted)
    def _highlighted(self) -> None:
        path = self.highlighted_path()
        if path is None:
            return
        if path in self.reports:
            self._detail(describe_report(path, self.reports[path]))
        else:
            self._detail(f"{path.name}\n  scanning...")
            self._scan(path)

    def action_rescan(self) -> None:
        path = self.highlighted_path()
        if path is not None:
            self.reports.pop(path, None)
            self._highlighted()

    @work(thread=True, exclusive=True, group="scan")
    def _scan(self, path: Path) -> None:
        from trainer.dataset import scan

        def progress(done: int, total: int) -> None:
            self.post_message(ScanProgress(path, done, total))

        try:
            report = scan(path, progress=progress)
        except Exception as exc:  # an unreadable folder must not take the app down
            self.post_message(ActionFailed(f"cannot scan {path}: {exc}"))
            return
        self.post_message(DatasetScanned(path, report))

    @on(ScanProgress)
    def _progress(self, message: ScanProgress) -> None:
        if message.path == self.highlighted_path() and message.path not in self.reports:
            self._detail(f"{message.path.name}\n  scanning... {message.done}/{message.total} clips")

    @on(DatasetScanned)
    def _scanned(self, message: DatasetScanned) -> None:
        self.reports[message.path] = message.report
        if message.path == self.highlighted_path():
            self._detail(describe_report(message.path, message.report))

    @on(ActionFailed)
    def _failed(self, message: ActionFailed) -> None:
        self._detail(message.text)

    @on(OptionList.OptionSelected)
    def _selected(self) -> None:
        path = self.highlighted_path()
        if path is None:
            return
        report = self.reports.get(path)
        if report is None:
            self.notify("still scanning this dataset; try again in a moment")
            return
        if not report.valid:
            self.notify(f"{path.name} is not valid: fix the problems listed first", severity="error")
            return
        self.app.open_params(dataset=path)

    def _detail(self, text: str) -> None:
        self.query_one("#dataset-detail", Static).update(text)
