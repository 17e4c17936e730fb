"""Does it speak? Read-through health in the Monitor (line, chart, checkpoint table) and `voxtop checkpoints`."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import voxtop
from health_helpers import write_health
from tui.app import create_app
from tui.screens.monitor import MonitorScreen
from tui_helpers import FakeLauncher, FakeRun, FakeSampler, sync, typical_run, wait_for


async def open_monitor(pilot, run) -> MonitorScreen:
    await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "RunsScreen")
    pilot.app.call_later(pilot.app.open_monitor, run)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, MonitorScreen) and pilot.app.screen.view)
    return pilot.app.screen


def health_text(screen: MonitorScreen) -> str:
    return str(screen.query_one("#mon-health").render())


def cells(screen: MonitorScreen, step: int) -> tuple[str, str, str]:
    table = screen.query_one("#checkpoints")
    return tuple(str(table.get_cell(str(step), key)) for key in ("reads", "heard", "tags"))


def speaking_run(runs: Path) -> FakeRun:
    """typical_run's checkpoints 200 (val 0.95) and 400 (val 0.80); 200 reads through, 400 does not."""
    fake = typical_run(runs)
    write_health(fake, 200, 11, 3)
    write_health(fake, 400, 2, 1, items=[
        {"text": "The birch canoe slid on the smooth planks.", "heard": "[red]the bitch[/red] can slid",
         "understood": False, "reached_end": False, "stopped": False, "stop": "limit"},
        {"text": "Glue the sheet to the dark blue background.", "heard": "glue the sheet to the dark blue background",
         "understood": True}])
    return fake


@sync
async def test_monitor_shows_the_newest_health_and_recommends_the_checkpoint_that_speaks(tmp_path: Path) -> None:
    fake = speaking_run(tmp_path)
    launcher = FakeLauncher()
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler, launcher=launcher)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        await wait_for(pilot, lambda: "step 400" in health_text(screen))
        lines = screen.query_one("#mon-health").lines()
        assert lines == ["step 400: reads to the end 2/12 · stops 2/12 · understood 1/12 · WER 0.71",
                         "not understood: heard \u201c[red]the bitch[/red] can slid\u201d for "
                         "\u201cThe birch canoe slid on the smooth planks.\u201d"]  # text from disk, not markup
        rendered = screen.query_one("#mon-health").render()
        assert "[red]" in rendered.plain and not rendered.spans
        assert screen.query_one("#mon-health").size.height == 2  # one heard line at 80x24
        assert cells(screen, 200) == ("11/12", "3/12", "recommended")
        assert cells(screen, 400) == ("2/12", "1/12", "-")  # lower val loss, but it does not speak
        assert screen.query_one("#checkpoints").selected_step() == 200
        chart = screen.query_one("#attention")
        reads = next(line for line in chart.lines if line.label == "reads to the end")
        understood = next(line for line in chart.lines if line.label == "understood")
        assert reads.steps.tolist() == [200.0, 400.0] and reads.values.tolist() == [11 / 12, 2 / 12]
        assert understood.values.tolist() == [3 / 12, 1 / 12] and reads.marker == "▲"
        assert str(chart.border_title).startswith("▲ reads to the end ◆ understood")
        assert chart.y_limits[0] <= 1 / 12 and chart.y_limits[1] >= 11 / 12
        await pilot.press("escape")  # back to Runs: the run is running, so resume is refused; stop it first
        fake.end("stopped", 400, "stopped")
        screen = await open_monitor(pilot, fake.run)
        await wait_for(pilot, lambda: screen.view.state == "stopped")
        await pilot.press("r")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "ConfirmScreen")  # resume asks first
        assert "from step 200 (recommended: reads to the end 11/12, understood 3/12)" in str(
            pilot.app.screen.query_one("#question").render())
        await pilot.press("y")
        await wait_for(pilot, lambda: launcher.started == [(fake.path, fake.run.checkpoint_path(200))])
    fake.release()


