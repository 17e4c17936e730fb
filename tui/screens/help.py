"""The key list of every screen (`?`)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP_TEXT = """\
voxtop keys (mouse optional)

Everywhere
  ?          this help            ctrl+q   quit
  escape     back                 tab      next panel / field
  G          GPU view: all GPUs, history charts, processes

Runs (home)
  t          train the demo: the form for datasets/demo, then ctrl+l
  n          new run: pick a dataset, then parameters
  enter, o   open the run's Monitor
  r          resume from the newest checkpoint (asks)
  p          resume, choosing the checkpoint
  d          delete the run (asks; never a running one)
  space      mark / unmark the run for comparing (✓ before its name)
  c          compare the marked runs on one chart
  g          GPU view             f5       refresh now
  q          quit (runs go on)

Datasets
  up/down    pick a dataset: size, or its problems with file:line
  enter      set parameters for it (with the fix, when a setting fixes it)
  f5         scan it again

Parameters
  tab        next field; space toggles [x] on / [ ] off, enter opens a list
  ctrl+l     launch (or resume) and open the Monitor
  ctrl+s     save the config TOML (asks before replacing a file it did not write)
  ctrl+o     the whole command line that does what ctrl+l does
  escape     back (asks first when there are unsaved edits)

Monitor
  [ / ]      less / more smoothing (EMA on the raw points; 0: raw)
  /          choose the focused chart's metrics: any number a record
             holds (loss parts, lr, grad_norm, frames/s, diagonality...);
             type a filter (regex), down, space ticks, enter shows,
             ctrl+d the default; remembered per run (not in the run)
  left/right cursor: each line's raw ~smoothed value at its step and
             the nearest checkpoint, under the charts (c: off/on)
  + / -      zoom in / out around the cursor (mouse wheel: the pointer)
  < / >      pan left / right (also shift+left/right, comma/period)
  home / end start of the run / end, following the newest step
  f          follow latest (on at first; any pan leaves it)
  0          the whole run
  l          log scale y         o  outliers in / out of the y range
  x          x axis: step, relative time, wall time
  m          alignment picture / predicted mel
  z          zoom the focused panel (tab moves between panels)
  s          stop: save a checkpoint and exit (asks)
  k          kill the trainer at once (asks)
  r          resume from the selected checkpoint (recommended if none; asks)
  up/down    in the checkpoints (tab): the picture shows the chosen one
  enter      on a checkpoint: its audio and files; enter plays a clip
             (aplay, paplay or ffplay), e exports, r resumes
  e          export the selected checkpoint (voxtop export; asks)
  g          GPU view with this run's trainer processes marked *
  q          quit voxtop (the run goes on)
  Each terminal column of a chart shows the lowest and highest raw
  point it covers (· under a smoothed line): no spike is hidden.

Compare (space marks runs on Runs, then c)
  /          the metric every run shows (one)
  the chart keys of the Monitor: left/right, + -, < >, home, end,
             f, 0, c, l, o, x, [ ]
  each run has its own marker (•, +, x, *...) and, in the legend,
  its state, overtraining verdict and recommended checkpoint
  escape     back to Runs

Quitting voxtop never stops a run: open it again to keep watching.
"""


class HelpScreen(ModalScreen[None]):
    """Closes on escape, q or ?."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("q", "close", "Close", show=False),
        Binding("question_mark", "close", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(HELP_TEXT, id="help-text", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
