"""Charts label the step axis with whole steps at a round spacing."""

from __future__ import annotations

import re

import numpy as np
from textual.app import App, ComposeResult

from tui.widgets.line_chart import ChartLine, LineChart, step_label, step_ticks
from tui_helpers import sync


def test_ticks_are_whole_round_steps() -> None:
    assert step_ticks(1, 4) == [1, 2, 3, 4]
    assert step_ticks(4, 5) == [4, 5]
    assert step_ticks(0, 1000) == [0, 250, 500, 750, 1000]
    assert step_ticks(10, 390) == [100, 200, 300]
    assert step_label(12_000) == "12k" and step_label(1_500_000) == "1.5M" and step_label(950) == "950"


class ChartApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LineChart("loss", id="chart")


@sync
async def test_a_chart_of_a_few_steps_has_no_fractional_step_labels() -> None:
    app = ChartApp()
    async with app.run_test(size=(60, 14)) as pilot:
        chart = app.query_one(LineChart)
        chart.show([ChartLine("train", np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 1.5, 1.2, 1.1])),
                    ChartLine("val", np.array([2.0, 4.0]), np.array([1.8, 1.4]))], None, "loss")
        await pilot.pause(0.1)
        axis = str(chart.render()).splitlines()[-1]
        labels = re.findall(r"-?\d+(?:\.\d+)?", axis)
        assert labels and all("." not in label for label in labels), axis
        assert labels == ["1", "2", "3", "4"], axis
