"""Build a campaign's parts from its configuration and run it: ``hts run`` calls :func:`run_campaign`.

``default`` model paths resolve to the embedded defaults in the models folder of
:func:`hts.settings.models_dir` (``$HTS_MODELS_DIR``, else the checkout's ``models/``; trained by the
documented commands, see README): the campaign host's surrogate ``surrogate-<host>-sparse``
(:func:`hts.settings.default_surrogate_name`), the LLM base ``llm-base`` and its LoRA adapter ``llm-lora``.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hts.campaign.config import Campaign, parse_campaign, read_campaign_text
from hts.campaign.loop import run_loop
from hts.campaign.proposers import LLMProposer, Proposer, RandomProposer
from hts.campaign.safety import (
    ChunkedScorer,
    check_folder,
    check_model_folder,
    check_resources,
    restore_ax_checked,
    resume_command,
)
from hts.campaign.state import RunSummary
from hts.campaign.store import CampaignStore, sqlite_path, sqlite_url
from hts.errors import ConfigError, ModelError
from hts.hosts import Host, get_host
from hts.settings import MODELS_DIR_ENV, default_model, default_surrogate_command

log = logging.getLogger(__name__)

STORE_FILE = "campaign.sqlite"
CAMPAIGN_COPY = "campaign.yaml"


def resolve_model(value: str | None, kind: str, base: Path | None = None, host: str | None = None) -> Path | None:
    """A model folder from the campaign (or a command line): ``default`` -> the embedded default (for a
    surrogate with ``host`` given, that host's); relative -> from ``base``. A path that does not exist,
    or is a file, is a :class:`ModelError`."""
    if value is None or value.lower() in ("none", "null", ""):
        return None
    if value == "default":
        path = default_model(kind, host)
        if not path.exists() and kind == "surrogate" and host is not None:
            raise ModelError(
                f"host {host} has no default surrogate: {path} is not built; build it from the repository root "
                f"with `{default_surrogate_command(host)}`, point {MODELS_DIR_ENV} at a folder that holds "
                f"{path.name}, or give a model path in the campaign (surrogate.model)"
            )
        if not path.exists():
            raise ModelError(
                f"the embedded default {kind} ({path}) is not built yet; build it with the commands in README "
                f"(section 'Embedded default models'), point {MODELS_DIR_ENV} at a folder of built defaults, "
                "or give a path in the campaign"
            )
        return path
    p = Path(value).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    check_model_folder(p, kind)
    return p


def make_proposer(campaign: Campaign, host: Host, base: Path | None = None) -> Proposer:
    """The proposer of the campaign's strategy (the LLM is loaded here, once)."""
    if campaign.strategy == "random":
        return RandomProposer(host, campaign)
    g = campaign.generator
    base_model = resolve_model(g.base_model, "base_model", base)
    adapter = resolve_model(g.adapter, "adapter", base) if g.adapter else None
    generator: Any
    if g.backend == "vllm":
        from llm.vllm_backend import VLLMGenerator

        generator = VLLMGenerator(str(base_model), str(adapter) if adapter else None, encoding=g.encoding, host=host)
    else:
        from llm.generation import TransformersGenerator
        from llm.model import quiet_transformers

        quiet_transformers()
        generator = TransformersGenerator.from_pretrained(
            str(base_model),
            str(adapter) if adapter else None,
            encoding=g.encoding,
            host=host,
            batch_size=g.batch_size,
        )
    return LLMProposer(host, campaign, generator)


@contextmanager
def make_scorer(campaign: Campaign, host: Host, model_dir: Path) -> Iterator[Any]:
    """The surrogate scorer for ``model_dir``: on Dask (LocalCluster or the campaign's scheduler),
    or in-process. Its ``use_model(path)`` switches to another model later (a refit one)."""
    from surrogate.scoring import DaskScorer, forget, load_cached, score_batch

    load_cached(model_dir).check_host(host)
    if not campaign.dask.enabled:

        class _InProcess:
            def __init__(self) -> None:
                self.path, self.model = Path(model_dir), load_cached(model_dir)

            def use_model(self, path: Path) -> None:
                old, self.path, self.model = self.path, Path(path), load_cached(path)
                if old.resolve() != self.path.resolve():
                    forget(old)  # one model in memory at a time through a night of refits

            def score(self, batch: Any) -> Any:
                return score_batch(self.model, batch)

        yield ChunkedScorer(_InProcess())  # a trial's samples featurised a bounded number at a time
        return
    from hts.cluster import dask_client

    d = campaign.dask
    with (
        dask_client(d.scheduler, d.workers, 1, oracle_env(campaign), security=d.security()) as client,
        DaskScorer(model_dir, client=client) as scorer,
    ):
        scorer.warm_up()
        yield scorer


def oracle_env(campaign: Campaign) -> dict[str, str] | None:
    """Environment of LocalCluster workers that also run the oracle: the fast BLAS for xTB."""
    if not campaign.oracle.enabled:
        return None
    from hts.oracle.blas import fast_blas_env

    return fast_blas_env()


def open_existing_store(
    campaign: Campaign, out_dir: Path, resume: bool, campaign_text: str, hint: str
) -> CampaignStore | None:
    """The campaign's store when it exists (``None`` when not), checked (integrity_check, row digests) before
    anything reads or writes it. A store without a finished trial (a start that failed) is the new
    campaign's to take over, whatever campaign file it was started with; one with trials is continued
    only with ``--resume`` and the same campaign (the error says the exact command)."""
    url = campaign.store_url or sqlite_url(out_dir / STORE_FILE)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return None
    store = CampaignStore(url, check=True, create=path is None)
    try:
        stored = store.get_meta("campaign_yaml")
        n_trials = store.n_trials()
        if stored is None or n_trials == 0:
            return store
        if not resume:
            raise ConfigError(
                f"{out_dir} already holds a campaign with {n_trials} finished trials; continue it with `{hint}`, "
                "or choose another output folder (--out)"
            )
        if stored != campaign_text:
            old = parse_campaign(stored, source=f"the campaign stored in {store.where}")
            changed = differing_keys(old.model_dump(), campaign.model_dump())
            if changed:
                raise ConfigError(
                    f"the campaign file differs from the one {out_dir} was started with ({', '.join(changed[:5])}"
                    f"{', ...' if len(changed) > 5 else ''}); resume with the same file (its copy: "
                    f"{out_dir / CAMPAIGN_COPY})"
                )
    except BaseException:
        store.close()
        raise
    return store


def differing_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b), key=str):
            out += differing_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def start_store(campaign: Campaign, out_dir: Path, store: CampaignStore | None, campaign_text: str) -> CampaignStore:
    """The store the run writes: created when new; when it holds no trial yet, (re)started with this
    campaign file (its text, provenance and the copy ``campaign.yaml``)."""
    if store is None:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the output folder {out_dir}: {exc.strerror or exc}") from None
        store = CampaignStore(campaign.store_url or sqlite_url(out_dir / STORE_FILE))
    try:
        if store.n_trials() == 0 and store.get_meta("campaign_yaml") != campaign_text:
            from hts.provenance import provenance

            store.set_meta("campaign_yaml", campaign_text)
            store.set_meta("provenance", provenance({"seed": campaign.seed, "strategy": campaign.strategy}))
        copy = out_dir / CAMPAIGN_COPY
        if store.n_trials() == 0 or not copy.exists():
            out_dir.mkdir(parents=True, exist_ok=True)
            copy.write_text(store.get_meta("campaign_yaml") or campaign_text)
    except BaseException:
        store.close()
        raise
    return store


