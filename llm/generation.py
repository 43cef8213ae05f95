"""Generation: the ``Generator`` protocol, requests and results, and the transformers back end.

The campaign loop calls one method::

    results = generator.generate([GenerationRequest(host, {"homo_lumo_gap": 1.2}, n=32,
                                                    temperature=0.9, max_defects=6)])

and gets one :class:`GenerationResult` per sample (``request_index`` says which request), with the
parsed configuration or the parser's error. Constrained decoding (the default) makes every sample
parse into an allowed configuration of the request's host within its defect budget; ``constrained=
False`` samples freely, to measure the difference.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from hts.defects import DefectConfiguration
from hts.errors import ConfigError, GenerationError
from hts.hosts import Host
from llm.encodings import check_encoding, parse_answer
from llm.prompts import build_prompt
from llm.properties import normalize_targets

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationRequest:
    """``n`` samples for ``host`` conditioned on ``targets`` (property -> value; empty: unconditional)."""

    host: Host
    targets: Mapping[str, float] = field(default_factory=dict)
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_defects: int | None = None
    min_defects: int = 1
    constrained: bool = True
    seed: int | None = None
    allowed: np.ndarray | None = None  # (n_sites, n_codes) bool: narrower rules than the host's
    # Exact defect counts per type ({rule name: count}); replaces the max/min budget when given.
    composition: Mapping[str, int] | None = None

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ConfigError(f"n must be >= 1, got {self.n}")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        object.__setattr__(self, "targets", normalize_targets(self.targets))
        from llm.encodings import check_allowed

        if self.allowed is not None:
            object.__setattr__(self, "allowed", check_allowed(self.host, self.allowed).copy())
        if self.composition is not None:
            from llm.constraints import composition_counts

            counts = composition_counts(self.host, self.composition)
            total = sum(counts)
            # Types with no count are switched off, so that a back end without per-type counting
            # (vLLM's regular expression) still cannot use them; the budget is the total.
            unused = [r for r, c in enumerate(counts) if c == 0]
            allowed = check_allowed(self.host, self.allowed) & ~np.isin(self.host.rule_index, unused)
            object.__setattr__(self, "composition", dict(zip([r.name for r in self.host.rules], counts, strict=True)))
            object.__setattr__(self, "allowed", allowed)
            object.__setattr__(self, "max_defects", total)
            object.__setattr__(self, "min_defects", total)

    @property
    def quotas(self) -> tuple[int, ...] | None:
        """The composition as counts in the host's rule order (``None``: a budget, not a composition)."""
        if self.composition is None:
            return None
        return tuple(int(self.composition.get(r.name, 0)) for r in self.host.rules)

    def prompt(self, encoding: str) -> str:
        return build_prompt(self.host, self.targets, encoding)


@dataclass
class GenerationResult:
    """One sample: the generated answer text and what it parsed into (or why not)."""

    request_index: int
    text: str
    config: DefectConfiguration | None
    error: str | None = None
    n_tokens: int = 0

    @property
    def valid(self) -> bool:
        return self.config is not None

    def to_json(self) -> dict[str, Any]:
        c = self.config
        return {
            "request_index": self.request_index,
            "text": self.text,
            "valid": self.valid,
            "defects": [list(d) for d in c.defects] if c is not None else None,
            "error": self.error,
            "n_tokens": self.n_tokens,
        }


@runtime_checkable
class Generator(Protocol):
    """Anything that turns generation requests into parsed samples (transformers, vLLM, fakes)."""

    encoding: str

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]: ...


def parse_result(
    index: int,
    text: str,
    host: Host,
    encoding: str,
    n_tokens: int,
    composition: Mapping[str, int] | None = None,
) -> GenerationResult:
    """A result from generated text: parsed, or carrying the parser's message. With a
    ``composition`` (the request's), an answer with other counts per defect type is invalid too."""
    try:
        config = parse_answer(text, host, encoding)
    except GenerationError as exc:
        return GenerationResult(index, text, None, str(exc), n_tokens)
    if composition is not None:
        got = type_counts(config)
        want = {k: int(v) for k, v in composition.items() if v}
        if got != want:
            return GenerationResult(index, text, None, f"composition {got} is not the requested {want}", n_tokens)
    return GenerationResult(index, text, config, None, n_tokens)


