"""Where ``default`` models are found: HTS_MODELS_DIR, else the checkout's models/, else a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from hts import settings
from hts.campaign.runner import resolve_model
from hts.errors import ModelError

REPO = Path(__file__).resolve().parents[2]


def test_env_var_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(settings.MODELS_DIR_ENV, str(tmp_path))
    assert settings.models_dir() == tmp_path
    (tmp_path / "surrogate-mos2-sparse").mkdir()
    assert resolve_model("default", "surrogate") == tmp_path / "surrogate-mos2-sparse"
    # a default that is not in the folder named by the variable is an error naming the variable
    with pytest.raises(ModelError, match=settings.MODELS_DIR_ENV):
        resolve_model("default", "adapter")


def test_checkout_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.MODELS_DIR_ENV, raising=False)
    assert settings.checkout_root() == REPO
    assert settings.models_dir() == REPO / "models"
    assert settings.default_model("base_model") == REPO / "models" / "llm-base"


def test_not_a_checkout_without_env_var_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(settings.MODELS_DIR_ENV, raising=False)
    monkeypatch.setattr(settings, "PACKAGE_PARENT", tmp_path / "site-packages")  # as in an installed wheel
    assert settings.checkout_root() is None
    with pytest.raises(ModelError, match=f"set {settings.MODELS_DIR_ENV}"):
        settings.models_dir()
    with pytest.raises(ModelError, match=settings.MODELS_DIR_ENV):
        resolve_model("default", "surrogate")


def test_relative_paths_resolve_from_the_campaign_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(settings.MODELS_DIR_ENV, str(tmp_path / "elsewhere"))
    (tmp_path / "my-model").mkdir()
    assert resolve_model("my-model", "surrogate", tmp_path) == tmp_path / "my-model"
