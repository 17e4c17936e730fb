"""Datasets: a problem a setting fixes opens the form with that setting; one problem per file is grouped."""

from __future__ import annotations

from pathlib import Path

from conftest import make_dataset
from tui.app import create_app
from tui_helpers import FakeLauncher, FakeSampler, sync, form_open, wait_for


def _detail(app) -> str:
    return str(app.screen.query_one("#dataset-detail").render())


@sync
async def test_a_44khz_dataset_opens_the_form_with_resampling_on(tmp_path: Path) -> None:
    root = tmp_path / "datasets"
    lines = [f"clip{i:02d}|Sentence number {i}, said clearly." for i in range(10)]
    make_dataset(root / "studio", lines, wavs={f"clip{i:02d}": {"rate": 44100} for i in range(10)})
    app = create_app(root, tmp_path / "runs", launcher=FakeLauncher(), gpu_sampler=FakeSampler)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "RunsScreen")
        await pilot.press("n")
        await wait_for(pilot, lambda: "INVALID" in _detail(app))
        text = _detail(app)
        assert "INVALID: 10 problem(s)" in text
        assert text.count("sample rate is 44100 Hz") == 2  # the first two, then the rest summed up
        assert "... and 8 more of this kind (wavs/clip02.wav, wavs/clip03.wav, wavs/clip04.wav, ...)" in text
        assert "voxtop can fix this: data.resample = true" in text
        await pilot.press("enter")
        await wait_for(pilot, lambda: form_open(app))
        form = app.screen
        assert form.raw_values()["data.resample"] is True
        await wait_for(pilot, lambda: "steps/epoch" in str(form.query_one("#estimates").render()))
        assert not form.errors and form.config is not None and form.config.data.resample
        assert "data.resample set to true" in str(form.query_one("#estimates").render())