def type_counts(config: DefectConfiguration) -> dict[str, int]:
    """Defects per type (rule name) of a configuration, types that occur only."""
    out: dict[str, int] = {}
    for site, species in config.defects:
        rule = config.host.rule_for(site, species)
        name = rule.name if rule is not None else f"{config.host.site_species[site]}->{species}"
        out[name] = out.get(name, 0) + 1
    return out


def max_answer_tokens(tokenizer: Any, host: Host, encoding: str, max_defects: int | None) -> int:
    """Tokens of the longest canonical answer within the budget (+1 for EOS)."""
    from llm.encodings import encode_answer
    from llm.tokenizer import encode_ids

    budget = host.n_sites if max_defects is None else min(max_defects, host.n_sites)
    if encoding == "sparse":
        sites = np.arange(host.n_sites - budget, host.n_sites)
        defects = {
            int(s): max((host.species_codes[c] for c in np.flatnonzero(host.allowed[s])), key=len)
            for s in sites
            if host.allowed[s].any()
        }
        cfg = DefectConfiguration.from_mapping(host, defects)
        return len(encode_ids(tokenizer, encode_answer(cfg, encoding))) + 1
    # symbols vary little in length: the pristine answer plus 2 tokens per possible change
    cfg = DefectConfiguration.pristine(host)
    return len(encode_ids(tokenizer, encode_answer(cfg, encoding))) + 2 * budget + 1


def max_answer_chars(host: Host, encoding: str, max_defects: int | None) -> int:
    """Characters of the longest valid answer: a bound on tokens under constraints (+1 for EOS)."""
    from llm.encodings import SITES_CLOSE, SITES_OPEN, SPARSE_CLOSE, SPARSE_OPEN, coord_strings, site_width

    longest = max(len(s) for s in (*host.site_species, *host.species_codes))
    budget = host.n_sites if max_defects is None else min(max_defects, host.n_sites)
    if encoding == "sparse":
        return len(SPARSE_OPEN) + budget * (site_width(host) + 2 + longest) + len(SPARSE_CLOSE) + 2
    if encoding == "sites":
        return len(SITES_OPEN) + host.n_sites * (1 + longest) + len(SITES_CLOSE) + 2
    return sum(longest + 2 + len(c) for c in coord_strings(host)) + 1


def canonical_forbidden(tokenizer: Any) -> frozenset[int]:
    """Token ids the constrained decoder never emits, so that it only walks canonical tokenizations.

    For the project's tokenizer, answers consist of a few pieces only (tags, ``VAC``, element symbols
    and digits, each with or without a leading space, ``.``, ``:``, newline); with everything else
    forbidden, each valid answer has exactly one token path: the one the tokenizer produces (the model
    never has to put probability on ``" "`` + ``"Mo"`` or ``"S"`` + ``"e"``). Empty for other
    tokenizers (their merges are not modelled; any path spelling a valid answer is allowed).
    """
    from llm.tokenizer import ELEMENTS, TAGS, is_project_tokenizer

    if not is_project_tokenizer(tokenizer):
        return frozenset()
    pieces = [*TAGS, "VAC", *ELEMENTS, *"0123456789"]
    keep = {*pieces, *(" " + p for p in pieces), ".", ":", "\n"}
    return frozenset(i for t, i in tokenizer.get_vocab().items() if t not in keep)


class ConstrainedLogitsProcessor:
    """Hugging Face logits processor: row ``r`` may only emit tokens its constraint allows.

    Rows are the batch rows of one ``generate`` call (sampling, no beams). The answer starts at the
    first call; finished rows (EOS emitted) are left alone.
    """

    def __init__(self, constraints: Sequence[Any], eos_token_id: int) -> None:
        self.constraints = list(constraints)
        self.eos = eos_token_id
        self.states: list[Any] | None = None
        self.done: list[bool] = []
        self.dead_ends = 0

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        batch = input_ids.shape[0]
        if self.states is None:
            if batch != len(self.constraints):
                raise GenerationError(f"{batch} rows but {len(self.constraints)} constraints")
            self.states = [c.automaton.start() for c in self.constraints]
            self.done = [False] * batch
        else:
            for r, tok in enumerate(input_ids[:, -1].tolist()):
                if self.done[r]:
                    continue
                if tok == self.eos:
                    self.done[r] = True
                    continue
                nxt = self.constraints[r].advance(self.states[r], tok)
                if nxt is None:  # cannot happen when the mask below was applied
                    self.done[r] = True
                    self.dead_ends += 1
                    continue
                self.states[r] = nxt
        mask = torch.full_like(scores, float("-inf"))
        for r in range(batch):
            if self.done[r]:
                mask[r] = 0.0
                continue
            ids = self.constraints[r].allowed(self.states[r])
            if ids.size == 0:
                logger.warning("constrained decoding reached a dead end (state %s); ending the sample", self.states[r])
                self.dead_ends += 1
                ids = np.array([self.eos])
            mask[r, torch.from_numpy(ids)] = 0.0
        return scores + mask


