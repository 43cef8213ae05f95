"""``oracle.refit_surrogate``: refit the campaign's surrogate with the labels its oracle produced.

The refit uses what the surrogate was trained on (its ``meta.dataset``, the same training rows: the
rows it held out for its test figures stay out) plus every candidate the oracle verified with a
converged SCF, with the same featuriser, CatBoost settings and calibration. The new model goes to
``<campaign>/surrogate-refit-<n>/`` (``n`` = verified labels it includes), the store remembers it
(meta ``surrogate_model``), and the loop scores with it from then on, also after ``--resume``.
Predictions already stored are not rewritten: they are what the loop saw. In a campaign the fit runs
in a process of its own (:class:`Refitter`) while the loop and the oracle go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hts.campaign.store import CampaignStore, parse_defects
from hts.defects import ConfigBatch, DefectConfiguration
from hts.errors import ModelError
from hts.hosts import Host
from hts.settings import checkout_root

log = logging.getLogger(__name__)

REFIT_META = "surrogate_model"
GOOD_STATUS = ("converged", "converged_after_retry")


def dataset_path(recorded: str | None, model_dir: Path) -> Path:
    """Where the surrogate's training data is: as recorded, else relative to the checkout or the model."""
    if not recorded or recorded == "None":
        raise ModelError(f"{model_dir} does not record the dataset it was trained on; cannot refit it")
    root = checkout_root()
    candidates = [Path(recorded), *([root / recorded] if root is not None else []), model_dir / recorded]
    for p in candidates:
        if p.exists():
            return p
    raise ModelError(f"the training data of {model_dir} ({recorded}) is not here; cannot refit it")


def oracle_labels(
    store: CampaignStore, host: Host, targets: list[str]
) -> tuple[list[DefectConfiguration], pd.DataFrame]:
    """The converged oracle results of the store as configurations and a label table (``targets``)."""
    oracle = store.oracle_frame()
    if oracle.empty:
        return [], pd.DataFrame(columns=targets)
    defects = store.candidate_defects(oracle["hash"])
    configs, rows = [], []
    for h, status, result in zip(oracle["hash"], oracle["status"], oracle["result"], strict=True):
        if status not in GOOD_STATUS or h not in defects:
            continue
        configs.append(DefectConfiguration.from_mapping(host, parse_defects(defects[h])))
        rows.append({t: result.get(t, np.nan) for t in targets})
    return configs, pd.DataFrame(rows, columns=targets, dtype=float)


@dataclass(frozen=True)
class RefitJob:
    """What a refit needs, read from the store in the campaign's process, so that the fit itself can run
    in another process without touching the store."""

    model_dir: Path
    dest: Path
    host: str
    supercell: tuple[int, ...]
    defects: list[tuple[tuple[int, str], ...]]  # of each verified candidate
    labels: pd.DataFrame  # its oracle labels, one row per entry of ``defects``


def plan_refit(model_dir: Path, store: CampaignStore, host: Host, out_dir: Path) -> RefitJob | None:
    """The refit of ``model_dir`` on the store's oracle labels, or ``None`` when the oracle has added
    nothing since the model in use was fitted."""
    from surrogate.model import read_model_json

    targets = list(read_model_json(model_dir)["targets"])  # the boosters stay on disk: no model in this process
    configs, labels = oracle_labels(store, host, targets)
    if not configs:
        return None
    dest = out_dir / f"surrogate-refit-{len(configs)}"
    if store.get_meta(REFIT_META) == str(dest):  # this set of labels is already in the model in use
        return None
    return RefitJob(Path(model_dir), dest, host.name, tuple(host.supercell), [c.defects for c in configs], labels)


def fit_refit(job: RefitJob, thread_count: int = 1) -> Path:
    """Fit and save the refitted model of ``job`` (see the module docstring); returns its folder. A
    complete model already at ``job.dest`` (a run killed after saving it) is used as it is."""
    from hts.hosts import get_host
    from surrogate.model import SurrogateModel
    from surrogate.training import load_dataset

    if job.dest.is_dir():  # models are saved atomically: a folder under this name is complete
        return job.dest
    host = get_host(job.host, job.supercell)
    model = SurrogateModel.load(job.model_dir)
    ds = load_dataset(dataset_path(model.meta.get("dataset"), job.model_dir), host=host.name)
    held_out = set((model.meta.get("split") or {}).get("test_ids") or [])
    train = [i for i, sid in enumerate(ds.ids) if sid not in held_out]
    verified = [DefectConfiguration.from_mapping(host, d) for d in job.defects]
    table = pd.concat([ds.table[model.targets].iloc[train].reset_index(drop=True), job.labels], ignore_index=True)
    new = SurrogateModel.fit(
        model.featuriser,
        ConfigBatch.from_configs([ds.configs[i] for i in train] + verified),
        table,
        model.targets,
        params=model.params,
        thread_count=thread_count,
        calibrate=bool(model.calibration),
        meta={
            "dataset": model.meta.get("dataset"),
            "split": model.meta.get("split"),
            "refit": {"from": str(job.model_dir), "oracle_labels": len(verified), "dataset_rows": len(train)},
        },
    )
    return new.save(job.dest)  # atomic: a partly written model never appears under this name


