"""`voxtop metrics RUN`: every logged series, as CSV or JSON, under the resume rule."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tui.cli import main
from tui_helpers import FakeRun, typical_run


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([*args])
    out, err = capsys.readouterr()
    return code, out, err


def test_csv_has_a_row_per_point_of_every_series(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    typical_run(tmp_path).release()
    code, out, _ = run_cli(capsys, "--runs", str(tmp_path), "metrics", "demo_20231114_221320", "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    names = {row["metric"] for row in rows}
    assert {"train/loss", "train/loss_mel", "train/loss_gate", "train/loss_guided", "train/lr", "train/grad_norm",
            "train/frames_per_s", "train/attention_score", "val/loss", "val/attention_score"} <= names
    assert "train/t" not in names and "train/step" not in names
    val = [row for row in rows if row["metric"] == "val/loss"]
    assert [int(row["step"]) for row in val] == [100, 200, 300, 400]
    assert float(val[-1]["value"]) == pytest.approx(2.0 / (1 + 400 / 60) + 0.3)
    assert float(val[0]["wall_time"]) > 1_700_000_000


def test_json_of_chosen_fields_follows_the_resume_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeRun(tmp_path, state="finished", hold_lock=False)
    fake.start()
    fake.train(range(10, 101, 10))
    fake.record("train", 110, loss=9.0, attention_diagonality=0.4)  # logged, then superseded by the resume
    fake.record("start", 100, epoch=0, resumed_from=100)
    fake.train(range(110, 131, 10), loss=lambda s: 0.25)
    code, out, _ = run_cli(capsys, "--runs", str(tmp_path), "metrics", fake.path.name, "--json",
                           "--fields", "train/loss", "attention_diagonality")
    assert code == 0
    data = json.loads(out)
    loss = data["series"]["train/loss"]
    assert loss["step"] == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130]
    assert loss["value"][-3:] == [0.25, 0.25, 0.25] and 9.0 not in loss["value"]
    assert data["series"]["train/attention_diagonality"]["step"] == []  # its only record was superseded
    assert set(data["series"]) == {"train/loss", "train/attention_diagonality"}


def test_listing_and_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    typical_run(tmp_path).release()
    code, out, _ = run_cli(capsys, "--runs", str(tmp_path), "metrics", "demo_20231114_221320", "--fields", "loss")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["METRIC", "POINTS"] and len(lines) == 3
    assert lines[2].split()[:3] == ["val/loss", "4", "100-400"]
    code, _, err = run_cli(capsys, "--runs", str(tmp_path), "metrics", "demo_20231114_221320", "--fields", "nope")
    assert code == 1 and "logs no nope" in err
    code, _, err = run_cli(capsys, "--runs", str(tmp_path), "metrics", "missing_run")
    assert code == 1 and err.startswith("error:")
    with pytest.raises(SystemExit) as usage:
        main(["--runs", str(tmp_path), "metrics", "demo_20231114_221320", "--csv", "--json"])
    assert usage.value.code == 2