MAX_CACHED_CONSTRAINTS = 64
"""Token constraints kept per generator (least recently used dropped): each holds its own memo of
allowed tokens per state, and a long campaign asks for a new budget, rule mask or composition in
almost every trial."""


class TransformersGenerator:
    """Generation with a Hugging Face causal LM (CPU or GPU), batched, constrained or free."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        encoding: str,
        *,
        batch_size: int = 16,
        device: str | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.encoding = check_encoding(encoding)
        self.batch_size = int(batch_size)
        self.device = device or str(next(model.parameters()).device)
        self._trie: Any = None
        self._constraints: dict[tuple[str, int | None, int, bytes | None, tuple[int, ...] | None], Any] = {}
        self.last_stats: dict[str, float] = {}
        # Properties the model was trained to condition on (None: not recorded, any may be prompted),
        # and their value ranges in training (None: not recorded).
        self.properties: list[str] | None = None
        self.property_ranges: dict[str, tuple[float, float]] | None = None

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str,
        adapter_dir: str | None = None,
        *,
        encoding: str,
        host: Host | None = None,
        device: str = "cpu",
        dtype: str | None = None,
        batch_size: int = 16,
        merge: bool = True,
    ) -> TransformersGenerator:
        """Load a base model (and adapter) directory, refusing mismatched settings."""
        from llm.model import load_with_adapter

        model, tok, manifest = load_with_adapter(
            model_dir,
            adapter_dir,
            encoding=encoding,
            host_key=host.key if host else None,
            device=device,
            dtype=dtype,
            merge=merge,
        )
        gen = cls(model, tok, encoding, batch_size=batch_size, device=device)
        if adapter_dir is not None and manifest is not None:
            gen.properties, gen.property_ranges = prompt_properties(manifest, host)
        return gen

    def constraint(
        self,
        host: Host,
        max_defects: int | None,
        min_defects: int,
        allowed: np.ndarray | None = None,
        composition: tuple[int, ...] | None = None,
    ) -> Any:
        """The (cached) token constraint for a host, budget (or exact composition) and optional
        narrower rules."""
        from llm.constraints import TokenConstraint, TokenTrie, make_automaton
        from llm.tokenizer import token_strings

        mask_key = None if allowed is None else np.packbits(np.asarray(allowed, dtype=bool)).tobytes()
        key = (host.key, max_defects, min_defects, mask_key, composition)
        tc = self._constraints.pop(key, None)
        if tc is not None:
            self._constraints[key] = tc  # most recently used last
        else:
            while len(self._constraints) >= MAX_CACHED_CONSTRAINTS:  # a campaign asks for many settings
                self._constraints.pop(next(iter(self._constraints)))
            if self._trie is None:
                self._trie = TokenTrie(token_strings(self.tokenizer))
            automaton = make_automaton(host, self.encoding, max_defects, min_defects, allowed, composition)
            tc = self._constraints[key] = TokenConstraint(
                automaton, self._trie, self.tokenizer.eos_token_id, canonical_forbidden(self.tokenizer)
            )
        return tc

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Samples for every request, in request order (``request_index`` is the position).

        Samples of different requests with the same temperature, top-p and constrained flag share
        batches (left-padded prompts), so many small requests run as fast as one large one. Seeds:
        the first request's seed (if any) seeds the whole call, so a call is reproducible as a whole.
        """
        import torch

        from llm.tokenizer import prompt_ids

        t0 = time.perf_counter()
        seeds = [r.seed for r in requests if r.seed is not None]
        if seeds:
            torch.manual_seed(seeds[0])
        groups: dict[tuple[float, float, bool], list[_Row]] = {}
        for ri, req in enumerate(requests):
            ids = prompt_ids(self.tokenizer, req.prompt(self.encoding))
            if req.constrained:  # every token has >= 1 character: the automaton ends the answer in time
                limit = max_answer_chars(req.host, self.encoding, req.max_defects)
                tc = self.constraint(req.host, req.max_defects, req.min_defects, req.allowed, req.quotas)
            else:  # free sampling: 25 % above the longest canonical answer
                limit = int(max_answer_tokens(self.tokenizer, req.host, self.encoding, req.max_defects) * 1.25) + 4
                tc = None
            key = (float(req.temperature), float(req.top_p), bool(req.constrained))
            groups.setdefault(key, []).extend(_Row(ri, k, ids, tc, limit) for k in range(req.n))
        by_row: dict[tuple[int, int], GenerationResult] = {}
        for (temperature, top_p, _), rows in groups.items():
            for lo in range(0, len(rows), self.batch_size):
                chunk = rows[lo : lo + self.batch_size]
                texts, counts = self._sample(chunk, temperature, top_p)
                for row, text, nt in zip(chunk, texts, counts, strict=True):
                    req = requests[row.request]
                    by_row[(row.request, row.k)] = parse_result(
                        row.request, text, req.host, self.encoding, nt, req.composition
                    )
        out = [by_row[key] for key in sorted(by_row)]
        dt = time.perf_counter() - t0
        n_valid = sum(r.valid for r in out)
        self.last_stats = {
            "samples": len(out),
            "valid": n_valid,
            "seconds": dt,
            "samples_per_s": len(out) / dt if dt > 0 else float("nan"),
            "tokens": sum(r.n_tokens for r in out),
        }
        logger.info("generated %d samples (%d valid) in %.1f s", len(out), n_valid, dt)
        return out

    def _sample(self, rows: Sequence[_Row], temperature: float, top_p: float) -> tuple[list[str], list[int]]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        pad = self.tokenizer.pad_token_id
        width = max(len(r.ids) for r in rows)
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):  # left padding
            input_ids[i, width - len(r.ids) :] = torch.tensor(r.ids)
            attention[i, width - len(r.ids) :] = 1
        processors = LogitsProcessorList()
        if rows[0].constraint is not None:
            processors.append(ConstrainedLogitsProcessor([r.constraint for r in rows], self.tokenizer.eos_token_id))
        gen_cfg = GenerationConfig(
            do_sample=True,
            temperature=temperature,
            top_p=top_p,
            top_k=0,
            max_new_tokens=max(r.limit for r in rows),
            eos_token_id=self.tokenizer.eos_token_id,
            pad_token_id=pad,
            bos_token_id=self.tokenizer.bos_token_id,
        )
        with torch.inference_mode():
            seqs = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention.to(self.device),
                generation_config=gen_cfg,
                logits_processor=processors,
            )
        new = seqs[:, width:].tolist()
        texts, counts = [], []
        eos = self.tokenizer.eos_token_id
        for row in new:
            if eos in row:
                row = row[: row.index(eos)]
            row = [t for t in row if t != pad]
            texts.append(self.tokenizer.decode(row, skip_special_tokens=True))
            counts.append(len(row))
        return texts, counts


