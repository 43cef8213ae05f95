"""Campaign YAML schema: one pydantic model per section; unknown keys are errors naming key and line.

A campaign file looks like (see ``campaigns/`` for complete examples and README for the reference)::

    name: mos2-midgap
    host: {material: MoS2, supercell: [8, 8, 1]}
    defects:
      allowed: [vac_S, "S->Se", vac_Mo, "Mo->W"]   # rule names of the host; default: all
      min_defects: 1
      max_defects: 6
      max_concentration: 0.125
    targets:
      homo_lumo_gap: {value: 1.0, tolerance: 0.1, weight: 1.0}
      formation_energy: {range: [0.0, 8.0]}
    strategy: llm-bo          # llm-bo | llm-fixed | random
    budget: {iterations: 20, trials_per_iteration: 2, samples_per_trial: 64,
             max_evaluations: 5000, wall_clock_hours: 10}
    generator: {base_model: default, adapter: default, backend: transformers, encoding: sparse}
    bo: {defect_knobs: composition}   # composition | switches (llm-bo only)
    surrogate: {model: default}
    dask: {enabled: true, scheduler: null, workers: 2}
    oracle: {enabled: false, top_k: 5, every: 0, refit_surrogate: false}
    seed: 0
    output: runs/mos2-midgap
    store: null               # SQLAlchemy URL, e.g. postgresql://user@host/db
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hts.errors import ConfigError
from hts.twodmd import TARGET_PROPERTIES

PROPERTIES = TARGET_PROPERTIES


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HostSection(_Section):
    material: str
    supercell: tuple[int, int, int] | None = None

    @field_validator("material")
    @classmethod
    def _known(cls, v: str) -> str:
        from hts.hosts import canonical_host_name

        try:
            return canonical_host_name(v)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


class DefectsSection(_Section):
    allowed: list[str] | None = None
    min_defects: int = Field(1, ge=0)
    max_defects: int = Field(8, ge=1)
    max_concentration: float = Field(0.125, gt=0, le=0.5)

    @model_validator(mode="after")
    def _order(self) -> DefectsSection:
        if self.min_defects > self.max_defects:
            raise ValueError(f"min_defects ({self.min_defects}) is larger than max_defects ({self.max_defects})")
        return self


class Target(_Section):
    """A point with a tolerance (``value`` +- ``tolerance``) or a ``range`` [low, high], with a weight."""

    value: float | None = None
    tolerance: float | None = Field(None, gt=0)
    range: tuple[float, float] | None = None
    weight: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _one_form(self) -> Target:
        if (self.value is None) == (self.range is None):
            raise ValueError("give either value (with tolerance) or range: [low, high]")
        if self.value is not None and self.tolerance is None:
            raise ValueError("a point target needs a tolerance")
        if self.range is not None:
            lo, hi = self.range
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
                raise ValueError(f"range must be [low, high] with low < high, got {list(self.range)}")
        return self

    @property
    def window(self) -> tuple[float, float]:
        if self.range is not None:
            return self.range
        assert self.value is not None and self.tolerance is not None
        return (self.value - self.tolerance, self.value + self.tolerance)

    @property
    def centre(self) -> float:
        lo, hi = self.window
        return 0.5 * (lo + hi)

    @property
    def half_width(self) -> float:
        lo, hi = self.window
        return 0.5 * (hi - lo)


class BudgetSection(_Section):
    iterations: int = Field(10, ge=1)
    trials_per_iteration: int = Field(2, ge=1)
    samples_per_trial: int = Field(64, ge=1)
    max_evaluations: int | None = Field(None, ge=1)
    wall_clock_hours: float | None = Field(None, gt=0)


class GeneratorSection(_Section):
    base_model: str = "default"
    adapter: str | None = "default"
    backend: Literal["transformers", "vllm"] = "transformers"
    encoding: Literal["sparse", "sites", "cif"] = "sparse"
    batch_size: int = Field(64, ge=1)


class SurrogateSection(_Section):
    model: str = "default"


class TLSSection(_Section):
    """Client-side TLS for a remote scheduler (``tls://`` addresses); see README, "Remote Dask"."""

    ca_file: str
    cert: str
    key: str | None = None

    def security(self) -> Any:
        from distributed.security import Security

        for f in (self.ca_file, self.cert, self.key):
            if f is not None and not Path(f).expanduser().is_file():
                raise ConfigError(f"dask.tls: file {f} does not exist")
        return Security(
            tls_ca_file=self.ca_file,
            tls_client_cert=self.cert,
            tls_client_key=self.key,
            require_encryption=True,
        )


class BOSection(_Section):
    """How ``llm-bo`` parametrises the defects of a trial (see :func:`hts.campaign.loop.knob_space`).

    ``switches``: a defect budget plus an on/off switch per defect type; the generator decides how
    many of each. ``composition`` (default): an exact count per defect type (their sum within the
    campaign's bounds); the generator decides where they go. Measured on the three example campaigns
    (BENCHMARKS.md, strategy benchmark) composition found more hits on two of them.
    """

    defect_knobs: Literal["switches", "composition"] = "composition"
    initial_trials: int | None = Field(None, ge=1)  # Sobol trials before BoTorch [2 x trials_per_iteration]
    # Trials at the start in which the model chooses the composition itself (llm-fixed's setting);
    # their candidates, grouped by composition, become Ax observations (hts.campaign.scout). 0: none.
    scout_trials: int = Field(1, ge=0)
    # Prompt settings the scout's samples are split over: the target centres, then values spread over
    # the prompt knobs' ranges (hts.campaign.scout.scout_segments). 1: the target centres only.
    scout_prompts: int = Field(4, ge=1)
    # Trials per iteration that re-run the best setting so far (hts.campaign.incumbent); the rest are
    # Ax's suggestions. 0: every trial from Ax.
    exploit_trials: int = Field(1, ge=0)
    # Only a setting whose hits came in at least this fraction of its samples is re-run (0: any with a hit).
    exploit_min_hit_rate: float = Field(0.1, ge=0, le=1)
    # The other trials of an iteration also re-run that setting when one more exploration trial is worth
    # less than it costs: its value an upper bound (the exploited setting's headroom x the trials left x
    # Laplace's chance that a try finds a better setting), its cost the hits per sample it gives up
    # (hts.campaign.allocation). Every `explore_every`-th iteration keeps its exploration trials
    # regardless (0: never). false: one exploitation trial per iteration (`exploit_trials`), the rest explore.
    adaptive_exploit: bool = True
    explore_every: int = Field(0, ge=0)
    # Trials per iteration that search the compositions next to the leading setting, chosen by Ax's
    # model (hts.campaign.local; composition knobs only), until a setting is worth exploiting.
    local_trials: int = Field(1, ge=0)
    # Local trials also once a setting is exploited, centred on the leader, in the exploration slots
    # adaptive exploitation leaves (false: only until a setting is worth exploiting).
    local_after_exploit: bool = True
    # Compositions one local trial probes once the leader's own composition has been tried: the trial's
    # samples split evenly over them (64 over 4: 16 each), each part an Ax observation of its own
    # (hts.campaign.local). A composition counts as tried once a part's samples have been drawn with it.
    # 1: one composition per local trial, on all its samples.
    local_probes: int = Field(4, ge=1)
    # How Ax treats the trial scores' noise: "binomial" gives each score its standard error
    # (hts.campaign.objective.score_sem), "inferred" lets Ax fit one noise level to all of them.
    noise: Literal["binomial", "inferred"] = "binomial"
    # The closeness term that scores trials without hits (hts.campaign.objective.ClosenessKernel): the
    # weight of a heavy tail next to the Gaussian core, and the tail's width in window half-widths.
    closeness_tail: float = Field(0.0, ge=0, le=1)
    closeness_width: float = Field(3.0, gt=0)
    # The hit term of the trial score: "predicted" counts the new candidates whose predicted means lie
    # in every window; "expected" sums their probabilities of being inside under the surrogate's
    # uncertainty (hts.campaign.objective.hit_probability), which also ranks near misses and edge hits.
    hit_term: Literal["predicted", "expected"] = "predicted"


class DaskSection(_Section):
    enabled: bool = True  # false: score in-process (no cluster)
    scheduler: str | None = None  # None: a LocalCluster of `workers` processes
    workers: int = Field(2, ge=1)
    tls: TLSSection | None = None

    def security(self) -> Any:
        """The ``distributed`` TLS settings for the scheduler (``None`` without ``tls``), shared by the
        surrogate scoring and the oracle's xTB jobs."""
        return self.tls.security() if self.tls is not None else None


class OracleSection(_Section):
    enabled: bool = False
    top_k: int = Field(5, ge=1)
    every: int = Field(0, ge=0)  # 0: only at the end
    method: Literal["GFN1-xTB", "GFN2-xTB"] = "GFN1-xTB"
    refit_surrogate: bool = False  # refit after each verification during the run (needs every > 0)

    @model_validator(mode="after")
    def _refit_needs_every(self) -> OracleSection:
        if self.refit_surrogate and self.every == 0:
            raise ValueError(
                "refit_surrogate refits after the verifications during the run; set every: N (verify after "
                "every N-th iteration), or drop refit_surrogate (every: 0 verifies once, at the end)"
            )
        return self


class Campaign(_Section):
    name: str
    host: HostSection
    defects: DefectsSection = DefectsSection()
    targets: dict[str, Target]
    strategy: Literal["llm-bo", "llm-fixed", "random"] = "llm-bo"
    budget: BudgetSection = BudgetSection()
    generator: GeneratorSection = GeneratorSection()
    bo: BOSection = BOSection()
    surrogate: SurrogateSection = SurrogateSection()
    dask: DaskSection = DaskSection()
    oracle: OracleSection = OracleSection()
    seed: int = 0
    output: str | None = None
    store: str | None = None  # SQLAlchemy URL; default sqlite:///<output>/campaign.sqlite

    @property
    def store_url(self) -> str | None:
        return self.store

    @field_validator("targets")
    @classmethod
    def _known_properties(cls, v: dict[str, Target]) -> dict[str, Target]:
        if not v:
            raise ValueError("at least one target property is needed")
        for k in v:
            if k not in PROPERTIES:
                raise ValueError(f"unknown target property {k!r}; known: {', '.join(PROPERTIES)}")
        return v

    @model_validator(mode="after")
    def _rules_exist(self) -> Campaign:
        from hts.hosts import get_host

        host = get_host(self.host.material, self.host.supercell)
        names = [r.name for r in host.rules]
        for rule in self.defects.allowed or []:
            if rule not in names:
                raise ValueError(f"defect type {rule!r} is not a rule of {host.name}; its rules: {', '.join(names)}")
        return self

    def output_dir(self, base: Path | None = None) -> Path:
        """Where the campaign writes (``output`` or ``runs/<name>``), relative to ``base``."""
        out = Path(self.output) if self.output else Path("runs") / self.name
        return out if out.is_absolute() or base is None else base / out


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Line number (1-based) of every mapping key path in a YAML document."""
    import yaml

    lines: dict[tuple[str, ...], int] = {}

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = (*path, str(k.value))
                lines[key] = k.start_mark.line + 1
                walk(v, key)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, (*path, str(i)))

    with contextlib.suppress(yaml.YAMLError):
        walk(yaml.compose(text, Loader=yaml.SafeLoader), ())
    return lines


def parse_campaign(text: str, source: str = "<campaign>") -> Campaign:
    """Validate campaign YAML text; :class:`ConfigError` names the key, its line and the problem."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a campaign is a YAML mapping (name:, host:, targets: ...)")
    try:
        return Campaign.model_validate(data)
    except ValidationError as exc:
        lines = _key_lines(text)
        msgs = []
        for err in exc.errors():
            loc = tuple(str(x) for x in err["loc"])
            where = ".".join(loc) or "(top level)"
            line = next((lines[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in lines), None)
            at = f" (line {line})" if line else ""
            if err["type"] == "extra_forbidden":
                msgs.append(f"unknown key {where!r}{at}")
            elif err["type"] == "missing":
                msgs.append(f"missing key {where!r}{at}")
            else:
                msg = str(err["msg"]).removeprefix("Value error, ")
                msgs.append(f"{where}{at}: {msg}")
        raise ConfigError(f"{source}: " + "; ".join(msgs)) from None


def load_campaign(path: str | os.PathLike[str]) -> Campaign:
    """Read and validate a campaign file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"campaign file {p} does not exist")
    return parse_campaign(p.read_text(), source=str(p))
