"""Where the project finds files that live outside the Python packages: the embedded default models.

A campaign that says ``default`` for a model uses the folder named by the environment variable
``HTS_MODELS_DIR`` when it is set, else the ``models/`` folder of the repository when the package runs
from a source checkout (editable install or ``PYTHONPATH``). An installed wheel does not carry the
models, so there the variable must be set; :func:`models_dir` says so with a :class:`ModelError`.
Relative model paths inside a campaign file resolve from the campaign file's folder
(:func:`hts.campaign.runner.resolve_model`), not from here.

Surrogates are per host (a model's features are those of one host's defect types, and
:meth:`surrogate.model.SurrogateModel.check_host` refuses any other host), so the default surrogate of a
campaign is the one of its host: ``surrogate-<host>-sparse`` (``surrogate-mos2-sparse``,
``surrogate-bn-sparse``, ...; :func:`default_surrogate_name`). Building a folder of that name makes it
that host's default; :func:`default_surrogate_command` is the command that builds it from the bundled
dataset. Where no host is given (the LLM tools, which are MoS2-only), ``default`` is MoS2's.
"""

from __future__ import annotations

import os
from pathlib import Path

from hts.errors import ModelError

MODELS_DIR_ENV = "HTS_MODELS_DIR"
# The folder above the ``hts`` package: the repository root when running from a checkout.
PACKAGE_PARENT = Path(__file__).resolve().parents[1]
# The default model of each kind, by folder name inside the models folder (the surrogate: MoS2's, for
# commands that name no host; a campaign's is its host's, :func:`default_model`).
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


def default_surrogate_name(host: str) -> str:
    """Folder name of the default surrogate of ``host`` (a name or alias): ``surrogate-<host>-sparse``,
    the host's 2DMD name in lower case (``MoS2`` -> ``surrogate-mos2-sparse``, ``h-BN`` -> ``surrogate-bn-sparse``)."""
    from hts.hosts import canonical_host_name

    return f"surrogate-{canonical_host_name(host).lower()}-sparse"


def default_surrogate_command(host: str) -> str:
    """The command that builds the default surrogate of ``host`` from its bundled dataset
    (``datasets/<host>_<na>x<nb>_xtb``), run from the repository root."""
    from hts.hosts import HOST_SPECS, canonical_host_name

    spec = HOST_SPECS[canonical_host_name(host)]
    na, nb, _ = spec.supercell
    data = f"datasets/{spec.name.lower()}_{na}x{nb}_xtb"
    return (
        f"hts data merge {data} && hts surrogate train --data {data} --features sparse --split random "
        f"--seed 0 --out models/{default_surrogate_name(host)}"
    )


def default_model(kind: str, host: str | None = None) -> Path:
    """The embedded default model of ``kind`` (``surrogate``, ``base_model`` or ``adapter``); for a
    surrogate with ``host`` given, that host's (:func:`default_surrogate_name`)."""
    if kind not in DEFAULT_MODELS:
        raise ModelError(f"no default model of kind {kind!r}; kinds: {', '.join(DEFAULT_MODELS)}")
    if kind == "surrogate" and host is not None:
        return models_dir() / default_surrogate_name(host)
    return models_dir() / DEFAULT_MODELS[kind]