@dataclass
class _Row:
    """One sample to draw: request ``request``, sample ``k``, prompt ids, constraint, token limit."""

    request: int
    k: int
    ids: list[int]
    constraint: Any
    limit: int


def prompt_properties(
    manifest: Any, host: Host | None
) -> tuple[list[str] | None, dict[str, tuple[float, float]] | None]:
    """The properties an adapter's prompts conditioned on and their ranges, for ``host`` where the
    manifest records them per host, else over all its training prompts; ``None`` where not recorded."""
    ranges = manifest.property_ranges
    if host is not None and host.key in manifest.host_property_ranges:
        ranges = manifest.host_property_ranges[host.key]
        return sorted(ranges), {p: (float(r[0]), float(r[1])) for p, r in ranges.items()}
    properties = list(manifest.properties) or None
    return properties, ({p: (float(r[0]), float(r[1])) for p, r in ranges.items()} if ranges else None)


def generate_for_targets(
    generator: Generator,
    host: Host,
    targets: Mapping[str, float] | Sequence[Mapping[str, float]],
    n: int,
    **options: Any,
) -> list[GenerationResult]:
    """Convenience: ``n`` samples per target dict (one dict or a list of them)."""
    target_list = [targets] if isinstance(targets, Mapping) else list(targets)
    return generator.generate([GenerationRequest(host, t, n=n, **options) for t in target_list])
