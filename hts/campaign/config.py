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
    strategy: screen          # screen | llm-bo | llm-fixed | random
    budget: {iterations: 20, trials_per_iteration: 2, samples_per_trial: 64,
             max_evaluations: 5000, wall_clock_hours: 10}
    generator: {base_model: default, adapter: default, backend: transformers, encoding: sparse}
    bo: {defect_knobs: composition}   # composition | switches (llm-bo only)
    surrogate: {model: default}
    dask: {enabled: true, scheduler: null, workers: 2}
    oracle: {enabled: false, top_k: 5, share: 0.5, refit_surrogate: false}
    seed: 0
    output: runs/mos2-midgap
    store: null               # SQLAlchemy URL, e.g. postgresql://user@host/db
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hts.errors import ConfigError
from hts.twodmd import TARGET_PROPERTIES

PROPERTIES = TARGET_PROPERTIES


@dataclass(frozen=True)
class Limit:
    """The largest value a campaign key may hold, and why: what one machine can run."""

    value: int | float
    why: str


# Upper bounds on every number a campaign holds (lower bounds are on the fields). They are what one
# machine of the kind the project runs on (tens of GB of memory, up to a few dozen cores, one GPU at
# most) can do in a campaign of days; a file above one is refused when it is loaded, naming the key,
# its value and the limit, instead of exhausting the machine mid-run. The memory a legal value needs
# is also checked against the machine at start-up (hts.campaign.safety.check_resources).
LIMITS: dict[str, Limit] = {
    "defects.min_defects": Limit(600, "half the sites of the largest supercell (20x20 of a 3-site cell)"),
    "defects.max_defects": Limit(600, "half the sites of the largest supercell (20x20 of a 3-site cell)"),
    "targets.value": Limit(1e4, "property values are in eV (or eV per site)"),
    "targets.tolerance": Limit(1e4, "property values are in eV (or eV per site)"),
    "targets.weight": Limit(1e6, "weights only matter relative to each other"),
    "budget.iterations": Limit(100_000, "the trial count is bounded too, see budget.trials"),
    "budget.trials_per_iteration": Limit(
        64, "Ax proposes an iteration's trials as one batch, and BoTorch's cost grows steeply with its size"
    ),
    "budget.samples_per_trial": Limit(
        100_000,
        "a trial's samples are scored, checked for duplicates and committed together: about 6 KB of memory "
        "each (measured on MoS2 8x8), 0.6 GB at the limit",
    ),
    "budget.max_evaluations": Limit(
        1_000_000_000, "strategy screen stores only hits and near misses; a billion is days of scoring"
    ),
    "budget.evaluations": Limit(
        10_000_000,
        "every candidate's hash is held in memory and its row stored: about 1 GB and 3 GB at the limit",
    ),
    "budget.wall_clock_hours": Limit(8760, "one year"),
    "budget.trials": Limit(100_000, "trials are stored one transaction each; runs of days end far below"),
    "budget.trials.llm-bo": Limit(
        1_000,
        "llm-bo stores Ax's state after every trial and it grows by ~3 KB a trial: ~1.6 GB of snapshots at "
        "1,000 trials, and Ax's model refits slow down with every trial",
    ),
    "generator.batch_size": Limit(1024, "sequences decoded together; the model's key/value cache grows with it"),
    "bo.initial_trials": Limit(1_000, "no more than the trials llm-bo may run"),
    "bo.scout_trials": Limit(1_000, "no more than the trials llm-bo may run"),
    "bo.exploit_trials": Limit(64, "no more than budget.trials_per_iteration may hold"),
    "bo.local_trials": Limit(64, "no more than budget.trials_per_iteration may hold"),
    "dask.workers": Limit(
        256, "LocalCluster worker processes, each holding the surrogate (~170 MB); checked against the machine too"
    ),
    "oracle.top_k": Limit(1_000, "each verification is a GFN-xTB calculation of minutes on the supercell"),
    "seed": Limit(2**32 - 1, "the seeds numpy and Ax accept"),
}
MAX_CAMPAIGN_BYTES = 1_000_000  # a campaign file is a few hundred bytes; a megabyte is anything but one
MAX_YAML_NODES = 10_000  # YAML nodes after alias expansion (a campaign has ~50)
MAX_YAML_DEPTH = 32  # nesting of YAML collections (a campaign has 3)
MAX_NAME_CHARS = 128


