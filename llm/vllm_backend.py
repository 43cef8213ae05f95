"""vLLM back end (GPU): request building as plain functions, and a thin lazily-imported adapter.

Constraints go through vLLM's structured outputs as a regular expression equivalent to the
automata of :mod:`llm.constraints`:

- ``cif`` and ``sites``: exact (coordinates copied, each site's symbol among its pristine element,
  allowed new species and VAC). The defect budget (``max_defects``/``min_defects``) is not in the
  regex (counting over 192 positions blows a regex up); :func:`budget_grammar` gives the exact
  right-linear grammar (EBNF, for xgrammar) when the budget must hold;
- ``sparse``: format, each site's allowed species and the budget (``{min,max}`` repetition) are
  exact; strictly increasing sites (no site changed twice) is not expressible as a regex of
  reasonable size, so a sample naming a site twice fails to parse and counts as invalid.
- an exact composition (defects per type, :attr:`GenerationRequest.composition`): the regex gets the
  total as its budget and only the types with a count; counts per type are not regular over sorted
  sites either, so a sample with other counts is marked invalid after generation (the transformers
  back end's automaton enforces them exactly).

Everything up to :class:`VLLMGenerator` is plain Python returning dicts, tested without vllm.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from hts.errors import ConfigError, GenerationError
from hts.hosts import Host
from llm.encodings import (
    SITES_CLOSE,
    SITES_OPEN,
    SPARSE_CLOSE,
    SPARSE_OPEN,
    check_allowed,
    check_encoding,
    coord_strings,
    site_options,
    site_width,
)
from llm.generation import GenerationRequest, GenerationResult, max_answer_chars, parse_result

logger = logging.getLogger(__name__)


def _alt(options: Sequence[str]) -> str:
    opts = sorted(set(options), key=lambda s: (-len(s), s))
    return opts[0] if len(opts) == 1 else "(?:" + "|".join(re.escape(o) for o in opts) + ")"


def _digit_trie_regex(strings: Sequence[str]) -> str:
    """A compact regex matching exactly ``strings`` (equal-length digit strings)."""
    if not strings or len(strings[0]) == 0:
        return ""
    groups: dict[str, list[str]] = {}
    for s in strings:
        groups.setdefault(s[0], []).append(s[1:])
    parts = []
    # merge first digits whose tails are identical into a character class
    by_tail: dict[str, list[str]] = {}
    for d, tails in sorted(groups.items()):
        by_tail.setdefault(_digit_trie_regex(tails), []).append(d)
    for tail, digits in by_tail.items():
        head = digits[0] if len(digits) == 1 else "[" + "".join(digits) + "]"
        parts.append(head + tail)
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


def answer_regex(
    host: Host,
    encoding: str,
    max_defects: int | None = None,
    min_defects: int = 0,
    allowed: np.ndarray | None = None,
) -> str:
    """Regular expression of valid answers (see the module docstring for what it enforces)."""
    check_encoding(encoding)
    allowed = check_allowed(host, allowed)
    n = host.n_sites
    if encoding == "sites":
        body = "".join(" " + _alt(site_options(host, i, allowed)) for i in range(n))
        return re.escape(SITES_OPEN) + body + " " + re.escape(SITES_CLOSE)
    if encoding == "cif":
        return "".join(
            _alt(site_options(host, i, allowed)) + " " + re.escape(c) + r"\n" for i, c in enumerate(coord_strings(host))
        )
    w = site_width(host)
    by_species: dict[tuple[str, ...], list[str]] = {}
    for s in range(n):
        new = site_options(host, s, allowed)[1:]
        if new:
            by_species.setdefault(new, []).append(f"{s:0{w}d}")
    items = "|".join(_digit_trie_regex(sites) + ":" + _alt(sp) for sp, sites in by_species.items())
    hi = n if max_defects is None else int(max_defects)
    lo = int(min_defects)
    if lo > hi:
        raise ConfigError(f"min_defects={lo} is above max_defects={hi}")
    return re.escape(SPARSE_OPEN) + f"(?: (?:{items})){{{lo},{hi}}}" + " " + re.escape(SPARSE_CLOSE)


def budget_grammar(
    host: Host, encoding: str, max_defects: int, min_defects: int = 0, allowed: np.ndarray | None = None
) -> str:
    """Exact GBNF/EBNF grammar (xgrammar syntax) of ``cif``/``sites`` answers within the budget:
    one rule per (site, defects so far)."""
    if encoding not in ("cif", "sites"):
        raise ConfigError("budget_grammar covers cif and sites; sparse uses answer_regex")
    n = host.n_sites

    def lit(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    coords = coord_strings(host)
    allowed = check_allowed(host, allowed)
    defectable = np.asarray(allowed.any(axis=1), dtype=bool)
    suffix = np.concatenate([np.cumsum(defectable[::-1])[::-1], [0]])
    closing = lit(" " + SITES_CLOSE) if encoding == "sites" else ""

    def nxt(i: int, k: int) -> str | None:
        """What follows site ``i`` with ``k`` defects so far (``None``: not allowed)."""
        if i + 1 < n:
            return f"s{i + 1}_{k}"
        return closing if k >= min_defects else None

    rules = []
    for i in range(n):
        pristine, *new = site_options(host, i, allowed)
        after = (" " + coords[i] + "\n") if encoding == "cif" else ""
        before = "" if encoding == "cif" else " "
        for c in range(max_defects + 1):
            alts = []
            keep = nxt(i, c)
            if c + int(suffix[i + 1]) >= min_defects and keep is not None:
                alts.append(f"{lit(before + pristine + after)} {keep}".rstrip())
            change = nxt(i, c + 1)
            if c < max_defects and new and change is not None:
                alts.extend(f"{lit(before + sp + after)} {change}".rstrip() for sp in new)
            if alts:
                rules.append(f"s{i}_{c} ::= " + " | ".join(alts))
    head = lit(SITES_OPEN) + " " if encoding == "sites" else ""
    return "\n".join([f"root ::= {head}s0_0", *rules]) + "\n"


def sampling_params_kwargs(
    request: GenerationRequest, host: Host, encoding: str, *, max_tokens: int | None = None
) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for one request (``structured_outputs`` is a dict
    of ``StructuredOutputsParams`` arguments, absent when unconstrained)."""
    kw: dict[str, Any] = {
        "n": request.n,
        "temperature": float(request.temperature),
        "top_p": float(request.top_p),
        "max_tokens": int(max_tokens or max_answer_chars(host, encoding, request.max_defects)),
        "skip_special_tokens": True,
    }
    if request.seed is not None:
        kw["seed"] = int(request.seed)
    if request.constrained:
        kw["structured_outputs"] = {
            "regex": answer_regex(host, encoding, request.max_defects, request.min_defects, request.allowed)
        }
    return kw


