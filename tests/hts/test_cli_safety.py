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


def test_status_tables_are_one_line_a_row_at_80_and_200_columns():
    """Motif hashes and candidate hashes whole, no row wrapped: the core gives way (compact, then cut)."""
    import io

    import pandas as pd
    from rich.console import Console

    from hts.cli.campaign import _candidate_rich_table, _motif_rich_table

    cores = ["V_S", "[2 V_S] + [2 V_S] + [V_S + Se_S + W_Mo]", "Se_S + W_Mo + [2 V_S] + [2 V_S] + [2 V_S] + [2 V_Mo]"]
    motifs = pd.DataFrame(
        {
            "motif": [f"{i:016x}" for i in range(3)],
            "core": cores,
            "hits": [38591, 1, 2],
            "best_distance": [0.0, 0.0, 0.1],
            "verdict": ["confirmed", "unverified", "rejected"],
            "confirmed": [1, 0, 0],
            "verified": [1, 0, 1],
        }
    )
    ranked = pd.DataFrame(
        {
            "rank": [1, 2],
            "hash": ["000ddb60ecb5c324", "0030877216a63896"],
            "n_defects": [3, 10],
            "distance": [0.0, 0.25],
            "pred_normalized_homo": [0.021, 0.017],
            "std_normalized_homo": [0.004, 0.005],
            "pred_normalized_lumo": [0.947, 0.95],
            "std_normalized_lumo": [0.004, 0.006],
            "oracle_hit": [True, None],
        }
    )
    for width in (80, 200):
        out = io.StringIO()
        console = Console(file=out, width=width)
        console.print(_motif_rich_table(motifs, 3, console.width))
        console.print(_candidate_rich_table(ranked, ["normalized_homo", "normalized_lumo"]))
        lines = out.getvalue().splitlines()
        assert all(len(line.rstrip()) <= width for line in lines)
        motif_rows = [line for line in lines if line[:16] in set(motifs["motif"])]
        candidate_rows = [line for line in lines if line.split()[1:2] and line.split()[1] in set(ranked["hash"])]
        assert len(motif_rows) == 3 and len(candidate_rows) == 2  # every row on one line, hashes whole
        assert any("HOMO-VBM" in line and "LUMO-VBM" in line for line in lines)
        if width == 200:
            assert all(core in row for core, row in zip(cores, motif_rows, strict=True))
        else:  # compact, and the longest cut with an ellipsis
            assert motif_rows[1].rstrip().endswith("[2V_S]+[2V_S]+[V_S+Se_S+W_Mo]")
            assert motif_rows[2].rstrip().endswith("…") and "Se_S+W_Mo+[2V_S]" in motif_rows[2]
