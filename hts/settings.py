"""Where the project finds files that live outside the Python packages: the embedded default models.

A campaign that says ``default`` for a model uses the folder named by the environment variable
``HTS_MODELS_DIR`` when it is set, else the ``models/`` folder of the repository when the package runs
from a source checkout (editable install or ``PYTHONPATH``). An installed wheel does not carry the
models, so there the variable must be set; :func:`models_dir` says so with a :class:`ModelError`.
Relative model paths inside a campaign file resolve from the campaign file's folder
(:func:`hts.campaign.runner.resolve_model`), not from here.
"""

from __future__ import annotations

import os
from pathlib import Path

from hts.errors import ModelError

MODELS_DIR_ENV = "HTS_MODELS_DIR"
# The folder above the ``hts`` package: the repository root when running from a checkout.
PACKAGE_PARENT = Path(__file__).resolve().parents[1]
# The default model of each kind, by folder name inside the models folder.
DEFAULT_MODELS = {
    "surrogate": "surrogate-mos2-sparse",
    "base_model": "llm-base",
    "adapter": "llm-lora",
}


def checkout_root() -> Path | None:
    """The repository root when the package runs from a source checkout, else ``None``."""
    root = PACKAGE_PARENT
    if (root / "pyproject.toml").is_file() and (root / "hts" / "__init__.py").is_file():
        return root
    return None


def models_dir() -> Path:
    """The folder of the embedded default models: ``$HTS_MODELS_DIR``, else the checkout's ``models/``."""
    env = os.environ.get(MODELS_DIR_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    root = checkout_root()
    if root is not None:
        return root / "models"
    raise ModelError(
        f"no folder of default models: the package is not running from a source checkout; set {MODELS_DIR_ENV} "
        f"to the folder holding {', '.join(DEFAULT_MODELS.values())} (the repository's models/), "
        "or give model paths in the campaign instead of 'default'"
    )


def default_model(kind: str) -> Path:
    """The embedded default model of ``kind`` (``surrogate``, ``base_model`` or ``adapter``)."""
    if kind not in DEFAULT_MODELS:
        raise ModelError(f"no default model of kind {kind!r}; kinds: {', '.join(DEFAULT_MODELS)}")
    return models_dir() / DEFAULT_MODELS[kind]
