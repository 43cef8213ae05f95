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


def test_default_surrogate_is_the_campaign_hosts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(settings.MODELS_DIR_ENV, str(tmp_path))
    for name in ("surrogate-mos2-sparse", "surrogate-bn-sparse"):
        (tmp_path / name).mkdir()
    assert resolve_model("default", "surrogate", host="BN") == tmp_path / "surrogate-bn-sparse"
    assert resolve_model("default", "surrogate", host="h-BN") == tmp_path / "surrogate-bn-sparse"  # an alias
    assert resolve_model("default", "surrogate", host="MoS2") == tmp_path / "surrogate-mos2-sparse"
    assert resolve_model("default", "surrogate") == tmp_path / "surrogate-mos2-sparse"  # no host: MoS2's
    # the host picks only the surrogate; the LLM defaults are one per project
    (tmp_path / "llm-base").mkdir()
    assert resolve_model("default", "base_model", host="BN") == tmp_path / "llm-base"


def test_a_host_without_a_default_surrogate_is_named_with_the_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(settings.MODELS_DIR_ENV, str(tmp_path))
    with pytest.raises(ModelError) as err:
        resolve_model("default", "surrogate", host="WSe2")
    msg = str(err.value)
    assert "host WSe2 has no default surrogate" in msg
    assert str(tmp_path / "surrogate-wse2-sparse") in msg
    assert "hts surrogate train --data datasets/wse2_8x8_xtb --features sparse" in msg
    assert "--out models/surrogate-wse2-sparse" in msg and settings.MODELS_DIR_ENV in msg


@pytest.mark.parametrize("path", sorted((REPO / "campaigns").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_campaigns_find_a_surrogate_of_their_host(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """What `hts run` checks before it starts: the campaign's surrogate resolves, was trained on the
    campaign's host and cell, and predicts every target."""
    from hts.campaign.config import load_campaign
    from hts.hosts import get_host
    from surrogate.model import SurrogateModel

    monkeypatch.delenv(settings.MODELS_DIR_ENV, raising=False)
    campaign = load_campaign(path)
    found = resolve_model(campaign.surrogate.model, "surrogate", path.parent, host=campaign.host.material)
    assert found is not None
    model = SurrogateModel.load(found)
    model.check_host(get_host(campaign.host.material, campaign.host.supercell))
    assert set(campaign.targets) <= set(model.targets)
