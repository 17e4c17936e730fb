"""One ETA: the Monitor's header and train.log give the same figure, from the first steps on."""

from __future__ import annotations

import re
from pathlib import Path

from tui.app import create_app
from tui_helpers import FakeRun, FakeSampler, sync, wait_for
from test_tui_monitor import open_monitor, text


def log_eta(seconds: float) -> str:
    """train.log's ETA as trainer/loop.py writes it: whole seconds, h:mm:ss."""
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def train_interval(fake: FakeRun, first: int, last: int, seconds: float) -> str:
    """Train records up to `last` over `seconds`, and the progress line the trainer logs for them."""
    fake.t += seconds
    fake.record("train", last, epoch=1, loss=1.0, loss_mel=0.8, loss_gate=0.05, loss_guided=0.01,
                attention_score=0.3, grad_norm=1.0, lr=1e-3, batch_size=8, frames_per_s=100.0)
    fake.status(step=last, epoch=1)
    s_per_it = seconds / (last - first)
    eta = log_eta(s_per_it * (fake.total_steps - last))
    fake.log(f"epoch 1/10 step {last}/{fake.total_steps} loss 1.0000 {s_per_it:.2f} s/it ETA {eta}")
    return eta


@sync
async def test_the_header_eta_is_train_logs_and_shows_before_the_first_log_line(tmp_path: Path) -> None:
    fake = FakeRun(tmp_path, total_steps=1000)
    fake.start()
    fake.t += 12.0
    fake.status(step=4, epoch=1)  # a heartbeat before the first log line (every 10 steps)
    app = create_app(tmp_path, tmp_path, gpu_sampler=FakeSampler, refresh_s=0.1)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_monitor(pilot, fake.run)
        # 4 steps in 12 s since the start record: 3 s/step for the 996 left
        assert "ETA 0:49:48 · 0.33 steps/s" in text(screen, "#mon-progress")

        train_interval(fake, 0, 10, 25.0)  # the first interval: measured from the start record
        eta = train_interval(fake, 10, 20, 9.0)  # then the newest interval alone: 0.9 s/it
        assert eta == "0:14:42"
        await wait_for(pilot, lambda: "step 20/1000" in text(screen, "#mon-progress"))
        header = re.search(r"ETA (\S+)", text(screen, "#mon-progress")).group(1)
        logged = re.search(r"ETA (\S+)", screen.query_one("#log").lines[-1]).group(1)
        assert header == logged == eta

        eta = train_interval(fake, 20, 30, 70.0)  # a checkpoint made this interval slow: both say so
        await wait_for(pilot, lambda: f"ETA {eta}" in text(screen, "#mon-progress"))
        assert f"ETA {eta}" in screen.query_one("#log").lines[-1]
    fake.release()
