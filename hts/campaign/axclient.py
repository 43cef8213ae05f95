"""The Ax client of ``llm-bo``: made, saved after every trial and restored on ``--resume`` through
Ax's public ``Client`` API (JSON file round trip), with Ax's logging and warnings kept quiet."""

from __future__ import annotations

import contextlib
import logging
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hts.campaign.knobs import Knob

OBJECTIVE = "score"
"""The name of the trial metric Ax maximises (:func:`hts.campaign.objective.trial_score`)."""

_OPTIMISER_MODULES = r"(ax|botorch|gpytorch|linear_operator)(\.|$)"


def quiet_ax() -> None:
    """Ax gives each of its modules an INFO logger of its own. Keep them to errors unless the run is
    verbose (``hts -v run``): its routine warnings ("only 1 of 2 trials could be generated" while
    Sobol hands over to BoTorch, falling back to Sobol when a model fit fails) are about Ax's own
    bookkeeping, and the trial table records what each trial ran with anyway."""
    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)
    if not verbose and "ax" not in sys.modules:  # importing Ax logs at INFO through its own handlers
        previous = logging.root.manager.disable
        logging.disable(logging.INFO)
        try:
            import ax  # noqa: F401
        finally:
            logging.disable(previous)
    level = logging.DEBUG if verbose else logging.ERROR
    for name in list(logging.root.manager.loggerDict):
        if name == "ax" or name.startswith("ax."):
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def optimiser_warnings() -> Iterator[None]:
    """Around Ax/BoTorch calls: their Python warnings (numerical notes of the GP fit and the acquisition
    optimiser, deprecations inside Ax) are hidden unless the run is verbose."""
    with warnings.catch_warnings():
        if not logging.getLogger().isEnabledFor(logging.DEBUG):
            warnings.filterwarnings("ignore", module=_OPTIMISER_MODULES)
        yield


def new_ax_client(knobs: list[Knob], seed: int, n_init: int, constraints: Sequence[str] = ()) -> Any:
    """An Ax ``Client`` over ``knobs`` (with linear ``constraints`` between them, Ax's string form)
    maximising the trial score (Sobol start, then BoTorch)."""
    quiet_ax()
    from ax import Client, RangeParameterConfig

    client = Client(random_seed=seed)
    client.configure_experiment(
        parameters=[
            RangeParameterConfig(name=k.name, parameter_type=k.kind, bounds=(k.low, k.high))  # type: ignore[arg-type]
            for k in knobs
        ],
        parameter_constraints=list(constraints) or None,
        name="hts-campaign",
    )
    client.configure_optimization(objective=OBJECTIVE)
    # The scout's composition groups do not count towards the Sobol start: they all come from the
    # model's own idea of the targets, and when that idea is off (the mid-gap campaign: asked for
    # 1.0 eV, the adapter answers ~1.46 eV) only quasi-random trials find the region that hits.
    client.configure_generation_strategy(
        method="fast",
        initialization_budget=n_init,
        initialization_random_seed=seed,
        use_existing_trials_for_initialization=False,
    )
    return client


def restore_ax_client(snapshot: str) -> Any:
    """Rebuild the Ax client from a stored snapshot (Ax's public JSON file round trip); trials left
    running are marked abandoned."""
    quiet_ax()
    from ax import Client

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ax.json"
        path.write_text(snapshot)
        client = Client.load_from_json_file(str(path))
    if client.summarize().empty:
        return client
    trials = client.summarize()[["trial_index", "trial_status"]]
    for idx, status in zip(trials["trial_index"], trials["trial_status"], strict=True):
        if status in ("RUNNING", "CANDIDATE", "STAGED"):
            client.mark_trial_abandoned(int(idx))
    return client


def ax_snapshot(client: Any) -> str:
    """The Ax client's state as JSON text (Ax's public JSON file round trip), stored after each trial."""
    with tempfile.TemporaryDirectory() as tmp, optimiser_warnings():
        path = Path(tmp) / "ax.json"
        client.save_to_json_file(str(path))
        return path.read_text()