def lora_request_kwargs(adapter_dir: str, name: str = "hts-adapter", int_id: int = 1) -> dict[str, Any]:
    """Keyword arguments of ``vllm.lora.request.LoRARequest``."""
    return {"lora_name": name, "lora_int_id": int(int_id), "lora_path": str(adapter_dir)}


def llm_kwargs(
    model_dir: str,
    adapter_dir: str | None = None,
    *,
    max_lora_rank: int = 64,
    gpu_memory_utilization: float = 0.85,
    max_model_len: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM`` for a base model (and LoRA serving when an adapter is given)."""
    kw: dict[str, Any] = {
        "model": str(model_dir),
        "tokenizer": str(model_dir),
        "seed": seed,
        "gpu_memory_utilization": gpu_memory_utilization,
    }
    if adapter_dir is not None:
        kw.update(enable_lora=True, max_lora_rank=max_lora_rank, max_loras=1)
    if max_model_len is not None:
        kw["max_model_len"] = int(max_model_len)
    return kw


def prompt_inputs(tokenizer: Any, prompts: Sequence[str]) -> list[dict[str, list[int]]]:
    """Prompts as token ids (BOS + text), exactly as in training, for ``LLM.generate``."""
    from llm.tokenizer import prompt_ids

    return [{"prompt_token_ids": prompt_ids(tokenizer, p)} for p in prompts]


def vllm_available() -> bool:
    """Is vllm importable (without importing it)?"""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


class VLLMGenerator:
    """The :class:`~llm.generation.Generator` on vLLM (imported when constructed)."""

    def __init__(
        self,
        model_dir: str,
        adapter_dir: str | None = None,
        *,
        encoding: str,
        host: Host | None = None,
        **llm_options: Any,
    ) -> None:
        if not vllm_available():
            raise GenerationError("the vllm back end needs vllm: pip install 'hts2d[vllm]' (GPU only)")
        from llm.model import ModelManifest, check_manifest
        from llm.tokenizer import load_tokenizer, tokenizer_fingerprint

        self.encoding = check_encoding(encoding)
        fingerprint = tokenizer_fingerprint(load_tokenizer(model_dir))
        for d in (model_dir, adapter_dir):
            if d is not None:
                check_manifest(
                    ModelManifest.load(d),
                    d,
                    tokenizer_fingerprint=fingerprint,
                    encoding=encoding,
                    host_key=host.key if host else None,
                )
        import vllm

        self._vllm = vllm
        self.llm = vllm.LLM(**llm_kwargs(model_dir, adapter_dir, **llm_options))
        self.lora = None
        if adapter_dir is not None:
            from vllm.lora.request import LoRARequest

            self.lora = LoRARequest(**lora_request_kwargs(adapter_dir))

    def _sampling_params(self, kw: dict[str, Any]) -> Any:
        so = kw.pop("structured_outputs", None)
        if so is not None:
            try:  # vLLM >= 0.10.2
                from vllm.sampling_params import StructuredOutputsParams

                kw["structured_outputs"] = StructuredOutputsParams(**so)
            except ImportError:  # older releases
                from vllm.sampling_params import GuidedDecodingParams

                kw["guided_decoding"] = GuidedDecodingParams(**so)
        return self._vllm.SamplingParams(**kw)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        prompts = prompt_inputs(self.llm.get_tokenizer(), [r.prompt(self.encoding) for r in requests])
        params = [self._sampling_params(sampling_params_kwargs(r, r.host, self.encoding)) for r in requests]
        outputs = self.llm.generate(prompts, params, lora_request=self.lora)
        out: list[GenerationResult] = []
        for ri, (req, res) in enumerate(zip(requests, outputs, strict=True)):
            for comp in res.outputs:
                out.append(parse_result(ri, comp.text, req.host, self.encoding, len(comp.token_ids), req.composition))
        return out