def refit_surrogate(
    model_dir: Path, store: CampaignStore, host: Host, out_dir: Path, thread_count: int = 2
) -> Path | None:
    """Refit in this process (see the module docstring) and remember the new model in the store;
    returns its folder, or ``None`` when the oracle has added nothing since the last refit."""
    job = plan_refit(model_dir, store, host, out_dir)
    if job is None:
        return None
    dest = fit_refit(job, thread_count)
    store.set_meta(REFIT_META, str(dest))
    log.info("surrogate refitted with %d oracle labels: %s", len(job.defects), dest)
    return dest


REFIT_EVERY = 8
"""``oracle.refit_surrogate``: a refit starts once this many new oracle results are stored."""

Start = Callable[[RefitJob], Any]
"""``start(job)`` -> a future of :func:`fit_refit` (``done()``, ``result()``, ``cancel()``)."""


class Refitter:
    """Refits the surrogate in the background while the loop and the oracle go on. Called on every pump
    of the verifier with the number of results stored: once :data:`REFIT_EVERY` new results are in and
    no refit is running, it starts one (:func:`start_process`: a process of its own, one thread); once a
    refit is done, the store remembers the new model, ``use_model`` switches the scorer to it and
    ``after`` runs (the verifier re-predicts its pool). A refit that fails is logged and the model in use
    stays. The model is written atomically and remembered only once written, so a kill at any moment
    leaves the previous model in use."""

    def __init__(
        self,
        store: CampaignStore,
        host: Host,
        out_dir: Path,
        model_dir: Path,
        use_model: Callable[[Path], None],
        start: Start | None = None,
    ) -> None:
        self.store, self.host, self.out_dir, self.model = store, host, out_dir, model_dir
        self.use_model = use_model
        self.start = start or start_process
        self.done = 0
        self.running: Any = None
        self.after: Callable[[], Any] | None = None

    @property
    def busy(self) -> bool:
        """Whether a refit is running."""
        return self.running is not None

    def __call__(self, stored: int) -> None:
        self._collect()
        if self.running is None and stored - self.done >= REFIT_EVERY:
            self.done = stored
            job = plan_refit(self.model, self.store, self.host, self.out_dir)
            if job is not None:
                self.running = self.start(job)

    def close(self) -> None:
        """Stop a refit still running (its model is never used)."""
        if self.running is not None:
            self.running.cancel()
            self.running = None

    def _collect(self) -> None:
        if self.running is None or not self.running.done():
            return
        handle, self.running = self.running, None
        try:
            new = Path(handle.result())
        except Exception as exc:  # the campaign goes on with the model in use
            log.error("surrogate refit failed (%s: %s); scoring goes on with %s", type(exc).__name__, exc, self.model)
            return
        self.store.set_meta(REFIT_META, str(new))
        self.use_model(new)
        self.model = new
        log.info("surrogate refitted in the background: %s", new)
        if self.after is not None:
            self.after()


class ProcessRefit:
    """:func:`fit_refit` in a spawned process of its own: the campaign's process keeps its cores and
    its memory, and :meth:`cancel` ends the fit at once."""

    def __init__(self, job: RefitJob) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self._recv, send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_fit_in_child, args=(job, send), name=f"refit-{job.dest.name}", daemon=True)
        self._proc.start()
        send.close()
        self._answer: tuple[str, str] | None = None

    def done(self) -> bool:
        if self._answer is None and (self._recv.poll() or self._proc.exitcode is not None):
            try:
                self._answer = self._recv.recv()
            except EOFError:  # the child ended without answering (killed, out of memory)
                self._answer = ("error", f"the refit process ended with exit code {self._proc.exitcode}")
        return self._answer is not None

    def result(self) -> Path:
        while not self.done():
            self._proc.join(timeout=0.1)
        assert self._answer is not None
        kind, value = self._answer
        self._proc.join(timeout=5)
        if kind == "error":
            raise RuntimeError(value)
        return Path(value)

    def cancel(self) -> None:
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join(timeout=5)


def start_process(job: RefitJob) -> ProcessRefit:
    """The default :data:`Start`: the fit in a process of its own (:class:`ProcessRefit`)."""
    return ProcessRefit(job)


def _fit_in_child(job: RefitJob, send: Any) -> None:
    """The refit process: fits, and sends back ``("ok", folder)`` or ``("error", what went wrong)``."""
    try:
        send.send(("ok", str(fit_refit(job, thread_count=1))))
    except Exception as exc:  # named to the campaign, which goes on with its model
        send.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        send.close()
