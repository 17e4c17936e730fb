"""Config schema, TOML round trip, overrides and the errors a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer import config as cfg


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    return path


def messages(exc: pytest.ExceptionInfo[cfg.ConfigError]) -> str:
    return str(exc.value)


def test_defaults_round_trip(tmp_path: Path) -> None:
    config = cfg.Config()
    path = tmp_path / "c.toml"
    cfg.save(config, path)
    assert cfg.load(path) == config
    text = path.read_text()
    for section in ("[data]", "[model]", "[train]", "[checkpoint]", "[schedule]", "[device]"):
        assert section in text
    assert "batch_size = 32" in text and "learning_rate = 0.001" in text


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    path = write(tmp_path, '[data]\ndataset = "voices/mine"\n[train]\npretrained = "models/nv.pt"\n')
    config = cfg.load(path)
    assert config.data.dataset == str(tmp_path / "voices" / "mine")
    assert config.train.pretrained == str(tmp_path / "models" / "nv.pt")


def test_unknown_key_names_key_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[train]\nepochs = 10\nbatchsize = 8\n")
    with pytest.raises(cfg.ConfigError) as exc:
        cfg.load(path)
    assert f"{path}:3: train.batchsize: unknown key" in messages(exc)
    assert "batch_size" in messages(exc)  # the list of known keys helps spot the typo


def test_unknown_section(tmp_path: Path) -> None:
    with pytest.raises(cfg.ConfigError, match=r"run.toml:1: trian: unknown section \[trian\]"):
        cfg.load(write(tmp_path, "[trian]\nepochs = 1\n"))


@pytest.mark.parametrize("line, expected", [
    ("batch_size = 0", "train.batch_size: 0 is out of range: allowed 1 to 4096"),
    ("epochs = 2.5", "train.epochs: 2.5 is not a whole number"),
    ("epochs = \"ten\"", "train.epochs: 'ten' is not a whole number"),
    ("learning_rate = nan", "train.learning_rate: nan is not a finite number"),
    ("learning_rate = inf", "train.learning_rate: inf is not a finite number"),
    ("precision = \"fp8\"", "train.precision: 'fp8' is not one of 'auto', 'fp32', 'bf16', 'fp16'"),
    ("max_steps = 99999999999999999", "train.max_steps: 99999999999999999 is out of range"),
    ("pretrained = 3", "train.pretrained: 3 is not text"),
])
def test_bad_values_say_what_is_allowed(tmp_path: Path, line: str, expected: str) -> None:
    path = write(tmp_path, f"[train]\n{line}\n")
    with pytest.raises(cfg.ConfigError) as exc:
        cfg.load(path)
    assert f"{path}:2: {expected}" in messages(exc)


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "[train]\nepochs = 0\nbatch_size = -1\n[device]\ngpus = [\"a\"]\n")
    with pytest.raises(cfg.ConfigError) as exc:
        cfg.load(path)
    assert len(exc.value.problems) == 3


def test_cross_field_checks(tmp_path: Path) -> None:
    with pytest.raises(cfg.ConfigError, match="data.fmax: 12000 Hz is above half the sample rate"):
        cfg.load(write(tmp_path, "[data]\nfmax = 12000.0\n"))
    with pytest.raises(cfg.ConfigError, match="data.win: 2048 is larger than data.n_fft"):
        cfg.load(write(tmp_path, "[data]\nwin = 2048\n"))


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[train]\nepochs = = 3\n")
    with pytest.raises(cfg.ConfigError) as exc:
        cfg.load(path)
    assert exc.value.problems[0].line == 2 and "not valid TOML" in messages(exc)


def test_missing_file() -> None:
    with pytest.raises(cfg.ConfigError, match="does not exist"):
        cfg.load("/nonexistent/voxtop.toml")


def test_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "[train]\nepochs = 10\n")
    config = cfg.load(path, ["train.epochs=3", "model.preset=tiny", "train.learning_rate=5e-4",
                             "schedule.early_stop=true", "device.gpus=[0, 1]"])
    assert config.train.epochs == 3 and config.model.preset == "tiny"
    assert config.train.learning_rate == 5e-4 and config.schedule.early_stop is True
    assert config.device.gpus == [0, 1]
    with pytest.raises(cfg.ConfigError, match="train.epochs: 'lots' is not a whole number"):
        cfg.load(path, ["train.epochs=lots"])
    with pytest.raises(cfg.ConfigError, match="section.key=value"):
        cfg.load(path, ["epochs=3"])


def test_override_paths_resolve_against_the_working_folder(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "run.toml"
    path.write_text("")
    monkeypatch.chdir(tmp_path)
    config = cfg.load(path, ["data.dataset=datasets/demo"])
    assert config.data.dataset == str(tmp_path / "datasets" / "demo")


def test_schema_has_form_metadata() -> None:
    infos = cfg.schema()
    keys = [i.key for i in infos]
    assert len(keys) == len(set(keys))
    required = {i.key for i in infos if i.required}
    assert required == {"data.dataset", "data.language", "train.epochs", "train.batch_size",
                        "train.pretrained"}
    for info in infos:
        assert info.label and info.help, info.key
        if info.type in (int, float):
            assert info.min is not None and info.max is not None, info.key
    assert cfg.field_info("checkpoint.every_minutes").unit == "min"
