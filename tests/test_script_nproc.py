"""`voxtop script` follows the config's `[device] nproc` unless --gpus-per-node says otherwise."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import tiny_config, voxtop
from test_headless import sbatch_options


def test_slurm_script_of_a_two_process_config_asks_for_two_gpus_and_runs_two(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, device={"nproc": 2})
    result = voxtop("script", str(config), "--format", "slurm", runs=tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    options = sbatch_options(result.stdout)
    assert options["gpus-per-node"] == "2" and options["cpus-per-task"] == "8"
    assert "torchrun --standalone with 2 processes" in result.stdout
    assert "--set device.nproc" not in result.stdout  # the config's own count: nothing to override
    assert subprocess.run(["bash", "-n"], input=result.stdout, text=True).returncode == 0

    several = voxtop("script", str(config), "--format", "slurm", "--nodes", "2", runs=tmp_path / "runs")
    assert several.returncode == 0, several.stderr
    assert "--nproc-per-node 2" in " ".join(several.stdout.split())

    told = voxtop("script", str(config), "--format", "slurm", "--gpus-per-node", "1", runs=tmp_path / "runs")
    assert told.returncode == 0, told.stderr
    assert sbatch_options(told.stdout)["gpus-per-node"] == "1"
    assert "--set device.nproc=1)" in told.stdout and "torchrun" not in told.stdout


def test_a_cpu_config_with_two_processes_gets_no_gpu_line_and_two_processes(tmp_path: Path) -> None:
    config = tiny_config(tmp_path, device={"nproc": 2, "accelerator": "cpu"})
    result = voxtop("script", str(config), "--format", "slurm", runs=tmp_path / "runs")
    assert result.returncode == 0, result.stderr
    options = sbatch_options(result.stdout)
    assert "gpus-per-node" not in options and options["cpus-per-task"] == "8"
    assert "with 2 processes" in result.stdout
    bash = voxtop("script", str(config), "--format", "bash", runs=tmp_path / "runs")
    assert bash.returncode == 0 and "--set device.nproc" not in bash.stdout
