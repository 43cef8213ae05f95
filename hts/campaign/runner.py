"""Build a campaign's parts from its configuration and run it: ``hts run`` calls :func:`run_campaign`.

``default`` model paths resolve to the embedded defaults in the models folder of
:func:`hts.settings.models_dir` (``$HTS_MODELS_DIR``, else the checkout's ``models/``; trained by the
documented commands, see README): the surrogate ``surrogate-mos2-sparse``, the LLM base ``llm-base``
and its LoRA adapter ``llm-lora``.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from hts.campaign.config import Campaign, load_campaign
from hts.campaign.loop import RunSummary, run_loop
from hts.campaign.proposers import LLMProposer, Proposer, RandomProposer
from hts.campaign.store import CampaignStore, sqlite_url
from hts.errors import ConfigError, ModelError
from hts.hosts import Host, get_host
from hts.settings import MODELS_DIR_ENV, default_model

log = logging.getLogger(__name__)

STORE_FILE = "campaign.sqlite"
CAMPAIGN_COPY = "campaign.yaml"
VERIFIED_THROUGH = "oracle_verified_through_trial"  # store meta: the last trial a verification had seen


def resolve_model(value: str | None, kind: str, base: Path | None = None) -> Path | None:
    """A model path from the campaign: ``default`` -> the embedded default; relative -> from ``base``."""
    if value is None or value.lower() in ("none", "null", ""):
        return None
    if value == "default":
        path = default_model(kind)
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
    if not p.exists():
        raise ModelError(f"{kind} path {p} does not exist")
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
    from surrogate.scoring import DaskScorer, load_cached, score_batch

    model = load_cached(model_dir)
    model.check_host(host)
    if not campaign.dask.enabled:

        class _InProcess:
            def __init__(self) -> None:
                self.model = model

            def use_model(self, path: Path) -> None:
                self.model = load_cached(path)

            def score(self, batch: Any) -> Any:
                return score_batch(self.model, batch)

        yield _InProcess()
        return
    from hts.cluster import dask_client

    d = campaign.dask
    with (
        dask_client(d.scheduler, d.workers, 1, security=d.security()) as client,
        DaskScorer(model_dir, client=client) as scorer,
    ):
        scorer.warm_up()
        yield scorer


def open_store(campaign: Campaign, out_dir: Path, resume: bool, campaign_text: str) -> CampaignStore:
    """Open (or create) the campaign's store; refuse to mix a new run into an old one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    url = campaign.store_url or sqlite_url(out_dir / STORE_FILE)
    store = CampaignStore(url)
    stored = store.get_meta("campaign_yaml")
    if stored is not None and not resume:
        raise ConfigError(
            f"{out_dir} already holds a campaign; continue it with `hts run {campaign.name} --resume` "
            "or choose another output directory"
        )
    if stored is not None and resume and stored != campaign_text:
        from hts.campaign.config import parse_campaign

        if parse_campaign(stored).model_dump() != campaign.model_dump():
            raise ConfigError(
                f"the campaign file differs from the one {out_dir} was started with; resume with the same file"
            )
    if stored is None:
        from hts.provenance import provenance

        store.set_meta("campaign_yaml", campaign_text)
        store.set_meta("provenance", provenance({"seed": campaign.seed, "strategy": campaign.strategy}))
        (out_dir / CAMPAIGN_COPY).write_text(campaign_text)
    return store


def periodic_verification(
    campaign: Campaign, host: Host, out_dir: Path, store: CampaignStore, scorer: Any, model_dir: Path
) -> Callable[[int], None] | None:
    """``oracle.every: N``: verify ``top_k`` candidates after every N-th iteration (and once more at
    the end of the run when trials came after the last of these, :func:`needs_final_verification`), and with
    ``oracle.refit_surrogate`` refit the surrogate on the new labels and score with it from then on
    (:mod:`hts.campaign.refit`). ``None`` when there is nothing to do during the run."""
    every = campaign.oracle.every
    if not campaign.oracle.enabled or every <= 0:
        return None
    current = {"model": model_dir}

    def after(iteration: int) -> None:
        if (iteration + 1) % every:
            return
        from hts.campaign.verify import verify_top

        n = verify_top(campaign, host, out_dir)
        log.info("iteration %d: %d candidates verified by the oracle", iteration, n)
        last = store.last_trial()
        if last is not None:
            store.set_meta(VERIFIED_THROUGH, last[0])
        if n and campaign.oracle.refit_surrogate:
            from hts.campaign.refit import refit_surrogate

            new = refit_surrogate(current["model"], store, host, out_dir)
            if new is not None:
                scorer.use_model(new)
                current["model"] = new

    return after


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
    campaign = load_campaign(path)
    text = path.read_text()
    base = path.resolve().parent
    out_dir = out or campaign.output_dir(Path.cwd())
    host = get_host(campaign.host.material, campaign.host.supercell)
    store = open_store(campaign, out_dir, resume, text)
    stop = {"flag": False}

    def _stop(signum: int, _frame: Any) -> None:
        if stop["flag"]:
            raise KeyboardInterrupt
        stop["flag"] = True
        log.warning("signal %d: stopping after the trial in flight (again to abort)", signum)

    old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
    verify_at_end = False
    try:
        with ExitStack() as stack:
            from hts.campaign.refit import REFIT_META

            refit = store.get_meta(REFIT_META)  # a model refitted earlier in this campaign (--resume)
            model_dir = Path(refit) if refit else resolve_model(campaign.surrogate.model, "surrogate", base)
            if model_dir is None:
                raise ConfigError("surrogate.model is required: a model directory or `default`")
            scorer = stack.enter_context(make_scorer(campaign, host, model_dir))
            proposer = make_proposer(campaign, host, base)
            summary = run_loop(
                campaign,
                host,
                store,
                proposer,
                scorer,
                progress=progress,
                should_stop=lambda: stop["flag"],
                on_iteration_end=periodic_verification(campaign, host, out_dir, store, scorer, model_dir),
            )
        verify_at_end = summary.stopped != "interrupted" and needs_final_verification(campaign, store)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        store.close()
    if verify_at_end:
        from hts.campaign.verify import verify_top

        verify_top(campaign, host, out_dir)
    return summary, out_dir


def needs_final_verification(campaign: Campaign, store: CampaignStore) -> bool:
    """Whether the oracle verifies once more when a run ends: always with ``oracle.every: 0``; with
    ``every: N`` when trials were stored after the last periodic verification (the last iterations
    were fewer than N, or the budget ran out mid-way), so that the newest candidates are not left out.
    """
    if not campaign.oracle.enabled:
        return False
    last = store.last_trial()
    if last is None:
        return False
    if campaign.oracle.every == 0:
        return True
    verified = store.get_meta(VERIFIED_THROUGH)
    return verified is None or int(verified) < last[0]