def finished_summary(campaign: Campaign, store: CampaignStore) -> RunSummary | None:
    """The summary of a campaign whose budget of trials or evaluations is spent (``None`` otherwise),
    from the store alone: a finished campaign answers ``--resume`` at once, without models or Dask."""
    if campaign.strategy == "screen":  # its budget is counted in configurations (hts.campaign.screen)
        return None
    b = campaign.budget
    n_trials = store.n_trials()
    evaluations = store.n_evaluations()
    if n_trials >= b.max_trials:
        stopped = "iterations"
    elif b.max_evaluations is not None and evaluations >= b.max_evaluations:
        stopped = "max_evaluations"
    else:
        return None
    return RunSummary(n_trials, evaluations, store.n_candidates(), store.n_hits(), stopped, 0.0)


def surrogate_folder(campaign: Campaign, host: Host, base: Path, store: CampaignStore | None) -> Path:
    """The surrogate the campaign scores with: the one refitted last in this campaign (its store's meta),
    else ``surrogate.model`` (``default``: the host's embedded one)."""
    from hts.campaign.refit import REFIT_META

    refit = store.get_meta(REFIT_META) if store is not None else None
    if refit:
        model_dir = Path(refit)
        check_model_folder(model_dir, "refitted surrogate")
        return model_dir
    found = resolve_model(campaign.surrogate.model, "surrogate", base, host=host.name)
    if found is None:
        raise ConfigError("surrogate.model is required: a model directory or `default`")
    return found


