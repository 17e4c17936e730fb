"""Runs (home): every run with state, progress and last losses; new, open, resume, delete."""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from trainer.rundir import ACTIVE_STATES, RunDir, inside, list_runs
from tui.messages import ActionDone, ActionFailed, RunLaunched, RunsListed
from tui.states import state_word
from tui.summary import RunSummary, RunsIndex, is_voxtop_run, source_at
from tui.widgets.tables import fill_table
from tui.workers import ReportsWorkerFailures
from tui.plain import visible

COLUMNS = (("run", "name"), ("state", "state"), ("step", "step"), ("ep", "epoch"),
           ("train", "train"), ("val", "val"), ("attn", "attn"), ("started", "started"))


def _loss(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_row(summary: RunSummary) -> tuple[str, ...]:
    """The table cells of one run, plain text (no colour needed)."""
    step = f"{summary.step}/{summary.total_steps}" if summary.total_steps else str(summary.step)
    started = (time.strftime("%m-%d %H:%M", time.localtime(summary.started_at))
               if summary.started_at else "-")
    return (summary.name, state_word(summary.state), step, str(summary.epoch), _loss(summary.train_loss),
            _loss(summary.val_loss), _loss(summary.attention, 2), started)


def summarise_runs(index: RunsIndex) -> list[RunSummary]:
    """`index.refresh()`, except that a run whose files cannot be read is listed as `unreadable`
    with the reason, instead of hiding every other run."""
    try:
        return index.refresh()
    except Exception:  # noqa: BLE001 — find the culprit run by run
        summaries = []
        for run in list_runs(index.runs_root):
            try:
                summaries.append(index.summary(run))
            except Exception as exc:  # noqa: BLE001
                reason = f"unreadable files: {exc.strerror if isinstance(exc, OSError) else exc}"
                summaries.append(RunSummary(run.name, run.path, "unreadable", 0, 0, 0, None, None, None, None,
                                            reason, 0))
        return summaries


if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass
class RunPairs(Message):
    """Which runs are linked (DC-TTS: Text2Mel and SSRN): run name -> the other run's name."""

    pairs: dict[str, str]


class PairReader:
    """`[model] pair` of each run's config.toml, read again only when the file changes (worker side)."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[int, str]] = {}

    def pair_of(self, path: Path) -> str:
        config = path / "config.toml"
        try:
            mtime = config.stat().st_mtime_ns
            cached = self._cache.get(path)
            if cached is None or cached[0] != mtime:
                model = tomllib.loads(config.read_text(encoding="utf-8")).get("model", {})
                pair = model.get("pair", "") if isinstance(model, dict) else ""
                cached = self._cache[path] = (mtime, pair if isinstance(pair, str) else "")
            return cached[1]
        except (OSError, ValueError, UnicodeDecodeError):
            return ""

    def pairs(self, summaries: list[RunSummary]) -> dict[str, str]:
        """Run name -> partner, for runs whose partner is listed too and names them back."""
        named = {s.name: self.pair_of(s.path) for s in summaries}
        return {name: other for name, other in named.items() if other and named.get(other) == name}


def pair_order(summaries: list[RunSummary], pairs: dict[str, str]) -> list[tuple[RunSummary, str]]:
    """The runs in their order, each pair's second run right under its first: (summary, mark), the
    mark `┌ ` on a pair's first row and `└ ` on its second (no colour needed)."""
    by_name = {s.name: s for s in summaries}
    placed: set[str] = set()
    ordered: list[tuple[RunSummary, str]] = []
    for summary in summaries:
        if summary.name in placed:
            continue
        partner = pairs.get(summary.name)
        placed.add(summary.name)
        if partner in by_name and partner not in placed:
            ordered += [(summary, "┌ "), (by_name[partner], "└ ")]
            placed.add(partner)
        else:
            ordered.append((summary, ""))
    return ordered


def is_deletable_run(runs_root: Path, path: Path) -> bool:
    """Whether `path` is a run folder right inside `runs_root`: a real folder (no symlink out),
    not the root itself, nothing reached through `..`, and with the run's config.toml."""
    return (inside(runs_root, path) and path.resolve().parent == Path(runs_root).resolve()
            and not path.is_symlink() and path.is_dir() and (path / "config.toml").is_file())


class RunsScreen(ReportsWorkerFailures, Screen[None]):
    """The home screen: a table of runs, refreshed every few seconds from status + metrics tail."""

    AUTO_FOCUS = None  # the table is focused right after the first paint (on_mount)
    BINDINGS = [
        Binding("t", "demo", "Demo"),
        Binding("n", "new_run", "New"),
        Binding("o", "open_run", "Open"),
        Binding("r", "resume", "Resume"),
        Binding("p", "resume_pick", "Resume from"),
        Binding("d", "delete", "Delete"),
        Binding("g", "app.gpu", "GPU"),
        Binding("space", "mark", "Mark", show=False),
        Binding("c", "compare", "Compare", show=False),
        Binding("f5", "refresh", "Refresh", show=False),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.summaries: dict[str, RunSummary] = {}
        self._rows: list[tuple[str, ...]] = []
        self._index: RunsIndex | None = None
        self.marked: list[str] = []
        """The runs marked for the compare view (space), in the order they were marked."""
        self.pairs: dict[str, str] = {}
        """Linked runs (a DC-TTS voice's Text2Mel and SSRN): name -> the other's name."""
        self._pair_reader = PairReader()  # used by the listing worker only

    def compose(self) -> ComposeResult:
        yield Static(f"voxtop · Runs · folder {visible(self.app.runs_root)}", id="title", classes="title", markup=False)
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Static("", id="run-detail", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        fill_table(table, COLUMNS, [], [])
        # Focus after the first paint: focusing restyles the screen, and the first frame need not wait.
        self.call_after_refresh(table.focus)
        self._index = RunsIndex(self.app.runs_root)
        self.action_refresh()
        self.set_interval(max(self.app.refresh_s, 1.0) * 2, self._tick)

    def on_screen_resume(self) -> None:
        self.action_refresh()

    # --- data -----------------------------------------------------------------------

    def action_refresh(self) -> None:
        self._list_runs()

    def _tick(self) -> None:
        """The periodic refresh, skipped while another screen (the Monitor) covers this one:
        on_screen_resume refreshes on the way back."""
        if self.app.screen is self:  # `is_current` is also true under a screen that lets it show through
            self._list_runs()

    @work(thread=True, exclusive=True, group="runs", exit_on_error=False, description="listing the runs")
    def _list_runs(self) -> None:
        assert self._index is not None
        try:
            summaries = summarise_runs(self._index)
            self.post_message(RunPairs(self._pair_reader.pairs(summaries)))
            self.post_message(RunsListed(summaries))
        except OSError as exc:
            self.post_message(ActionFailed(f"cannot read {self.app.runs_root}: {exc.strerror or exc}"))
        except Exception as exc:  # a run's files in a shape nobody expected: a message, not a crash
            self.post_message(ActionFailed(f"cannot list the runs in {self.app.runs_root}: "
                                           f"{type(exc).__name__}: {exc}"))

    @on(RunPairs)
    def _take_pairs(self, message: RunPairs) -> None:
        self.pairs = message.pairs

    @on(RunsListed)
    def _show_runs(self, message: RunsListed) -> None:
        self.summaries = {s.name: s for s in message.summaries}
        ordered = pair_order(message.summaries, self.pairs)
        rows = [(mark + cells[0], *cells[1:]) for s, mark in ordered for cells in [self._marked_row(summary_row(s))]]
        table = self.query_one("#runs", DataTable)
        if rows != self._rows:
            selected = self.selected_name()
            self._rows = rows
            fill_table(table, COLUMNS, rows, [s.name for s, _ in ordered])
            if selected in self.summaries:
                table.move_cursor(row=table.get_row_index(selected))
        self._show_detail()

    @on(DataTable.RowHighlighted)
    def _show_detail(self) -> None:
        detail = self.query_one("#run-detail", Static)
        summary = self.selected()
        if not self.summaries:
            detail.update(self._first_steps())
        elif summary is None:
            detail.update("")
        elif summary.error:
            detail.update(visible(f"{summary.name}: {state_word(summary.state)}: {summary.error}", keep_newlines=True))
        else:
            pair = self.pairs.get(summary.name)
            paired = f" · pair of {pair} (w in the Monitor switches to it)" if pair else ""
            command = f"\ncommand: {summary.command}" if summary.command else ""
            detail.update(visible(f"{summary.path} · {summary.checkpoints} checkpoint(s){paired}{command}",
                                  keep_newlines=True))

    def _marked_row(self, row: tuple[str, ...]) -> tuple[str, ...]:
        """A run's cells with `✓ ` before the name when it is marked for comparing (no colour needed)."""
        return (f"✓ {row[0]}", *row[1:]) if row[0] in self.marked else row

    def action_mark(self) -> None:
        """Mark or unmark the selected run for the compare view (c)."""
        summary = self.selected()
        if summary is None:
            return
        if summary.name in self.marked:
            self.marked.remove(summary.name)
        else:
            self.marked.append(summary.name)
        self._show_runs(RunsListed(list(self.summaries.values())))

    def action_compare(self) -> None:
        """The marked runs (or the selected one with them) overlaid on one chart."""
        names = [name for name in self.marked if name in self.summaries]
        selected = self.selected_name()
        if len(names) < 2 and selected is not None and selected not in names:
            names.append(selected)
        if len(names) < 2:
            self.notify("mark two or more runs with space, then c compares them", severity="warning")
            return
        from tui.screens.compare import CompareScreen

        self.app.push_screen(CompareScreen([source_at(self.summaries[name].path) for name in names]))

    def demo_dataset(self) -> Path:
        """The shipped demo dataset, where `t` trains."""
        return self.app.datasets_root / "demo"

    def _first_steps(self) -> str:
        """What an empty Runs screen says: the demo two keys away, where it can be."""
        demo = self.demo_dataset()
        if (demo / "metadata.csv").is_file():
            return (f"No runs yet in {self.app.runs_root}. Press t, then ctrl+l, to train a short demo on {demo} "
                    "(a checkpoint and its alignment picture every few minutes, even without a GPU); "
                    "n to choose another dataset.")
        return f"No runs yet in {self.app.runs_root}. Press n to start one from a dataset."

    def selected_name(self) -> str | None:
        table = self.query_one("#runs", DataTable)
        if not table.row_count:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:
            return None

    def selected(self) -> RunSummary | None:
        name = self.selected_name()
        return self.summaries.get(name) if name else None

    # --- actions ----------------------------------------------------------------------

    def action_demo(self) -> None:
        """The Parameters form for the demo dataset (from configs/demo.toml): ctrl+l launches it."""
        demo = self.demo_dataset()
        if not (demo / "metadata.csv").is_file():
            self.notify(f"no demo dataset at {demo} (datasets/make_demo.py makes one); n chooses a dataset",
                        severity="error")
            return
        self.app.open_params(dataset=demo)

    def action_new_run(self) -> None:
        self.app.open_datasets()

    @on(DataTable.RowSelected)
    def action_open_run(self) -> None:
        summary = self.selected()
        if summary is not None:
            self.app.open_monitor(source_at(summary.path))

    def action_resume(self) -> None:
        summary = self.selected()
        if summary is None:
            return
        if summary.state in ACTIVE_STATES:
            self.notify(f"{summary.name} is {summary.state}; nothing to resume", severity="warning")
            return
        if not is_voxtop_run(summary.path):
            self.notify(f"{summary.name} was not trained by voxtop: resume it with its own trainer", severity="warning")
            return
        run = RunDir(summary.path)
        checkpoints = run.checkpoints()
        if not checkpoints:
            self.notify(f"{run.name} has no checkpoint to resume from", severity="error")
            return
        from tui.screens.confirm import ConfirmScreen

        question = (f"Resume {run.name} from its newest checkpoint (step {checkpoints[-1].step})?\n"
                    "A trainer starts again from it and keeps training (p: choose another).")
        self.app.push_screen(ConfirmScreen(question), lambda yes: self._resume(run) if yes else None)

    def action_resume_pick(self) -> None:
        summary = self.selected()
        if summary is not None and not is_voxtop_run(summary.path):
            self.notify(f"{summary.name} was not trained by voxtop: resume it with its own trainer", severity="warning")
        elif summary is not None:
            self.app.open_params(resume_run=RunDir(summary.path))

    @work(thread=True, exclusive=True, group="resume", exit_on_error=False, description="resuming the run")
    def _resume(self, run: RunDir) -> None:
        checkpoints = run.checkpoints()
        if not checkpoints:
            self.post_message(ActionFailed(f"{run.name} has no checkpoint to resume from"))
            return
        try:
            self.app.launcher.start(run, checkpoints[-1].path)
        except Exception as exc:  # RunError, OSError: shown, never a traceback
            self.post_message(ActionFailed(f"cannot resume {run.name}: {exc}"))
            return
        self.post_message(RunLaunched(run))

    def action_delete(self) -> None:
        summary = self.selected()
        if summary is None:
            return
        if summary.state in ACTIVE_STATES:
            self.notify(f"{summary.name} is {summary.state}: stop it before deleting", severity="error")
            return
        from tui.screens.confirm import ConfirmScreen

        question = (f"Delete run {summary.name}?\n{summary.checkpoints} checkpoint(s) and all its "
                    "files will be removed. This cannot be undone.")
        self.app.push_screen(ConfirmScreen(question),
                             lambda yes: self._delete(summary.path) if yes else None)

    @work(thread=True, exclusive=True, group="delete", exit_on_error=False, description="deleting the run")
    def _delete(self, path: Path) -> None:
        run = RunDir(path)
        state = run.effective_state()
        if state in ACTIVE_STATES:
            self.post_message(ActionFailed(f"{run.name} is {state}: stop it before deleting"))
            return
        if not is_deletable_run(self.app.runs_root, path):
            self.post_message(ActionFailed(f"refusing to delete {path}: not a run folder directly inside "
                                           f"{self.app.runs_root}"))
            return
        try:
            shutil.rmtree(path)
        except OSError as exc:
            self.post_message(ActionFailed(f"cannot delete {path}: {exc.strerror or exc}"))
            return
        self.post_message(ActionDone(f"deleted {run.name}"))

    @on(ActionDone)
    def _done(self, message: ActionDone) -> None:
        self.notify(message.text)
        self.action_refresh()

    @on(ActionFailed)
    def _failed(self, message: ActionFailed) -> None:
        self.notify(message.text, severity="error", timeout=8)

    @on(RunLaunched)
    def _launched(self, message: RunLaunched) -> None:
        self.app.open_monitor(message.run)
