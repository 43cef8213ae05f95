"""The command line: --version, help on every option, no value type shown on flags, `default` wherever
a model folder is asked for, and model paths of the wrong kind named as such."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from hts import __version__, settings
from hts.cli import app
from hts.errors import ModelError

runner = CliRunner()


def _commands() -> list[tuple[list[str], Any]]:
    """Every command of ``hts`` as (argv prefix, click command), groups included."""
    out: list[tuple[list[str], Any]] = []

    def walk(cmd: Any, path: list[str]) -> None:
        out.append((path, cmd))
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return out


def test_version():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"hts {__version__}"


def test_every_option_and_argument_is_described():
    missing = [
        f"hts {' '.join(path)} {p.opts[0] if p.opts else p.name}"
        for path, cmd in _commands()
        for p in cmd.params
        if not (getattr(p, "help", None) or "").strip()
    ]
    assert not missing, missing
    assert len(_commands()) > 20


def test_no_value_type_is_shown_on_flags():
    for path, _ in _commands():
        res = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
        assert res.exit_code == 0, (path, res.output)
        assert "<bool>" not in res.output, (path, res.output)
    res = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert "<path>" in res.output  # options that take a value still show its type


@pytest.fixture
def fake_defaults(tmp_path, monkeypatch) -> Path:
    models = tmp_path / "models"
    for name in settings.DEFAULT_MODELS.values():
        (models / name).mkdir(parents=True)
    monkeypatch.setenv(settings.MODELS_DIR_ENV, str(models))
    return models


def _fake_generator(monkeypatch) -> dict[str, Any]:
    import hts.cli.llm as llm_cli

    seen: dict[str, Any] = {}

    class Generator:
        def generate(self, requests):
            return []

    def make(backend, model, adapter, encoding, host, device, batch_size):
        seen.update(model=model, adapter=adapter)
        return Generator()

    monkeypatch.setattr(llm_cli, "_make_generator", make)
    return seen


def test_llm_generate_accepts_default_models(fake_defaults, monkeypatch):
    seen = _fake_generator(monkeypatch)
    res = runner.invoke(app, ["llm", "generate", "--model", "default", "--adapter", "default", "--encoding", "sparse"])
    assert res.exit_code == 0, res.output
    assert seen == {"model": str(fake_defaults / "llm-base"), "adapter": str(fake_defaults / "llm-lora")}


def test_a_default_not_built_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.MODELS_DIR_ENV, str(tmp_path / "empty"))
    _fake_generator(monkeypatch)
    res = runner.invoke(app, ["llm", "generate", "--model", "default", "--encoding", "sparse"])
    assert isinstance(res.exception, ModelError)
    assert "the embedded default base_model" in str(res.exception) and str(tmp_path / "empty") in str(res.exception)


def test_model_paths_that_are_files_are_named_as_such(tmp_path, monkeypatch):
    _fake_generator(monkeypatch)
    a_file = tmp_path / "adapter.bin"
    a_file.write_bytes(b"\0")
    res = runner.invoke(app, ["llm", "generate", "--model", str(tmp_path), "--adapter", str(a_file)])
    assert isinstance(res.exception, ModelError)
    assert f"adapter path {a_file} is a file, expected a folder" in str(res.exception)
    res = runner.invoke(app, ["surrogate", "eval", str(a_file), "--data", str(tmp_path)])
    assert isinstance(res.exception, ModelError)
    assert f"surrogate path {a_file} is a file, expected a folder" in str(res.exception)


def test_surrogate_eval_accepts_default(fake_defaults, monkeypatch):
    import surrogate.model

    loaded: list[str] = []

    def load(path):
        loaded.append(str(path))
        raise ModelError("stop here")

    monkeypatch.setattr(surrogate.model.SurrogateModel, "load", staticmethod(load))
    res = runner.invoke(app, ["surrogate", "eval", "default", "--data", "nowhere"])
    assert isinstance(res.exception, ModelError) and loaded == [str(fake_defaults / "surrogate-mos2-sparse")]


def test_errors_of_the_project_are_one_line_with_status_2(tmp_path):
    import subprocess
    import sys

    missing = tmp_path / "missing.yaml"
    res = subprocess.run([sys.executable, "-m", "hts.cli", "run", str(missing)], capture_output=True, text=True)
    assert res.returncode == 2
    assert "error:" in res.stderr and "missing.yaml" in res.stderr and "Traceback" not in res.stderr