def prepare_models(campaign: Campaign, host: Host, base: Path, store: CampaignStore | None) -> tuple[Path, Any]:
    """Find and load what the run needs before anything is written: the surrogate (a refitted one on
    ``--resume``), checked against the host; the stored Ax state (llm-bo, ``--resume``); the proposer
    (the LLM is loaded here). Returns the surrogate folder and the proposer (``None`` for ``screen``)."""
    from surrogate.scoring import load_cached

    model_dir = surrogate_folder(campaign, host, base, store)
    load_cached(model_dir).check_host(host)  # cached: the scorer does not load it again
    if store is not None and campaign.strategy == "llm-bo":
        restore_ax_checked(store)  # a snapshot that does not load is an error naming its trial
    proposer = None if campaign.strategy == "screen" else make_proposer(campaign, host, base)
    check_resources(campaign, host)
    return model_dir, proposer


def run_campaign(
    path: str | Path,
    resume: bool = False,
    out: Path | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[RunSummary, Path]:
    """Run the campaign file at ``path`` (or continue it); returns the summary and output directory.

    SIGINT/SIGTERM stop it gracefully after the trial in flight; the store stays consistent.
    """
    path = Path(path)
    text = read_campaign_text(path)
    campaign = parse_campaign(text, source=str(path))
    base = path.resolve().parent
    out_dir = Path(out) if out is not None else campaign.output_dir(Path.cwd())
    check_folder(out_dir, "output folder")
    host = get_host(campaign.host.material, campaign.host.supercell)
    store = open_existing_store(campaign, out_dir, resume, text, resume_command(path, out))
    if store is not None:
        done = finished_summary(campaign, store)
        if done is not None:
            verify = needs_verification(campaign, store)
            model_dir = surrogate_folder(campaign, host, base, store) if verify else None
            store.close()
            log.info("the campaign in %s is finished (%s): nothing left to run", out_dir, done.stopped)
            if model_dir is not None:
                verify_at_the_end(campaign, host, out_dir, model_dir)
            return done, out_dir
    try:
        # Everything the run needs is found before the store is created or restarted, so that a
        # campaign that cannot start leaves nothing in the way of the corrected one.
        model_dir, proposer = prepare_models(campaign, host, base, store)
    except BaseException:
        if store is not None:
            store.close()
        raise
    store = start_store(campaign, out_dir, store, text)
    try:
        with stop_on_signals() as stopping, ExitStack() as stack:
            scorer = stack.enter_context(make_scorer(campaign, host, model_dir))
            verifier = (
                stack.enter_context(make_verifier(campaign, host, out_dir, store, scorer, model_dir))
                if campaign.oracle.enabled
                else None
            )
            hours = campaign.budget.wall_clock_hours
            deadline = time.perf_counter() + hours * 3600 if hours else None
            pump = verifier.pump if verifier is not None and campaign.oracle.share > 0 else None
            summary = run_strategy(campaign, host, store, proposer, scorer, progress, stopping, pump)
            if verifier is not None and summary.stopped != "interrupted":
                verifier.finish(deadline, campaign.oracle.top_k)
    finally:
        store.close()
    return summary, out_dir


@contextmanager
def stop_on_signals() -> Iterator[Callable[[], bool]]:
    """SIGINT and SIGTERM ask the run to stop after the trial in flight (a second one aborts); yields
    the question the loops ask before every trial. The previous handlers are restored on exit."""
    stop = {"flag": False}

    def _stop(signum: int, _frame: Any) -> None:
        if stop["flag"]:
            raise KeyboardInterrupt
        stop["flag"] = True
        log.warning("signal %d: stopping after the trial in flight (again to abort)", signum)

    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: stop["flag"]
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run_strategy(
    campaign: Campaign,
    host: Host,
    store: CampaignStore,
    proposer: Any,
    scorer: Any,
    progress: Callable[[dict[str, Any]], None] | None,
    should_stop: Callable[[], bool],
    pump: Callable[[], Any] | None,
) -> RunSummary:
    """The strategy's loop: ``screen``'s own (:mod:`hts.campaign.screen`), else the campaign loop
    (:mod:`hts.campaign.loop`); ``pump`` (the oracle beside generation) after every chunk or iteration."""
    if campaign.strategy == "screen":
        from hts.campaign.screen import run_screen

        return run_screen(campaign, host, store, scorer, progress, should_stop, pump)
    return run_loop(
        campaign,
        host,
        store,
        proposer,
        scorer,
        progress=progress,
        should_stop=should_stop,
        on_iteration_end=(lambda _iteration: pump()) if pump is not None else None,
    )


@contextmanager
def make_verifier(
    campaign: Campaign, host: Host, out_dir: Path, store: CampaignStore, scorer: Any, model_dir: Path
) -> Iterator[Any]:
    """The oracle beside generation (:mod:`hts.campaign.verifier`) on the scorer's Dask cluster (its
    ``oracle.share`` of the workers), or on a LocalCluster of its own when scoring runs in-process;
    with ``oracle.refit_surrogate`` the surrogate is refitted in the background as labels come in
    (:class:`hts.campaign.refit.Refitter`)."""
    from hts.campaign.motifs import verified_motif
    from hts.campaign.refit import Refitter
    from hts.campaign.verifier import Verifier, dask_submit, oracle_workers
    from hts.cluster import dask_client
    from hts.oracle.blas import fast_blas_env

    d, share = campaign.dask, campaign.oracle.share
    with ExitStack() as stack:
        client = getattr(scorer, "client", None)
        if client is None:
            n = max(1, round(share * d.workers)) if share > 0 else d.workers
            client = stack.enter_context(dask_client(None, n, 1, fast_blas_env()))
            workers = None
        else:
            workers = oracle_workers(client, share if share > 0 else 1.0)
            n = len(workers)
        refit = Refitter(store, host, out_dir, model_dir, scorer.use_model) if campaign.oracle.refit_surrogate else None
        verifier = Verifier(
            campaign,
            host,
            out_dir,
            store,
            dask_submit(client, workers),
            n,
            on_pump=refit,
            motif_of=lambda config, measured: verified_motif(config, measured, scorer, campaign),
        )
        if refit is not None:  # the oracle then chooses by what the refitted model predicts
            refit.after = lambda: verifier.rescore(scorer.score)
        try:
            yield verifier
        finally:
            verifier.cancel()
            if refit is not None:
                refit.close()


def verify_at_the_end(campaign: Campaign, host: Host, out_dir: Path, model_dir: Path) -> None:
    """Verification of a finished campaign resumed: up to ``oracle.top_k`` verified candidates (a near
    miss the oracle confirms gets its motif from the surrogate in ``model_dir``, scored in-process)."""
    from hts.campaign.motifs import verified_motif
    from hts.campaign.verify import verify_top
    from surrogate.scoring import load_cached, score_batch

    scorer = SimpleNamespace(score=lambda batch: score_batch(load_cached(model_dir), batch))
    verify_top(campaign, host, out_dir, motif_of=lambda c, measured: verified_motif(c, measured, scorer, campaign))


def needs_verification(campaign: Campaign, store: CampaignStore) -> bool:
    """Whether a finished campaign still lacks its ``oracle.top_k`` verified candidates (a run stopped
    while the oracle worked), so that ``--resume`` verifies them and otherwise answers at once."""
    if not campaign.oracle.enabled or store.last_trial() is None:
        return False
    return len(store.oracle_frame()) < campaign.oracle.top_k
