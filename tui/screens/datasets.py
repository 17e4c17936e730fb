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
from tui.workers import ReportsWorkerFailures
from tui.plain import plain, visible

MAX_PROBLEMS_SHOWN = 200
#: Problems of one kind listed before the rest of that kind is summed up (10 files at 44.1 kHz
#: are one problem to the user, not ten).
SHOWN_PER_KIND = 2

#: Problems a setting fixes, so the form can be opened with it: code -> (key, value, what it does).
FIXES: dict[str, tuple[str, Any, str]] = {
    "sample_rate": ("data.resample", True, "clips at another rate are resampled as features are made"),
    "channels": ("data.resample", True, "clips with several channels are mixed down to mono"),
}


def fixes_for(report: Any) -> dict[str, Any] | None:
    """The settings that fix every error of `report`, or None when some error needs the user's hand."""
    errors = report.errors
    if not errors or any(problem.code not in FIXES for problem in errors):
        return None
    return {FIXES[problem.code][0]: FIXES[problem.code][1] for problem in errors}


def _grouped_problems(errors: list[Any]) -> list[str]:
    """Problem lines grouped by kind: the first few of each kind, then how many more and where."""
    kinds: dict[str, list[Any]] = {}
    for problem in errors:
        kinds.setdefault(problem.code or problem.message, []).append(problem)
    lines: list[str] = []
    for problems in kinds.values():
        for problem in problems[:SHOWN_PER_KIND]:
            where = f"{problem.file}:{problem.line}" if problem.line else problem.file
            lines.append(f"  {where}: {problem.message}")
        rest = problems[SHOWN_PER_KIND:]
        if rest:
            files = ", ".join(p.file for p in rest[:3]) + (", ..." if len(rest) > 3 else "")
            lines.append(f"  ... and {len(rest)} more of this kind ({files})")
        if len(lines) >= MAX_PROBLEMS_SHOWN:
            break
    return lines


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
    lines += _grouped_problems(errors)
    lines.append(f"  (voxtop dataset check {path} lists every one)")
    fixes = fixes_for(report)
    if fixes:
        settings = ", ".join(f"{key} = {str(value).lower()}" for key, value in fixes.items())
        how = "; ".join(dict.fromkeys(FIXES[p.code][2] for p in errors))
        lines += ["", f"voxtop can fix this: {settings} ({how}).",
                  f"enter: set parameters for this dataset with {settings}"]
    return "\n".join(lines)


class DatasetsScreen(ReportsWorkerFailures, Screen[None]):
    """Pick a dataset; its report is computed in a worker (cached on disk by trainer.dataset)."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("enter", "open", "Set parameters"),
        Binding("f5", "rescan", "Rescan", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[Path] = []
        self.reports: dict[Path, Any] = {}

    def compose(self) -> ComposeResult:
        yield Static(f"voxtop · datasets in {visible(self.app.datasets_root)}", id="title", classes="title", markup=False)
        with Horizontal(id="datasets-body"):
            yield OptionList(id="datasets")
            with VerticalScroll(id="dataset-detail-scroll"):
                yield Static("Looking for datasets...", id="dataset-detail", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#datasets", OptionList).focus()
        self._list()

    @work(thread=True, exclusive=True, group="datasets", exit_on_error=False, description="listing the datasets")
    def _list(self) -> None:
        from trainer.dataset import list_datasets

        self.post_message(DatasetsListed(list_datasets(self.app.datasets_root)))

    @on(DatasetsListed)
    def _show_list(self, message: DatasetsListed) -> None:
        self.paths = message.paths
        options = self.query_one("#datasets", OptionList)
        options.clear_options()
        options.add_options([Option(plain(p.name), id=str(p)) for p in self.paths])  # a folder name is never markup
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

    @work(thread=True, exclusive=True, group="scan", exit_on_error=False, description="checking the dataset")
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

    def action_open(self) -> None:
        """Enter with the focus elsewhere (the detail pane after shift+tab) opens the highlighted dataset too."""
        self._selected()

    @on(OptionList.OptionSelected)
    def _selected(self) -> None:
        path = self.highlighted_path()
        if path is None:
            return
        report = self.reports.get(path)
        if report is None:
            self.notify("still scanning this dataset; try again in a moment")
            return
        if report.valid:
            self.app.open_params(dataset=path)
            return
        fixes = fixes_for(report)
        if fixes is None:
            self.notify(f"{path.name} is not valid: fix the problems listed first", severity="error")
            return
        self.app.open_params(dataset=path, fixes=fixes)

    def _detail(self, text: str) -> None:
        self.query_one("#dataset-detail", Static).update(visible(text, keep_newlines=True))