def _above_limit(key: str, value: Any) -> str | None:
    """The problem with ``value`` for ``key`` if it is above :data:`LIMITS` (``None`` if within)."""
    lim = LIMITS.get(key)
    if lim is None or value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float) and abs(value) > lim.value:
        return f"{value:,} is above the limit of {lim.value:,} ({lim.why})"
    return None


class _Section(BaseModel):
    # non-finite floats (.inf, .nan) are refused everywhere: no window, weight or budget is infinite
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    _KEY: ClassVar[str] = ""  # the section's key in the file ("budget"); "" for the top level

    @field_validator("*", mode="after")
    @classmethod
    def _within_limits(cls, v: Any, info: ValidationInfo) -> Any:
        key = f"{cls._KEY}.{info.field_name}" if cls._KEY else str(info.field_name)
        problem = _above_limit(key, v)
        if problem is not None:
            raise ValueError(problem)
        return v


class HostSection(_Section):
    _KEY = "host"
    material: str
    supercell: tuple[int, int, int] | None = None

    @field_validator("supercell")
    @classmethod
    def _monolayer(cls, v: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
        if v is None:
            return v
        na, nb, nc = v
        if nc != 1 or na < 1 or nb < 1:
            raise ValueError(f"{list(v)} is not a monolayer supercell: give [na, nb, 1] with na, nb >= 1")
        if na * nb > 400:
            raise ValueError(
                f"{list(v)} has {na * nb} cells, above the limit of 400 (20x20): the symmetry tables that "
                "make candidates canonical grow with the square of the cell count"
            )
        return v

    @field_validator("material")
    @classmethod
    def _known(cls, v: str) -> str:
        from hts.hosts import canonical_host_name

        try:
            return canonical_host_name(v)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


class DefectsSection(_Section):
    _KEY = "defects"
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

    _KEY = "targets"
    value: float | None = None
    tolerance: float | None = Field(None, gt=0)
    range: tuple[float, float] | None = None
    weight: float = Field(1.0, gt=0)

    @field_validator("range")
    @classmethod
    def _range_within_limits(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        for end in v or ():
            problem = _above_limit("targets.value", end)
            if problem is not None:
                raise ValueError(problem)
        return v

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
    _KEY = "budget"
    iterations: int = Field(10, ge=1)
    trials_per_iteration: int = Field(2, ge=1)
    samples_per_trial: int = Field(64, ge=1)
    max_evaluations: int | None = Field(None, ge=1)
    wall_clock_hours: float | None = Field(None, gt=0)

    @property
    def max_trials(self) -> int:
        return self.iterations * self.trials_per_iteration

    @property
    def max_planned_evaluations(self) -> int:
        """The most samples the budget lets the campaign score."""
        planned = self.max_trials * self.samples_per_trial
        return planned if self.max_evaluations is None else min(planned, self.max_evaluations)

    @model_validator(mode="after")
    def _totals(self) -> BudgetSection:
        lim = LIMITS["budget.trials"]
        if self.max_trials > lim.value:
            raise ValueError(
                f"iterations x trials_per_iteration = {self.max_trials:,} trials, above the limit of "
                f"{lim.value:,} ({lim.why})"
            )
        return self


class GeneratorSection(_Section):
    _KEY = "generator"
    base_model: str = "default"
    adapter: str | None = "default"
    backend: Literal["transformers", "vllm"] = "transformers"
    encoding: Literal["sparse", "sites", "cif"] = "sparse"
    batch_size: int = Field(64, ge=1)


class SurrogateSection(_Section):
    _KEY = "surrogate"
    model: str = "default"


class TLSSection(_Section):
    """Client-side TLS for a remote scheduler (``tls://`` addresses); see README, "Remote Dask"."""

    _KEY = "dask.tls"
    ca_file: str
    cert: str
    key: str | None = None

    def security(self) -> Any:
        from distributed.security import Security

        for name, f in (("ca_file", self.ca_file), ("cert", self.cert), ("key", self.key)):
            if f is None:
                continue
            p = Path(f).expanduser()
            if p.is_dir():
                raise ConfigError(f"dask.tls.{name}: {f} is a folder, expected a file")
            if not p.is_file():
                raise ConfigError(f"dask.tls.{name}: file {f} does not exist")
        return Security(
            tls_ca_file=self.ca_file,
            tls_client_cert=self.cert,
            tls_client_key=self.key,
            require_encryption=True,
        )


class BOSection(_Section):
    """How ``llm-bo`` plans its trials (:mod:`hts.campaign.planners`); inert for other strategies.

    ``defect_knobs``: ``composition`` (default) makes the knob space an exact count per defect type
    (their sum within the campaign's bounds): BO chooses what goes into the cell, the model where.
    ``switches``: a defect budget plus an on/off switch per type; the model decides how many of each.
    Measured on the three example campaigns (BENCHMARKS.md, strategy benchmark) composition found more
    hits on two of them; ``switches`` suits a generator without composition-constrained decoding.
    """

    _KEY = "bo"
    defect_knobs: Literal["switches", "composition"] = "composition"
    # Quasi-random (Sobol) trials before BoTorch's model chooses [2 x trials_per_iteration]. Raise it
    # for a knob space of many defect types, where a few Sobol points leave it thinly covered.
    initial_trials: int | None = Field(None, ge=1)
    # Trials at the start in which the model chooses the compositions itself (llm-fixed's setting,
    # its samples spread over four prompt settings); their candidates, grouped by composition, become
    # Ax observations (hts.campaign.scout). 0: none, e.g. when the model's own idea of the targets is
    # known to be off.
    scout_trials: int = Field(1, ge=0)
    # Trials per iteration that re-run the best setting so far (hts.campaign.incumbent), and more when
    # one more exploration trial is worth less than it costs (hts.campaign.allocation). 0: no
    # exploitation at all (every trial explores: a campaign that wants variety over hit count).
    exploit_trials: int = Field(1, ge=0)
    # Trials per iteration that search the compositions next to the leading setting, chosen by Ax's
    # model (hts.campaign.local; needs defect_knobs: composition). 0: Ax's suggestions only.
    local_trials: int = Field(1, ge=0)

    @model_validator(mode="after")
    def _local_needs_compositions(self) -> BOSection:
        if self.defect_knobs == "switches" and "local_trials" in self.model_fields_set and self.local_trials > 0:
            raise ValueError(
                "bo.local_trials searches neighbouring compositions, which bo.defect_knobs: switches does not have; "
                "set bo.local_trials: 0 or bo.defect_knobs: composition"
            )
        return self


class DaskSection(_Section):
    _KEY = "dask"
    enabled: bool = True  # false: score in-process (no cluster)
    scheduler: str | None = None  # None: a LocalCluster of `workers` processes
    workers: int = Field(2, ge=1)
    tls: TLSSection | None = None

    def security(self) -> Any:
        """The ``distributed`` TLS settings for the scheduler (``None`` without ``tls``), shared by the
        surrogate scoring and the oracle's xTB jobs."""
        return self.tls.security() if self.tls is not None else None


class OracleSection(_Section):
    """The physics oracle (GFN-xTB) verifying candidates beside generation (hts.campaign.verifier)."""

    _KEY = "oracle"
    enabled: bool = False
    # Candidates verified by the end of the run at least: after the loop the oracle tops up to this many.
    top_k: int = Field(5, ge=1)
    # Fraction of the Dask workers that verify while the loop runs (0: verify only after the loop).
    share: float = Field(0.5, ge=0, le=1)
    # The xTB method; default: the host's, the one its labels use (GFN2-xTB for GaSe and InSe, whose
    # Ga/In d shells GFN1-xTB cannot compute periodically; GFN1-xTB otherwise).
    method: Literal["GFN1-xTB", "GFN2-xTB"] | None = None
    # Refit the surrogate on the oracle's labels as they come in, and score with the refitted model.
    refit_surrogate: bool = False

    @model_validator(mode="after")
    def _refit_needs_share(self) -> OracleSection:
        if self.refit_surrogate and self.share == 0:
            raise ValueError(
                "refit_surrogate refits on the labels that come in while the loop runs, and share: 0 verifies "
                "only after it; give the oracle a share of the workers (share: 0.5), or drop refit_surrogate"
            )
        return self


def oracle_method(campaign: Campaign) -> str:
    """The oracle's xTB method for ``campaign``: ``oracle.method``, else its host's (labels' method)."""
    from hts.hosts import default_oracle_method

    return campaign.oracle.method or default_oracle_method(campaign.host.material)


class Campaign(_Section):
    name: str
    host: HostSection
    defects: DefectsSection = DefectsSection()
    targets: dict[str, Target]
    strategy: Literal["llm-bo", "llm-fixed", "random", "screen"] = "screen"
    budget: BudgetSection = BudgetSection()
    generator: GeneratorSection = GeneratorSection()
    bo: BOSection = BOSection()
    surrogate: SurrogateSection = SurrogateSection()
    dask: DaskSection = DaskSection()
    oracle: OracleSection = OracleSection()
    seed: int = Field(0, ge=0)
    output: str | None = Field(None, max_length=4096)
    store: str | None = Field(None, max_length=4096)  # SQLAlchemy URL; default sqlite:///<output>/campaign.sqlite

    @property
    def store_url(self) -> str | None:
        return self.store

    @field_validator("name")
    @classmethod
    def _folder_name(cls, v: str) -> str:
        # the name is the default output folder (runs/<name>): one plain folder name
        if not v.strip():
            raise ValueError("the name is empty")
        if len(v) > MAX_NAME_CHARS:
            raise ValueError(f"the name has {len(v)} characters, above the limit of {MAX_NAME_CHARS}")
        if any(c in v for c in "/\\\0") or v in (".", ".."):
            raise ValueError(f"{v!r} is not a folder name (it is the default output folder runs/<name>)")
        return v

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


if TYPE_CHECKING:  # the type checker sees the loader the mixin goes into; at run time it is a plain class
    from yaml import SafeLoader as _LoaderBase
else:
    _LoaderBase = object


class _BoundedComposer(_LoaderBase):
    """The limits :func:`_bounded_loader` adds to PyYAML's composer, put before ``yaml.SafeLoader`` (a
    class of its own so that importing this module does not import PyYAML). While composing, it counts
    the nodes each node expands to through aliases, keeps the anchors of the collections still open (an
    alias of one is a collection inside itself) and the depth of nesting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._expanded: dict[int, tuple[int, Any]] = {}  # id(node) -> (nodes once expanded, node)
        self._open: set[str] = set()  # anchors of the collections being composed
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        import yaml
        from yaml.composer import ComposerError

        event: Any = self.peek_event()
        mark: Any = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            self._aliases += 1
            if event.anchor in self._open:
                raise ComposerError(None, None, f"alias *{event.anchor} refers to a collection that contains it", mark)
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise ComposerError(None, None, f"nesting deeper than {MAX_YAML_DEPTH} levels", mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        size = self._size(node)
        if size > MAX_YAML_NODES:
            raise ComposerError(
                None,
                None,
                f"the document expands to more than {MAX_YAML_NODES:,} nodes through its aliases "
                f"({self._aliases} aliases so far); a campaign needs ~50: is this a 'billion laughs' file?",
                mark,
            )
        return node

    def _size(self, node: Any) -> int:
        """Nodes in ``node`` once its aliases are expanded (its children's sizes are known: composed first)."""
        import yaml

        known = self._expanded.get(id(node))
        if known is not None:
            return known[0]
        if isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._expanded[id(c)][0] for c in node.value)
        elif isinstance(node, yaml.MappingNode):
            size = 1 + sum(self._expanded[id(k)][0] + self._expanded[id(v)][0] for k, v in node.value)
        else:
            size = 1
        self._expanded[id(node)] = (size, node)
        return size

    def compose_sequence_node(self, anchor: Any) -> Any:
        return self._compose_open(anchor, super().compose_sequence_node)

    def compose_mapping_node(self, anchor: Any) -> Any:
        return self._compose_open(anchor, super().compose_mapping_node)

    def _compose_open(self, anchor: Any, compose: Any) -> Any:
        if anchor is not None:
            self._open.add(anchor)
        try:
            return compose(anchor)
        finally:
            self._open.discard(anchor)


def _bounded_loader(text: str) -> Any:
    """A PyYAML ``SafeLoader`` for ``text`` that refuses, while composing, documents that expand to more
    than :data:`MAX_YAML_NODES` nodes through their aliases (a "billion laughs" file: 9 levels of 9
    aliases are 387 million nodes once expanded), aliases of a collection inside itself, and nesting
    deeper than :data:`MAX_YAML_DEPTH`. Each refusal is a ``ComposerError`` with the line it is at."""
    import yaml

    class BoundedLoader(_BoundedComposer, yaml.SafeLoader):
        pass

    return BoundedLoader(text)


def load_yaml(text: str, source: str = "<campaign>") -> tuple[Any, dict[tuple[str, ...], int]]:
    """The data of one YAML document and the line (1-based) of every mapping key path in it, read with
    :func:`_bounded_loader`; anything unreadable is a :class:`ConfigError` naming ``source``."""
    import yaml

    if len(text) > MAX_CAMPAIGN_BYTES:
        raise ConfigError(
            f"{source}: {len(text):,} characters, above the limit of {MAX_CAMPAIGN_BYTES:,}; a campaign is a short "
            "YAML text"
        )
    loader = None
    try:
        loader = _bounded_loader(text)  # (the reader refuses non-printable characters here)
        loader.name = source  # the marks in YAML errors name the file
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        where = str(exc).replace('"<unicode string>"', f'"{source}"')  # the reader names it before we can
        raise ConfigError(f"{source}: not valid YAML: {where}") from None
    except (ValueError, OverflowError, RecursionError) as exc:  # e.g. a 5,000-digit integer, a 13th month
        raise ConfigError(f"{source}: not valid YAML: a value cannot be read: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, _key_lines(node)


def _key_lines(root: Any) -> dict[tuple[str, ...], int]:
    """Line number (1-based) of every mapping key path under a composed YAML node."""
    import yaml

    lines: dict[tuple[str, ...], int] = {}

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = (*path, str(k.value))
                lines.setdefault(key, k.start_mark.line + 1)
                walk(v, key)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, (*path, str(i)))

    if root is not None:
        walk(root, ())
    return lines


def _cross_limits(campaign: Campaign) -> list[tuple[tuple[str, ...], str]]:
    """Limits that depend on more than one section: ``(key path, problem)`` pairs."""
    out: list[tuple[tuple[str, ...], str]] = []
    b = campaign.budget
    lim = LIMITS["budget.max_evaluations" if campaign.strategy == "screen" else "budget.evaluations"]
    if b.max_planned_evaluations > lim.value:
        if b.max_evaluations is not None and b.max_evaluations == b.max_planned_evaluations:
            loc, what, fix = ("budget", "max_evaluations"), "max_evaluations", "lower it"
        else:
            loc, what = ("budget", "samples_per_trial"), "iterations x trials_per_iteration x samples_per_trial"
            fix = "lower them or set a smaller max_evaluations"
        out.append(
            (
                loc,
                f"{what} = {b.max_planned_evaluations:,} evaluations, above the limit of {lim.value:,} for strategy "
                f"{campaign.strategy} ({lim.why}); {fix}",
            )
        )
    lim = LIMITS["budget.trials.llm-bo"]
    if campaign.strategy == "llm-bo" and b.max_trials > lim.value:
        out.append(
            (
                ("budget", "iterations"),
                f"iterations x trials_per_iteration = {b.max_trials:,} trials, above the limit of {lim.value:,} for "
                f"strategy llm-bo ({lim.why})",
            )
        )
    return out


def _where(loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> str:
    where = ".".join(loc) or "(top level)"
    line = next((lines[loc[:i]] for i in range(len(loc), 0, -1) if loc[:i] in lines), None)
    return f"{where} (line {line})" if line else where


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_WARNED_INERT_BO: set[tuple[str, str]] = set()


def parse_campaign(text: str, source: str = "<campaign>") -> Campaign:
    """Validate campaign YAML text; :class:`ConfigError` names the key, its line, the value and the problem."""
    data, lines = load_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a campaign is a YAML mapping (name:, host:, targets: ...)")
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        msgs = []
        for err in exc.errors():
            loc = tuple(str(x) for x in err["loc"])
            where = _where(loc, lines)
            if err["type"] == "extra_forbidden":
                msgs.append(f"unknown key {'.'.join(loc)!r}{where.removeprefix('.'.join(loc))}")
            elif err["type"] == "missing":
                msgs.append(f"missing key {'.'.join(loc)!r}{where.removeprefix('.'.join(loc))}")
            else:
                msg = str(err["msg"]).removeprefix("Value error, ")
                value = err.get("input")
                if err["type"] != "value_error" and isinstance(value, str | int | float | bool | type(None)):
                    msg += f" (got {_shown(value)})"  # the checks of our own say the value themselves
                msgs.append(f"{where}: {msg}")
        raise ConfigError(f"{source}: " + "; ".join(msgs)) from None
    except RecursionError:  # pragma: no cover - nesting is bounded by the loader
        raise ConfigError(f"{source}: nested too deeply") from None
    problems = _cross_limits(campaign)
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(f"{_where(loc, lines)}: {msg}" for loc, msg in problems))
    if "bo" in data and campaign.strategy != "llm-bo" and (source, text) not in _WARNED_INERT_BO:
        _WARNED_INERT_BO.add((source, text))  # a campaign is parsed more than once in a run: said once
        logging.getLogger(__name__).warning(
            "%s: %s: the bo section has no effect with strategy: %s (only llm-bo plans with it)",
            source,
            _where(("bo",), lines),
            campaign.strategy,
        )
    return campaign


def read_campaign_text(path: str | os.PathLike[str]) -> str:
    """The text of a campaign file: a regular file of at most :data:`MAX_CAMPAIGN_BYTES` bytes of UTF-8;
    anything else is a :class:`ConfigError` naming the file."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"campaign file {p} is a folder, expected a YAML file")
    if not p.exists():
        raise ConfigError(f"campaign file {p} does not exist")
    if not p.is_file():
        raise ConfigError(f"campaign file {p} is not a regular file (a device, pipe or socket), expected a YAML file")
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_CAMPAIGN_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read the campaign file {p}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CAMPAIGN_BYTES:
        raise ConfigError(
            f"campaign file {p} is larger than the limit of {MAX_CAMPAIGN_BYTES:,} bytes; a campaign is a short "
            "YAML text"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"campaign file {p} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "a campaign is a YAML text file"
        ) from None
    return text.removeprefix("\ufeff")  # a byte-order mark is not part of the YAML


def load_campaign(path: str | os.PathLike[str]) -> Campaign:
    """Read and validate a campaign file (:func:`read_campaign_text`, :func:`parse_campaign`)."""
    return parse_campaign(read_campaign_text(path), source=str(path))