@sync
async def test_health_arrives_after_its_checkpoint_and_moves_the_recommendation(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler, refresh_s=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        assert not screen.query_one("#mon-health").display  # no health yet: no line
        assert cells(screen, 400) == ("…", "…", "recommended")  # a live run: not computed yet
        write_health(fake, 200, 12, 9)
        await wait_for(pilot, lambda: cells(screen, 200) == ("12/12", "9/12", "recommended"))
        assert cells(screen, 400) == ("…", "…", "-")
        assert screen.query_one("#mon-health").display and "step 200: reads to the end 12/12" in health_text(screen)
        fake.train(range(410, 501, 10))
        fake.checkpoint(500, val_loss=0.7)
        await wait_for(pilot, lambda: screen.query_one("#checkpoints").row_count == 3)
        assert cells(screen, 500)[:2] == ("…", "…")
        write_health(fake, 500, 12, 11)
        await wait_for(pilot, lambda: cells(screen, 500) == ("12/12", "11/12", "recommended"))
        assert "step 500" in health_text(screen)
    fake.release()


@sync
async def test_bad_health_records_never_crash_and_read_as_not_computed(tmp_path: Path) -> None:
    fake = typical_run(tmp_path)
    fake.end("finished", 400, "finished")
    for bad in ({"sentences": "12"}, {"read_through": None}, {"read_through": 40}, {"understood": [1]},
                {"items": [{"text": "x" * 10_000, "heard": 5}] * 5_000, "read_through": -1}):
        write_health(fake, 400, 3, 1, **bad)
    fake.record("health", 200)  # nothing but kind and step
    with open(fake.run.metrics_path, "a", encoding="utf-8") as handle:
        handle.write('{"kind": "health", "step": 200, "sentences": 12, "read_thr\n')  # cut short
    write_health(fake, 200, 4, None, wer="n/a", length_ratio=None, items=[None, "x", {"text": "\x1b[2J"}])
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        await wait_for(pilot, lambda: "step 200" in health_text(screen))
        assert cells(screen, 400)[:2] == ("-", "-")  # a finished run: never computed
        assert cells(screen, 200) == ("4/12", "-", "recommended")
        assert screen.query_one("#mon-health").lines()[0] == (
            "step 200: reads to the end 4/12 · stops 4/12 · understood -")
        assert "1 malformed" in str(screen.query_one("#events").render())


@sync
async def test_tall_screen_shows_two_heard_sentences(tmp_path: Path) -> None:
    fake = speaking_run(tmp_path)
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        await wait_for(pilot, lambda: screen.query_one("#mon-health").size.height == 3)
        assert screen.query_one("#mon-health").lines()[2].startswith("understood: heard \u201cglue the sheet")
    fake.release()


def test_checkpoints_command_lists_health_and_the_recommendation(tmp_path: Path) -> None:
    fake = speaking_run(tmp_path)
    fake.checkpoint(500, val_loss=0.7)  # not checked yet
    fake.end("stopped", 500, "stopped")
    listing = json.loads(voxtop("checkpoints", fake.run.name, "--json", runs=tmp_path).stdout)
    assert [row["step"] for row in listing] == [500, 400, 200]
    assert listing[0]["health"] is None and listing[0]["tags"] == []
    assert listing[1]["health"]["read_through"] == 2 and listing[1]["health"]["sentences"] == 12
    assert listing[2]["health"]["understood"] == 3 and listing[2]["tags"] == ["recommended"]
    assert listing[2]["health"]["items"][0]["text"] == "The birch canoe slid on the smooth planks."
    text = voxtop("checkpoints", fake.run.name, runs=tmp_path)
    assert text.returncode == 0, text.stderr
    rows = {line.split()[0]: line for line in text.stdout.splitlines()}
    assert rows["200"].split()[4:6] == ["11/12", "3/12"] and rows["200"].endswith("recommended")
    assert rows["500"].split()[4:6] == ["-", "-"]
    assert "recommended: step 200 (reads to the end 11/12, understood 3/12)" in text.stdout
